//! Issuing the federation's certificates.
//!
//! Layout of a PKI directory made by [`init`]:
//!
//! ```text
//! DIR/federation.toml                 the federation file it was made for
//! DIR/ca.crt, DIR/ca.key              the federation CA (keep ca.key offline)
//! DIR/agencies/<ID>/node.crt|key      TLS identity spiffe://<fed>/agency/<ID>
//! DIR/agencies/<ID>/signing.crt|key   Ed25519 envelope-signing key
//! DIR/operators/<ID>/<NAME>.crt|key   spiffe://<fed>/agency/<ID>/operator/<NAME>
//! ```
//!
//! Private keys are written with mode 0600 and never printed.

use std::fmt;
use std::path::{Path, PathBuf};

use ::time::OffsetDateTime;
use chrono::Datelike;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, RevokedCertParams,
    SanType, SerialNumber,
};
use tocsin_core::federation::Federation;
use tocsin_core::{AgencyId, FederationId, Identity};
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::Error;
use crate::files::{create_dir, read_certs, write_public, write_secret};
use crate::revocation::{normalise, read_crls};

/// Paths inside a PKI directory.
#[derive(Debug, Clone)]
pub struct PkiLayout {
    root: PathBuf,
}

impl PkiLayout {
    /// The layout rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }
    /// The directory itself.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// The copy of the federation file.
    pub fn federation_file(&self) -> PathBuf {
        self.root.join("federation.toml")
    }
    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.root.join("ca.crt")
    }
    /// The CA private key.
    pub fn ca_key(&self) -> PathBuf {
        self.root.join("ca.key")
    }

    /// The federation's certificate revocation list, signed by the CA.
    pub fn crl(&self) -> PathBuf {
        self.root.join("crl.pem")
    }
    /// An agency's directory.
    pub fn agency_dir(&self, agency: &AgencyId) -> PathBuf {
        self.root.join("agencies").join(agency.as_str())
    }
    /// An agency node's TLS certificate.
    pub fn node_cert(&self, agency: &AgencyId) -> PathBuf {
        self.agency_dir(agency).join("node.crt")
    }
    /// An agency node's TLS key.
    pub fn node_key(&self, agency: &AgencyId) -> PathBuf {
        self.agency_dir(agency).join("node.key")
    }
    /// An agency's signing certificate.
    pub fn signing_cert(&self, agency: &AgencyId) -> PathBuf {
        self.agency_dir(agency).join("signing.crt")
    }
    /// An agency's signing key.
    pub fn signing_key(&self, agency: &AgencyId) -> PathBuf {
        self.agency_dir(agency).join("signing.key")
    }
    /// An operator's certificate.
    pub fn operator_cert(&self, agency: &AgencyId, name: &str) -> PathBuf {
        self.root
            .join("operators")
            .join(agency.as_str())
            .join(format!("{name}.crt"))
    }
    /// An operator's key.
    pub fn operator_key(&self, agency: &AgencyId, name: &str) -> PathBuf {
        self.root
            .join("operators")
            .join(agency.as_str())
            .join(format!("{name}.key"))
    }
}

/// A certificate and its private key, PEM-encoded. `Debug` never shows the key.
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// The private key: PEM `PRIVATE KEY`, PKCS#8 v1 (`PrivateKeyInfo`).
    pub key_pem: String,
}

impl fmt::Debug for Issued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issued")
            .field("cert_pem", &self.cert_pem)
            .field("key_pem", &"<redacted>")
            .finish()
    }
}

impl Issued {
    /// Writes the certificate (0644) and the key (0600), creating the directory.
    pub fn write(&self, cert: &Path, key: &Path) -> Result<(), Error> {
        if let Some(dir) = cert.parent() {
            create_dir(dir)?;
        }
        write_public(cert, self.cert_pem.as_bytes())?;
        write_secret(key, self.key_pem.as_bytes())
    }
}

/// The federation's certificate authority.
pub struct CertificateAuthority {
    federation: FederationId,
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
}

impl fmt::Debug for CertificateAuthority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertificateAuthority")
            .field("federation", &self.federation)
            .finish_non_exhaustive()
    }
}

