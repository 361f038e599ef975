//! Errors of the progress module and their mapping onto the API error table.

use crate::error::{ApiError, ErrorCode};
use crate::store::StoreError;

/// Everything that can go wrong in a progress operation.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProgressError {
    /// No progress has this id (never created, deleted, or removed by retention).
    #[error("progress '{0}' not found")]
    NotFound(String),
    /// A request value is invalid; `field` names it (`progress`, `stage`, `stages[2].weight`...).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why it is invalid.
        message: String,
    },
    /// The progress is in a state that does not allow the operation (finished, or the
    /// request would move it back to an earlier stage without asking for it).
    #[error("{0}")]
    Conflict(String),
    /// A progress with this id already exists.
    #[error("progress '{0}' already exists")]
    AlreadyExists(String),
    /// The storage backend failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The shared Redis of a cluster failed or is unreachable.
    #[error(transparent)]
    Redis(#[from] crate::cluster::RedisError),
}

impl ProgressError {
    /// An [`ProgressError::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ProgressError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<ProgressError> for ApiError {
    fn from(e: ProgressError) -> Self {
        match e {
            ProgressError::NotFound(id) => ApiError::not_found("progress", &id),
            ProgressError::Invalid { field, message } => ApiError::invalid(field, message),
            ProgressError::Conflict(m) => ApiError::new(ErrorCode::Conflict, m),
            ProgressError::AlreadyExists(id) => ApiError::conflict(format!("progress '{id}' already exists")),
            ProgressError::Store(s) => ApiError::from(s),
            ProgressError::Redis(r) => ApiError::from(r),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maps_onto_the_error_table() {
        assert_eq!(ApiError::from(ProgressError::NotFound("x".into())).status(), 404);
        let e = ApiError::from(ProgressError::invalid("progress", "must be between 0 and 100"));
        assert_eq!((e.status(), e.field.as_deref()), (400, Some("progress")));
        assert_eq!(ApiError::from(ProgressError::Conflict("done".into())).status(), 409);
        assert_eq!(ApiError::from(ProgressError::AlreadyExists("x".into())).status(), 409);
        assert_eq!(ApiError::from(ProgressError::Store(StoreError::Closed)).status(), 500);
    }
}
