//! Errors of the export module and their mapping onto the API error table.

use crate::error::ApiError;
use crate::store::StoreError;

/// Everything that can go wrong while accepting, rendering, storing or serving an export.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ExportError {
    /// A request or source field is invalid; `field` names it (e.g. `segments[2].end`).
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the offending field.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// An entity addressed by id does not exist.
    #[error("{kind} '{id}' not found")]
    NotFound {
        /// Entity kind (`export`, `transcript`, `document`).
        kind: &'static str,
        /// Its id.
        id: String,
    },
    /// The export exists but is not in a state that allows the operation (e.g. download
    /// before completion).
    #[error("{0}")]
    Conflict(String),
    /// The rendered output exceeds `export.jobs.max_size`.
    #[error("output of {size} bytes exceeds max_size {max} bytes")]
    TooLarge {
        /// Size of the rendered output.
        size: u64,
        /// The configured limit.
        max: u64,
    },
    /// The sources of an export exceed `export.jobs.max_source_bytes` or
    /// `export.jobs.max_batch_source_bytes` (HTTP 413); `field` names the source or `batch`.
    #[error("{field}: {message}")]
    SourceTooLarge {
        /// The source's request field (e.g. `batch[3].source_id`), or `batch` for the total.
        field: String,
        /// Sizes and the limit.
        message: String,
    },
    /// A formatter could not render the source (bad template, missing font...).
    #[error("render failed: {0}")]
    Render(String),
    /// No usable font for PDF output.
    #[error("no usable PDF font: {0}")]
    Font(String),
    /// Reading or writing an export file failed.
    #[error("storage error: {0}")]
    Io(String),
    /// A backend (record, source or file store) cannot be reached; worth retrying later
    /// (HTTP 503).
    #[error("export backend unavailable: {0}")]
    Unavailable(String),
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ExportError {
    /// A validation error naming `field`.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        ExportError::Invalid { field: field.into(), message: message.into() }
    }
}

impl From<std::io::Error> for ExportError {
    fn from(e: std::io::Error) -> Self {
        ExportError::Io(e.to_string())
    }
}

impl From<crate::export::model::Invalid> for ExportError {
    fn from(e: crate::export::model::Invalid) -> Self {
        ExportError::Invalid { field: e.field, message: e.message }
    }
}

impl From<ExportError> for ApiError {
    fn from(e: ExportError) -> Self {
        match e {
            ExportError::Invalid { field, message } => ApiError::invalid(field, message),
            ExportError::NotFound { kind, id } => ApiError::not_found(kind, &id),
            ExportError::Conflict(m) => ApiError::conflict(m),
            ExportError::TooLarge { .. } => ApiError::too_large("max_size", e.to_string()),
            ExportError::SourceTooLarge { field, message } => ApiError::too_large(field, message),
            ExportError::Render(m) => ApiError::new(crate::error::ErrorCode::BadRequest, format!("render failed: {m}")),
            ExportError::Font(_) | ExportError::Unavailable(_) => ApiError::unavailable(e.to_string()),
            ExportError::Store(s) => ApiError::from(s),
            ExportError::Io(_) => ApiError::internal(e),
        }
    }
}