fn validity(params: &mut CertificateParams, years: i32) {
    let now = chrono::Utc::now();
    // A day of slack before now absorbs small clock differences between hosts.
    let start = now - chrono::Duration::days(1);
    params.not_before = rcgen::date_time_ymd(start.year(), start.month() as u8, start.day() as u8);
    params.not_after = rcgen::date_time_ymd(now.year() + years, now.month() as u8, 1);
}

/// The DER of an Ed25519 `PrivateKeyInfo` (RFC 5208, RFC 8410) up to the
/// 32-byte seed: SEQUENCE, version 0, the algorithm id-Ed25519, and the
/// OCTET STRING holding the CurvePrivateKey OCTET STRING.
const ED25519_V1_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A new Ed25519 key whose PKCS#8 document is the v1 layout
/// (`PrivateKeyInfo`, no public key), which OpenSSL 3.0 and Python's
/// `cryptography` read. ring generates the v2 layout (`OneAsymmetricKey`,
/// the public key included), which they refuse; ring reads both, so keys
/// written before in v2 still load.
fn ed25519_key() -> Result<KeyPair, Error> {
    let generated = KeyPair::generate_for(&rcgen::PKCS_ED25519)?;
    let v1 = ed25519_pkcs8_v1(generated.serialized_der())?;
    Ok(KeyPair::from_pkcs8_der_and_sign_algo(
        &rustls_pki_types::PrivatePkcs8KeyDer::from(v1),
        &rcgen::PKCS_ED25519,
    )?)
}

/// An Ed25519 PKCS#8 document (v1 or v2) rewritten in the v1 layout: the
/// same seed, version 0, no public key.
fn ed25519_pkcs8_v1(der: &[u8]) -> Result<Vec<u8>, Error> {
    // Either layout: SEQUENCE (any length), then version 0 or 1, the
    // algorithm and the seed, as in the v1 prefix.
    let seed = match der {
        [0x30, _, 0x02, 0x01, 0x00 | 0x01, rest @ ..]
            if rest.starts_with(&ED25519_V1_PREFIX[5..]) && rest.len() >= 11 + 32 =>
        {
            &rest[11..11 + 32]
        }
        _ => {
            return Err(Error::Invalid(
                "not an Ed25519 PKCS#8 private key".to_owned(),
            ));
        }
    };
    let mut v1 = ED25519_V1_PREFIX.to_vec();
    v1.extend_from_slice(seed);
    Ok(v1)
}

fn uri(identity: &Identity, federation: &FederationId) -> Result<SanType, Error> {
    Ok(SanType::URI(identity.to_uri(federation).try_into()?))
}

