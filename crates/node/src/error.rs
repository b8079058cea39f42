use tonic::{Code, Status};

/// What a node refuses, and why; each maps to the gRPC status that tells the
/// caller what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed or fails validation.
    #[error("{0}")]
    InvalidArgument(String),
    /// The caller may not do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// No such alert.
    #[error("{0}")]
    NotFound(String),
    /// The id is taken by other content.
    #[error("{0}")]
    AlreadyExists(String),
    /// The store failed; the request may be retried.
    #[error("store: {0}")]
    Store(#[source] tocsin_store::Error),
    /// What this node stored cannot be read back: retrying cannot help.
    #[error("{what}{}", cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
    Corrupt {
        /// What is unreadable ("stored envelope unreadable").
        what: String,
        /// Why, where a decoder said.
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Something this node cannot do now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<tocsin_store::Error> for Error {
    fn from(e: tocsin_store::Error) -> Self {
        match e {
            // The store names what is missing; the caller asked for it.
            tocsin_store::Error::NotFound(m) => Error::NotFound(m),
            tocsin_store::Error::Exists(m) => Error::AlreadyExists(m),
            other => Error::Store(other),
        }
    }
}

impl Error {
    /// Stored data that does not decode, `what` naming it, `cause` saying
    /// why.
    pub(crate) fn corrupt(
        what: impl Into<String>,
        cause: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Error::Corrupt {
            what: what.into(),
            cause: Some(Box::new(cause)),
        }
    }
}

impl From<tocsin_core::ValidationError> for Error {
    fn from(e: tocsin_core::ValidationError) -> Self {
        Error::InvalidArgument(e.to_string())
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::Store(tocsin_store::Error::Conflict(_)) => Code::AlreadyExists,
            Error::Store(tocsin_store::Error::Corrupt { .. } | tocsin_store::Error::Damaged(_)) => {
                Code::DataLoss
            }
            Error::Store(_) | Error::Unavailable(_) => Code::Unavailable,
            Error::Corrupt { .. } => Code::DataLoss,
        };
        if matches!(code, Code::Unavailable | Code::DataLoss) {
            tracing::error!(error = %e, "request failed");
        }
        status(code, e.to_string())
    }
}

/// Longest status message sent, in bytes. The message travels in an
/// HTTP/2 header (`grpc-message`, percent-encoded, so up to three times
/// longer), and a header block over the peer's limit (16 KiB by default)
/// breaks the connection instead of telling the caller what is wrong.
pub(crate) const MAX_STATUS_MESSAGE_BYTES: usize = 1024;

/// A status whose message is cut to [`MAX_STATUS_MESSAGE_BYTES`]: messages
/// quote what the caller sent, which may be of any length.
pub(crate) fn status(code: Code, message: String) -> Status {
    if message.len() <= MAX_STATUS_MESSAGE_BYTES {
        return Status::new(code, message);
    }
    let mut end = MAX_STATUS_MESSAGE_BYTES - 32;
    while !message.is_char_boundary(end) {
        end -= 1;
    }
    let cut = message.len() - end;
    Status::new(code, format!("{}... ({cut} more bytes)", &message[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_to_fit_a_header() {
        // Found by the delivery fuzz target: an alert whose id was 20,000
        // characters long got an error quoting it, and the peer saw the
        // connection fail (h2 protocol error) instead of INVALID_ARGUMENT.
        let long = format!("invalid field `id`: {}", "é".repeat(10_000));
        let s = Status::from(Error::InvalidArgument(long));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert!(
            s.message().len() <= MAX_STATUS_MESSAGE_BYTES,
            "{}",
            s.message().len()
        );
        assert!(s.message().starts_with("invalid field `id`: é"));
        assert!(s.message().ends_with(" more bytes)"));
        let short = Status::from(Error::NotFound("no alert X".into()));
        assert_eq!(short.message(), "no alert X");
    }

    #[test]
    fn corrupt_data_is_data_loss_with_its_cause_kept() {
        use prost::Message as _;
        use std::error::Error as _;
        let cause = tocsin_proto::pb::Envelope::decode(&[0xff][..]).unwrap_err();
        let e = Error::corrupt("stored envelope unreadable", cause.clone());
        assert_eq!(
            e.to_string(),
            format!("stored envelope unreadable: {cause}")
        );
        assert!(e.source().is_some(), "the decoder's error is kept");
        let s = Status::from(e);
        assert_eq!(
            s.code(),
            Code::DataLoss,
            "retrying cannot help: not UNAVAILABLE"
        );
        assert_eq!(s.message(), format!("stored envelope unreadable: {cause}"));
        // A digest of the wrong length has no decoder to blame.
        let s = Status::from(crate::views::stored_digest(&[0; 31]).unwrap_err());
        assert_eq!(s.code(), Code::DataLoss);
        assert_eq!(s.message(), "stored digest is not 32 bytes");
        assert_eq!(crate::views::stored_digest(&[7; 32]).unwrap(), [7; 32]);
        // The store's own errors keep theirs too.
        let e = Error::Store(tocsin_store::Error::Closed);
        assert!(e.source().is_some());
        // Whatever the store finds damaged is DATA_LOSS too.
        for damaged in [
            tocsin_store::Error::Damaged("audit entry 7 has a hash that is not 32 bytes".into()),
            tocsin_store::Error::Corrupt {
                what: "EventKind",
                code: 99,
            },
        ] {
            assert_eq!(Status::from(Error::from(damaged)).code(), Code::DataLoss);
        }
        assert_eq!(
            Status::from(Error::from(tocsin_store::Error::Closed)).code(),
            Code::Unavailable,
            "a closed store may come back: retry"
        );
    }
}
