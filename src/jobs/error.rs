//! Errors of the job queue and their mapping to API errors.

use crate::error::ApiError;
use crate::store::StoreError;

/// What can go wrong in a job-queue operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum JobError {
    /// A request field is invalid; `field` names it.
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field (dotted path).
        field: String,
        /// Why.
        message: String,
    },
    /// The payload exceeds `job_queue.max_payload_bytes`.
    #[error("payload is {size} bytes, more than the limit of {limit}")]
    PayloadTooLarge {
        /// Size of the payload's JSON text.
        size: usize,
        /// The configured limit.
        limit: usize,
    },
    /// No job (or schedule) with this id.
    #[error("{kind} '{id}' not found")]
    NotFound {
        /// `job` or `schedule`.
        kind: &'static str,
        /// The id asked for.
        id: String,
    },
    /// The job's state does not allow the operation (e.g. retrying a completed job,
    /// completing a job that is not running).
    #[error("{0}")]
    Conflict(String),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The broker cannot be reached (a remote broker down or timing out); nothing was
    /// changed. Rendered as 503.
    #[error("job broker unavailable: {0}")]
    Unavailable(String),
}

impl JobError {
    /// An invalid-field error.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        JobError::Invalid { field: field.into(), message: message.into() }
    }

    /// A not-found error for a job.
    pub fn job_not_found(id: &str) -> Self {
        JobError::NotFound { kind: "job", id: id.to_string() }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        match e {
            JobError::Invalid { field, message } => ApiError::invalid(field, message),
            JobError::PayloadTooLarge { .. } => ApiError::too_large("payload", e.to_string()),
            JobError::NotFound { kind, id } => ApiError::not_found(kind, &id),
            JobError::Conflict(m) => ApiError::conflict(m),
            JobError::Store(s) => ApiError::from(s),
            JobError::Unavailable(m) => ApiError::new(crate::error::ErrorCode::BackendUnavailable, format!("job broker unavailable: {m}")),
        }
    }
}