impl CertificateAuthority {
    /// A new CA for `federation`.
    pub fn generate(federation: &FederationId) -> Result<Self, Error> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, "Tocsin federation");
        dn.push(DnType::CommonName, format!("Tocsin CA {federation}"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        validity(&mut params, 10);
        let cert = params.self_signed(&key)?;
        Ok(Self {
            federation: federation.clone(),
            cert_pem: cert.pem(),
            issuer: Issuer::new(params, key),
        })
    }

    /// Loads an existing CA from its certificate and key.
    pub fn load(cert: &Path, key: &Path, federation: &FederationId) -> Result<Self, Error> {
        crate::files::check_key_permissions(key)?;
        let read = |p: &Path| {
            std::fs::read_to_string(p).map_err(|cause| Error::Io {
                path: p.display().to_string(),
                cause,
            })
        };
        let cert_pem = read(cert)?;
        let key = KeyPair::from_pem(&read(key)?)?;
        let issuer = Issuer::from_ca_cert_pem(&cert_pem, key)?;
        Ok(Self {
            federation: federation.clone(),
            issuer,
            cert_pem,
        })
    }

    /// The CA certificate, PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The CA key, PEM (PKCS#8).
    pub fn key_pem(&self) -> String {
        self.issuer.key().serialize_pem()
    }

    fn issue(
        &self,
        common_name: &str,
        key: KeyPair,
        sans: Vec<SanType>,
        key_usages: Vec<KeyUsagePurpose>,
        ekus: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<Issued, Error> {
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::OrganizationName, self.federation.as_str());
        dn.push(DnType::CommonName, common_name);
        params.distinguished_name = dn;
        params.subject_alt_names = sans;
        params.key_usages = key_usages;
        params.extended_key_usages = ekus;
        params.use_authority_key_identifier_extension = true;
        validity(&mut params, 2);
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// A node's TLS certificate: server and client authentication, the
    /// agency's URI, and DNS/IP names for standard tools (`localhost`,
    /// `127.0.0.1` and `hosts`).
    pub fn issue_node(&self, agency: &AgencyId, hosts: &[String]) -> Result<Issued, Error> {
        let mut sans = vec![uri(&Identity::Agency(agency.clone()), &self.federation)?];
        let mut names: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        names.extend(hosts.iter().cloned());
        names.sort();
        names.dedup();
        for name in names {
            sans.push(match name.parse::<std::net::IpAddr>() {
                Ok(ip) => SanType::IpAddress(ip),
                Err(_) => SanType::DnsName(name.clone().try_into().map_err(|_| {
                    Error::Invalid(format!(
                        "{name:?} is not a valid DNS name for a certificate"
                    ))
                })?),
            });
        }
        self.issue(
            agency.as_str(),
            KeyPair::generate()?,
            sans,
            vec![KeyUsagePurpose::DigitalSignature],
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// An agency's envelope-signing certificate: an Ed25519 key, usable for
    /// code signing only (never for TLS). The key is written in the PKCS#8
    /// v1 layout every common tool reads (see `ed25519_key`).
    pub fn issue_signing(&self, agency: &AgencyId) -> Result<Issued, Error> {
        self.issue(
            &format!("{agency} signing"),
            ed25519_key()?,
            vec![uri(&Identity::Agency(agency.clone()), &self.federation)?],
            vec![KeyUsagePurpose::DigitalSignature],
            vec![ExtendedKeyUsagePurpose::CodeSigning],
        )
    }

    /// A CRL listing `revoked`, numbered `number`.
    pub(crate) fn crl(&self, revoked: &[Revoked], number: u64) -> Result<String, Error> {
        let now = OffsetDateTime::now_utc();
        let params = CertificateRevocationListParams {
            this_update: now,
            // Nodes do not refuse a CRL past its next update (a federation
            // without a CA online must not lock itself out); the date only
            // says when to expect a new one.
            next_update: now + ::time::Duration::days(365),
            crl_number: SerialNumber::from_slice(&number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs: revoked
                .iter()
                .map(|r| RevokedCertParams {
                    serial_number: SerialNumber::from_slice(&r.serial),
                    revocation_time: r.at,
                    reason_code: None,
                    invalidity_date: None,
                })
                .collect(),
            key_identifier_method: rcgen::KeyIdMethod::Sha256,
        };
        Ok(params.signed_by(&self.issuer)?.pem()?)
    }

    /// An operator's TLS client certificate.
    pub fn issue_operator(&self, agency: &AgencyId, name: &str) -> Result<Issued, Error> {
        let identity =
            Identity::operator(agency.clone(), name).map_err(|e| Error::Invalid(e.to_string()))?;
        self.issue(
            &format!("{name} ({agency})"),
            KeyPair::generate()?,
            vec![uri(&identity, &self.federation)?],
            vec![KeyUsagePurpose::DigitalSignature],
            vec![ExtendedKeyUsagePurpose::ClientAuth],
        )
    }
}

/// Creates a PKI directory for `federation`: the CA, and for every agency a
/// node certificate and a signing certificate. Refuses to overwrite an
/// existing CA, which would cut every issued certificate loose.
pub fn init(
    federation: &Federation,
    federation_toml: &str,
    out: &Path,
) -> Result<PkiLayout, Error> {
    let layout = PkiLayout::new(out);
    if layout.ca_key().exists() {
        return Err(Error::Invalid(format!(
            "{} already holds a CA ({}); choose another directory or remove it first",
            out.display(),
            layout.ca_key().display()
        )));
    }
    create_dir(out)?;
    let ca = CertificateAuthority::generate(federation.id())?;
    write_public(&layout.ca_cert(), ca.cert_pem().as_bytes())?;
    write_secret(&layout.ca_key(), ca.key_pem().as_bytes())?;
    write_public(&layout.federation_file(), federation_toml.as_bytes())?;
    // An empty CRL from the start, so that every node watches a file that
    // `tocsin pki revoke` later replaces.
    write_public(&layout.crl(), ca.crl(&[], 1)?.as_bytes())?;
    for agency in &federation.agencies {
        let mut hosts = agency.hosts.clone();
        hosts.push(agency.endpoint_host().to_owned());
        ca.issue_node(&agency.id, &hosts)?
            .write(&layout.node_cert(&agency.id), &layout.node_key(&agency.id))?;
        ca.issue_signing(&agency.id)?.write(
            &layout.signing_cert(&agency.id),
            &layout.signing_key(&agency.id),
        )?;
    }
    Ok(layout)
}

/// Issues an operator certificate into an existing PKI directory.
pub fn issue_operator(
    layout: &PkiLayout,
    federation: &Federation,
    agency: &AgencyId,
    name: &str,
) -> Result<(PathBuf, PathBuf), Error> {
    if !federation.is_member(agency) {
        return Err(Error::Invalid(format!(
            "{agency} is not an agency of federation {}",
            federation.id()
        )));
    }
    let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key(), federation.id())?;
    let (cert, key) = (
        layout.operator_cert(agency, name),
        layout.operator_key(agency, name),
    );
    ca.issue_operator(agency, name)?.write(&cert, &key)?;
    Ok((cert, key))
}

/// One entry of the federation's CRL.
#[derive(Debug, Clone)]
pub(crate) struct Revoked {
    pub(crate) serial: Vec<u8>,
    pub(crate) at: OffsetDateTime,
}

/// The entries and number of the CRL at `path`, if there is one.
fn current_crl(path: &Path) -> Result<(Vec<Revoked>, u64), Error> {
    if !path.exists() {
        return Ok((Vec::new(), 0));
    }
    let mut entries = Vec::new();
    let mut number = 0u64;
    for der in read_crls(path)? {
        let (_, crl) = x509_parser::parse_x509_crl(der.as_ref())
            .map_err(|e| Error::unreadable(path.display().to_string(), e))?;
        if let Some(n) = crl.crl_number() {
            let digits = n.to_u64_digits();
            number = number.max(digits.first().copied().unwrap_or(0));
        }
        for r in crl.iter_revoked_certificates() {
            entries.push(Revoked {
                serial: normalise(r.raw_serial()),
                at: r.revocation_date.to_datetime(),
            });
        }
    }
    Ok((entries, number))
}

/// What `revoke` did.
#[derive(Debug, Clone)]
pub struct RevokeReport {
    /// The certificates newly revoked.
    pub revoked: Vec<PathBuf>,
    /// Those that already were.
    pub already: Vec<PathBuf>,
    /// Certificates now listed in the CRL.
    pub total: usize,
    /// The CRL written.
    pub crl: PathBuf,
}

/// Revokes the certificates in `certs` (PEM files issued by this PKI's CA)
/// and rewrites the federation's CRL, signed by the CA. Nodes configured
/// with the CRL pick it up without a restart.
pub fn revoke(
    layout: &PkiLayout,
    federation: &FederationId,
    certs: &[PathBuf],
) -> Result<RevokeReport, Error> {
    let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key(), federation)?;
    // The CA certificate as just loaded, not read a second time.
    let ca_der =
        <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::from_pem_slice(
            ca.cert_pem().as_bytes(),
        )
        .map_err(|e| Error::unreadable("CA certificate", e))?;
    let (_, ca_cert) = X509Certificate::from_der(ca_der.as_ref())
        .map_err(|e| Error::unreadable("CA certificate", e))?;
    let (mut entries, number) = current_crl(&layout.crl())?;
    let mut report = RevokeReport {
        revoked: Vec::new(),
        already: Vec::new(),
        total: 0,
        crl: layout.crl(),
    };
    let now = OffsetDateTime::now_utc();
    for path in certs {
        let der = read_certs(path)?.remove(0);
        let (_, cert) = X509Certificate::from_der(der.as_ref())
            .map_err(|e| Error::unreadable(path.display().to_string(), e))?;
        if cert.issuer() != ca_cert.subject()
            || cert.verify_signature(Some(ca_cert.public_key())).is_err()
        {
            return Err(Error::Invalid(format!(
                "{} was not issued by this federation's CA",
                path.display()
            )));
        }
        let serial = normalise(cert.raw_serial());
        if entries.iter().any(|e| e.serial == serial) {
            report.already.push(path.clone());
        } else {
            entries.push(Revoked { serial, at: now });
            report.revoked.push(path.clone());
        }
    }
    report.total = entries.len();
    write_public(&layout.crl(), ca.crl(&entries, number + 1)?.as_bytes())?;
    Ok(report)
}

/// Issues `agency` a new node (TLS) certificate and key in place of the
/// old ones; a running node picks them up without a restart.
pub fn renew_node(
    layout: &PkiLayout,
    federation: &Federation,
    agency: &AgencyId,
) -> Result<(), Error> {
    let member = federation.agency(agency).ok_or_else(|| {
        Error::Invalid(format!(
            "{agency} is not an agency of federation {}",
            federation.id()
        ))
    })?;
    let ca = CertificateAuthority::load(&layout.ca_cert(), &layout.ca_key(), federation.id())?;
    let mut hosts = member.hosts.clone();
    hosts.push(member.endpoint_host().to_owned());
    ca.issue_node(agency, &hosts)?
        .write(&layout.node_cert(agency), &layout.node_key(agency))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustls_pki_types::pem::PemObject;

    fn der_of_key(pem: &str) -> Vec<u8> {
        rustls_pki_types::PrivatePkcs8KeyDer::from_pem_slice(pem.as_bytes())
            .unwrap()
            .secret_pkcs8_der()
            .to_vec()
    }

    /// Every key the CA issues is a PKCS#8 v1 `PrivateKeyInfo` (version 0,
    /// no public key): the layout OpenSSL 3.0 and Python's `cryptography`
    /// read. (The CLI's test runs `openssl pkey` on what `pki init` writes.)
    #[test]
    fn issued_keys_are_pkcs8_v1() {
        let fed = FederationId::new("test.tocsin").unwrap();
        let ca = CertificateAuthority::generate(&fed).unwrap();
        let agency = AgencyId::new("TR-MIT").unwrap();
        let signing = der_of_key(&ca.issue_signing(&agency).unwrap().key_pem);
        assert_eq!(signing.len(), 48, "{signing:02x?}");
        assert_eq!(signing[..16], ED25519_V1_PREFIX);
        for pem in [
            ca.key_pem(),
            ca.issue_node(&agency, &[]).unwrap().key_pem,
            ca.issue_operator(&agency, "analyst").unwrap().key_pem,
        ] {
            let der = der_of_key(&pem);
            // SEQUENCE (its length in one byte or more) { INTEGER 0, ... }
            let header = match der[1] {
                n if n < 0x80 => 2,
                n => 2 + usize::from(n & 0x7f),
            };
            assert_eq!(der[0], 0x30);
            assert_eq!(der[header..header + 3], [0x02, 0x01, 0x00], "{der:02x?}");
        }
    }

    /// Signing keys written before in ring's v2 layout (the public key
    /// included) still load, and sign as their v1 rewriting does.
    #[test]
    fn a_v2_signing_key_still_loads_and_equals_its_v1_rewriting() {
        let fed = FederationId::new("test.tocsin").unwrap();
        let ca = CertificateAuthority::generate(&fed).unwrap();
        let agency = AgencyId::new("TR-MIT").unwrap();
        let v2 = KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        assert_eq!(v2.serialized_der()[4], 0x01, "ring writes version 1 (v2)");
        let v2_pem = v2.serialize_pem();
        let v1 = ed25519_pkcs8_v1(v2.serialized_der()).unwrap();
        let issued = ca
            .issue(
                "signing",
                v2,
                vec![uri(&Identity::Agency(agency.clone()), &fed).unwrap()],
                vec![KeyUsagePurpose::DigitalSignature],
                vec![ExtendedKeyUsagePurpose::CodeSigning],
            )
            .unwrap();
        let old = crate::Signer::from_pem(&issued.cert_pem, &v2_pem, &fed).unwrap();
        let v1_pem = KeyPair::from_pkcs8_der_and_sign_algo(
            &rustls_pki_types::PrivatePkcs8KeyDer::from(v1.clone()),
            &rcgen::PKCS_ED25519,
        )
        .unwrap()
        .serialize_pem();
        let new = crate::Signer::from_pem(&issued.cert_pem, &v1_pem, &fed).unwrap();
        // Ed25519 is deterministic: the same key makes the same signature.
        assert_eq!(
            old.sign("t", b"x".to_vec()).signature,
            new.sign("t", b"x".to_vec()).signature
        );
        assert_eq!(ed25519_pkcs8_v1(&v1).unwrap(), v1, "v1 stays v1");
        assert!(ed25519_pkcs8_v1(&der_of_key(&ca.key_pem())).is_err());
    }
}
