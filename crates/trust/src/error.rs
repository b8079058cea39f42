/// What can go wrong with certificates, keys, TLS set-up and signatures.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {cause}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        cause: std::io::Error,
    },
    /// A PEM file held nothing usable.
    #[error("{path}: {what}")]
    Pem {
        /// The file.
        path: String,
        /// What was missing or wrong.
        what: String,
    },
    /// A private key file is readable by others than its owner.
    #[error("{path}: private key is readable by group or others (mode {mode:o}); run chmod 600")]
    KeyPermissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// A certificate does not carry a usable identity.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A certificate, key or CRL could not be read as one.
    #[error("certificate: {what}: {source}")]
    CertificateUnreadable {
        /// What was being read (a file, "CA certificate", "CRL").
        what: String,
        /// Why it could not be.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Certificate generation failed.
    #[error("certificate generation: {0}")]
    Generate(#[from] rcgen::Error),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// The client verifier could not be built.
    #[error("TLS client verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// An envelope failed verification.
    #[error("envelope: {0}")]
    Envelope(String),
    /// A path or name given to the PKI was not acceptable.
    #[error("{0}")]
    Invalid(String),
}

impl Error {
    /// `what` could not be read as a certificate, key or CRL, for `source`.
    pub(crate) fn unreadable(
        what: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::CertificateUnreadable {
            what: what.into(),
            source: source.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    #[test]
    fn an_unreadable_certificate_keeps_its_cause() {
        let federation = tocsin_core::FederationId::new("test").unwrap();
        let e = crate::Verifier::new(b"not a certificate", &federation).unwrap_err();
        assert!(
            e.to_string().starts_with("certificate: CA certificate: "),
            "{e}"
        );
        assert!(e.source().is_some(), "the parser's error is kept");
    }
}
