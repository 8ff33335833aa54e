//! The service's one error type and its single mapping to a gRPC `Status`.
//!
//! Handlers return `Result<_, Error>` and use `?`; `From<Error> for Status` decides
//! what a client sees. Internal failures are logged here with their cause and reach
//! the client only as a generic message.

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One bad field of a request: `field` is its path in the request message
/// (e.g. `ratings[2].score`), `description` says what is wrong in plain words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Self { field: field.into(), description: description.into() }
    }
}

/// Collects every violation of a request so the client hears about all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation::new(field, description));
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn extend(&mut self, other: Violations) {
        self.0.extend(other.0);
    }
    /// The same violations with `prefix` put before every field path.
    pub fn prefixed(self, prefix: &str) -> Self {
        Self(self.0.into_iter().map(|v| FieldViolation::new(format!("{prefix}{}", v.field), v.description)).collect())
    }
    pub fn into_vec(self) -> Vec<FieldViolation> {
        self.0
    }
    /// `Ok(())` when nothing was added, else `Error::InvalidArgument` with all of them.
    pub fn into_result(self) -> Result<(), Error> {
        if self.0.is_empty() { Ok(()) } else { Err(Error::InvalidArgument(self.0)) }
    }
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    #[error("invalid argument")]
    InvalidArgument(Vec<FieldViolation>),
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    PermissionDenied(String),
    #[error("unauthenticated")]
    Unauthenticated,
    #[error("{0}")]
    Aborted(String),
    #[error("{0}")]
    FailedPrecondition(String),
    #[error("{0}")]
    Unimplemented(String),
    #[error("service temporarily unavailable: {0}")]
    Unavailable(String),
    /// A quota or limit is reached; the client may retry after the delay.
    #[error("{message}")]
    ResourceExhausted { message: String, retry_after: std::time::Duration },
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// A single-field `INVALID_ARGUMENT`.
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        Error::InvalidArgument(vec![FieldViolation::new(field, description)])
    }
}

impl Error {
    /// The gRPC code this error answers with.
    pub fn code(&self) -> Code {
        match self {
            Error::InvalidArgument(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unauthenticated => Code::Unauthenticated,
            Error::Aborted(_) => Code::Aborted,
            Error::FailedPrecondition(_) => Code::FailedPrecondition,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Unavailable(_) => Code::Unavailable,
            Error::ResourceExhausted { .. } => Code::ResourceExhausted,
            Error::Internal(_) => Code::Internal,
        }
    }
}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        match error {
            Error::InvalidArgument(violations) => {
                let mut details = ErrorDetails::new();
                for v in &violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                let summary =
                    violations.iter().map(|v| format!("{}: {}", v.field, v.description)).collect::<Vec<_>>().join("; ");
                Status::with_error_details(Code::InvalidArgument, summary, details)
            }
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::AlreadyExists(msg) => Status::already_exists(msg),
            Error::PermissionDenied(msg) => Status::permission_denied(msg),
            Error::Unauthenticated => Status::unauthenticated("missing or invalid credentials"),
            Error::Aborted(msg) => Status::aborted(msg),
            Error::FailedPrecondition(msg) => Status::failed_precondition(msg),
            Error::Unimplemented(msg) => Status::unimplemented(msg),
            Error::Unavailable(cause) => {
                tracing::warn!(%cause, "request failed: unavailable");
                Status::unavailable("service temporarily unavailable, retry with backoff")
            }
            Error::ResourceExhausted { message, retry_after } => {
                let details = ErrorDetails::with_retry_info(Some(retry_after));
                Status::with_error_details(Code::ResourceExhausted, message, details)
            }
            Error::Internal(cause) => {
                tracing::error!(%cause, "request failed: internal error");
                Status::internal("internal error")
            }
        }
    }
}
