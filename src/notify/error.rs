//! Errors of the notification module and their mapping to API errors.

use crate::error::ApiError;
use crate::store::StoreError;

/// Everything that can go wrong in the notification module.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// A request field is invalid; `field` names it (dotted path).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why.
        message: String,
    },
    /// No notification with this id.
    #[error("notification '{0}' not found")]
    NotFound(String),
    /// A write collides with stored data (an insert under an id that exists).
    #[error("{0}")]
    Conflict(String),
    /// A channel or backend needed for the request is not available (a notification
    /// store that cannot reach its backend returns this: HTTP 503).
    #[error("{0}")]
    Unavailable(String),
    /// Storage failure.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl NotifyError {
    /// A validation error naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        NotifyError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<NotifyError> for ApiError {
    fn from(e: NotifyError) -> Self {
        match e {
            NotifyError::Invalid { field, message } => ApiError::invalid(field, message),
            NotifyError::NotFound(id) => ApiError::not_found("notification", &id),
            NotifyError::Conflict(m) => ApiError::conflict(m),
            NotifyError::Unavailable(m) => ApiError::unavailable(m),
            NotifyError::Store(s) => ApiError::from(s),
        }
    }
}
