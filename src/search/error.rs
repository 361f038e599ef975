//! Errors of the search module and their mapping to API errors.

use crate::error::ApiError;
use crate::store::StoreError;

/// Everything that can go wrong in search.
#[derive(Debug, thiserror::Error)]
pub enum SearchError {
    /// A request field is invalid; `field` names it (dotted path).
    #[error("{field}: {message}")]
    Invalid {
        /// The offending field.
        field: String,
        /// Why.
        message: String,
    },
    /// A document does not exist.
    #[error("document '{0}' not found")]
    NotFound(String),
    /// Semantic search is unavailable (model or runtime missing); the message says why.
    #[error("semantic search unavailable: {0}")]
    Unavailable(String),
    /// The embedding model failed on input it should accept.
    #[error("embedding failed: {0}")]
    Embedding(String),
    /// A remote embeddings API refused the input (a 4xx other than 401/403); its message.
    #[error("the embeddings API refused the input: {0}")]
    Refused(String),
    /// The keyword index failed.
    #[error("keyword index error: {0}")]
    Index(String),
    /// The search store cannot be reached (a remote backend is down or unreachable);
    /// the message says which and why.
    #[error("search store unreachable: {0}")]
    Unreachable(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl SearchError {
    /// A validation error naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        SearchError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<tantivy::TantivyError> for SearchError {
    fn from(e: tantivy::TantivyError) -> Self {
        SearchError::Index(e.to_string())
    }
}

impl From<SearchError> for ApiError {
    fn from(e: SearchError) -> Self {
        match e {
            SearchError::Invalid { field, message } => ApiError::invalid(field, message),
            SearchError::NotFound(id) => ApiError::not_found("document", &id),
            SearchError::Unavailable(why) => ApiError::unavailable(format!("semantic search unavailable: {why}")),
            e @ SearchError::Unreachable(_) => ApiError::unavailable(e.to_string()),
            e @ SearchError::Refused(_) => ApiError::new(crate::error::ErrorCode::BadRequest, e.to_string()),
            SearchError::Store(s) => ApiError::from(s),
            other => ApiError::internal(other),
        }
    }
}
