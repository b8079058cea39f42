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
    Store(tocsin_store::Error),
    /// Something this node cannot do now.
    #[error("{0}")]
    Unavailable(String),
}

impl From<tocsin_store::Error> for Error {
    fn from(e: tocsin_store::Error) -> Self {
        match e {
            // The store names what is missing; the caller asked for it.
            tocsin_store::Error::NotFound(m) => Error::NotFound(m),
            other => Error::Store(other),
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
            Error::Store(_) | Error::Unavailable(_) => Code::Unavailable,
        };
        if code == Code::Unavailable {
            tracing::error!(error = %e, "request failed");
        }
        Status::new(code, e.to_string())
    }
}
