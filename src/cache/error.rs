//! Errors of the cache module and their mapping to API errors.

use crate::error::ApiError;
use crate::store::StoreError;
use std::sync::Arc;

/// What can go wrong in a cache operation. Cheap to clone, so one single-flight result
/// can be handed to every waiter.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CacheError {
    /// An argument is invalid; `field` names it (`key`, `ttl`, `tags`, `pattern`, `value`).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending argument.
        field: &'static str,
        /// Why it is rejected.
        message: String,
    },
    /// The value exceeds `cache.max_entry_bytes` (or the L2 capacity).
    #[error("value: {0}")]
    TooLarge(String),
    /// The factory of `get_or_set` / `cached` failed; every waiter gets the same error.
    #[error("factory failed: {0}")]
    Factory(Arc<anyhow::Error>),
    /// A cached value could not be decoded into the requested type.
    #[error("cached value does not decode: {0}")]
    Decode(String),
    /// The key's current value does not allow the operation: an increment of a value that
    /// is not a decimal 64-bit integer, or one that would overflow.
    #[error("{0}")]
    Conflict(String),
    /// The embedded L2 store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Another L2 backend failed.
    #[error("cache backend: {0}")]
    Backend(String),
}

impl CacheError {
    /// An invalid-argument error naming `field`.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        CacheError::Invalid { field, message: message.into() }
    }
}

impl From<CacheError> for ApiError {
    fn from(e: CacheError) -> Self {
        match e {
            CacheError::Invalid { field, message } => ApiError::invalid(field, message),
            CacheError::TooLarge(message) => ApiError::too_large("value", message),
            CacheError::Factory(e) => ApiError::internal(format!("cache factory: {e:#}")),
            CacheError::Decode(m) => ApiError::internal(format!("cache decode: {m}")),
            CacheError::Conflict(m) => ApiError::conflict(m),
            CacheError::Store(e) => ApiError::from(e),
            CacheError::Backend(m) => ApiError::unavailable(format!("cache backend unavailable: {m}")),
        }
    }
}
