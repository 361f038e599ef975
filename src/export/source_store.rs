//! The stored-source seam: where the transcripts and documents of `/api/transcripts` and
//! `/api/documents` live.
//!
//! A store keeps JSON text under a kind and an id; parsing and validation belong to the
//! model types ([`super::sources::StoredKind`]). It is a trait of its own rather than part
//! of [`super::record_store::ExportRecordStore`] because the data differs: records are
//! small, hearth-made and updated through an export's life, sources are caller content,
//! written once and read by id, and may well live elsewhere (an object store, the
//! application's own database). One backend may implement both, as the embedded one does.
//!
//! Invariants every implementation keeps (checked by [`super::conformance::sources`]):
//! - a write is acknowledged only once it is durable; `put` replaces the whole value;
//! - kinds are separate name spaces: the same id under two kinds is two sources;
//! - ids are opaque text (up to 200 characters, no `/` or control characters, anything
//!   else allowed) and come back unchanged;
//! - a store that cannot reach its backend returns [`ExportError::Unavailable`] (503).

use super::error::ExportError;
use async_trait::async_trait;

/// The kinds of source hearth stores itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// Timed segments (`/api/transcripts`).
    Transcript,
    /// Text with headings (`/api/documents`).
    Document,
}

impl SourceKind {
    /// Every kind.
    pub const ALL: [SourceKind; 2] = [SourceKind::Transcript, SourceKind::Document];

    /// The `source_type` name of the kind (`transcript`, `document`).
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Transcript => "transcript",
            SourceKind::Document => "document",
        }
    }
}

/// Durable storage of stored sources as JSON text, by kind and id.
///
/// Called once per request, so it is an `async_trait` object: `Arc<dyn SourceStore>`.
#[async_trait]
pub trait SourceStore: Send + Sync + 'static {
    /// Stores `json` under `kind` and `id`, replacing any earlier value, durably.
    async fn put(&self, kind: SourceKind, id: &str, json: String) -> Result<(), ExportError>;

    /// The JSON text under `kind` and `id`, if any.
    async fn get(&self, kind: SourceKind, id: &str) -> Result<Option<String>, ExportError>;

    /// Removes the source; false when there was none.
    async fn delete(&self, kind: SourceKind, id: &str) -> Result<bool, ExportError>;
}
