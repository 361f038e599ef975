//! Source types an export can read: the built-in stored `transcript` and `document`, and
//! any type registered from Rust through [`ExportSource`].

use super::error::ExportError;
use super::model::{Document, Source, Transcript};
use super::store::{self, DOCUMENTS, TRANSCRIPTS};
use crate::store::Store;
use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A kind of data exports can be made from. Implement it to export data hearth does not
/// store itself (e.g. load it from your own database), then register it with
/// [`crate::export::ExportService::register_source`].
#[async_trait]
pub trait ExportSource: Send + Sync + 'static {
    /// The `source_type` requests use to select this source.
    fn source_type(&self) -> &str;

    /// Loads the source with `id`. Absent → [`ExportError::NotFound`].
    async fn load(&self, id: &str) -> Result<Source, ExportError>;

    /// Converts and validates an inline `source` object from a request. Errors name the
    /// field relative to the source (e.g. `segments[1].end`); callers prefix `source.`.
    fn from_inline(&self, value: serde_json::Value) -> Result<Source, ExportError>;
}

/// Parses JSON into `T`, naming the failing field.
fn parse<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, ExportError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let path = e.path().to_string();
        let msg = e.into_inner().to_string();
        let field = if path == "." { String::new() } else { path };
        let field = match msg.strip_prefix("missing field `").and_then(|r| r.split('`').next()) {
            Some(name) if field.is_empty() => name.to_string(),
            Some(name) => format!("{field}.{name}"),
            None => field,
        };
        ExportError::invalid(field, msg)
    })
}

/// Validates a transcript given as JSON (sorting its segments).
pub fn transcript_from_json(value: serde_json::Value) -> Result<Transcript, ExportError> {
    let mut t: Transcript = parse(value)?;
    t.validate_and_sort()?;
    Ok(t)
}

/// Validates a document given as JSON.
pub fn document_from_json(value: serde_json::Value) -> Result<Document, ExportError> {
    let d: Document = parse(value)?;
    d.validate()?;
    Ok(d)
}

/// The stored transcripts (`/api/transcripts`).
pub struct TranscriptSource {
    store: Store,
}

impl TranscriptSource {
    /// Over the shared store.
    pub fn new(store: Store) -> Self {
        TranscriptSource { store }
    }
}

#[async_trait]
impl ExportSource for TranscriptSource {
    fn source_type(&self) -> &str {
        "transcript"
    }

    async fn load(&self, id: &str) -> Result<Source, ExportError> {
        let json = store::get_source(&self.store, TRANSCRIPTS, id)
            .await?
            .ok_or_else(|| ExportError::NotFound { kind: "transcript", id: id.into() })?;
        serde_json::from_str(&json).map(Source::Transcript).map_err(|e| ExportError::Io(format!("stored transcript {id} unreadable: {e}")))
    }

    fn from_inline(&self, value: serde_json::Value) -> Result<Source, ExportError> {
        transcript_from_json(value).map(Source::Transcript)
    }
}

/// The stored documents (`/api/documents`).
pub struct DocumentSource {
    store: Store,
}

impl DocumentSource {
    /// Over the shared store.
    pub fn new(store: Store) -> Self {
        DocumentSource { store }
    }
}

#[async_trait]
impl ExportSource for DocumentSource {
    fn source_type(&self) -> &str {
        "document"
    }

    async fn load(&self, id: &str) -> Result<Source, ExportError> {
        let json = store::get_source(&self.store, DOCUMENTS, id)
            .await?
            .ok_or_else(|| ExportError::NotFound { kind: "document", id: id.into() })?;
        serde_json::from_str(&json).map(Source::Document).map_err(|e| ExportError::Io(format!("stored document {id} unreadable: {e}")))
    }

    fn from_inline(&self, value: serde_json::Value) -> Result<Source, ExportError> {
        document_from_json(value).map(Source::Document)
    }
}

/// The registered source types by name.
#[derive(Default, Clone)]
pub struct SourceRegistry {
    map: Arc<RwLock<BTreeMap<String, Arc<dyn ExportSource>>>>,
}

impl SourceRegistry {
    /// Registers (or replaces) a source type.
    pub fn register(&self, source: Arc<dyn ExportSource>) {
        self.map.write().insert(source.source_type().to_string(), source);
    }

    /// Looks a source type up.
    pub fn get(&self, name: &str) -> Option<Arc<dyn ExportSource>> {
        self.map.read().get(name).cloned()
    }

    /// Every registered name.
    pub fn names(&self) -> Vec<String> {
        self.map.read().keys().cloned().collect()
    }
}
