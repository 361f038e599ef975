//! Source types an export can read: the built-in stored `transcript` and `document` (one
//! generic [`StoredSource`] over [`StoredKind`]), and any type registered from Rust through
//! [`ExportSource`].

use super::error::ExportError;
use super::model::{Document, Invalid, Source, Transcript};
use super::source_store::{SourceKind, SourceStore};
use async_trait::async_trait;
use parking_lot::RwLock;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::BTreeMap;
use std::marker::PhantomData;
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

/// A source type hearth stores itself (`/api/transcripts`, `/api/documents`): the one
/// generic path for saving, reading, deleting and exporting transcripts and documents.
pub trait StoredKind: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind (its name is the `source_type` and the not-found entity).
    const KIND: SourceKind;

    /// The id.
    fn id(&self) -> &str;

    /// The id, for assigning one on save.
    fn id_mut(&mut self) -> &mut String;

    /// Checks a value parsed from JSON, normalising it where the model says so.
    fn check(&mut self) -> Result<(), Invalid>;

    /// The value as something formatters render.
    fn into_source(self) -> Source;
}

/// Implements [`StoredKind`] for a model type with a `pub id: String`, the [`Source`] and
/// [`SourceKind`] variant of the same name, and a check method.
macro_rules! stored_kind {
    ($model:ident, $check:ident) => {
        impl StoredKind for $model {
            const KIND: SourceKind = SourceKind::$model;

            fn id(&self) -> &str {
                &self.id
            }

            fn id_mut(&mut self) -> &mut String {
                &mut self.id
            }

            fn check(&mut self) -> Result<(), Invalid> {
                self.$check()
            }

            fn into_source(self) -> Source {
                Source::$model(self)
            }
        }
    };
}

// A transcript's check also sorts its segments by start.
stored_kind!(Transcript, validate_and_sort);
stored_kind!(Document, validate);

/// Parses and checks a stored kind given as JSON, naming the failing field.
pub fn from_json<K: StoredKind>(value: serde_json::Value) -> Result<K, ExportError> {
    let mut k: K = parse(value)?;
    k.check()?;
    Ok(k)
}

/// Validates a transcript given as JSON (sorting its segments).
pub fn transcript_from_json(value: serde_json::Value) -> Result<Transcript, ExportError> {
    from_json(value)
}

/// Validates a document given as JSON.
pub fn document_from_json(value: serde_json::Value) -> Result<Document, ExportError> {
    from_json(value)
}

/// Reads a stored source of kind `K`; absent → [`ExportError::NotFound`] naming the kind.
pub async fn load_stored<K: StoredKind>(store: &dyn SourceStore, id: &str) -> Result<K, ExportError> {
    let kind = K::KIND.as_str();
    let json = store.get(K::KIND, id).await?.ok_or_else(|| ExportError::NotFound { kind, id: id.into() })?;
    serde_json::from_str(&json).map_err(|e| ExportError::Io(format!("stored {kind} {id} unreadable: {e}")))
}

/// The stored sources of one kind as an export source type (`transcript`, `document`).
pub struct StoredSource<K> {
    store: Arc<dyn SourceStore>,
    kind: PhantomData<fn() -> K>,
}

impl<K: StoredKind> StoredSource<K> {
    /// Over a source store.
    pub fn new(store: Arc<dyn SourceStore>) -> Self {
        StoredSource { store, kind: PhantomData }
    }
}

#[async_trait]
impl<K: StoredKind> ExportSource for StoredSource<K> {
    fn source_type(&self) -> &str {
        K::KIND.as_str()
    }

    async fn load(&self, id: &str) -> Result<Source, ExportError> {
        Ok(load_stored::<K>(self.store.as_ref(), id).await?.into_source())
    }

    fn from_inline(&self, value: serde_json::Value) -> Result<Source, ExportError> {
        from_json::<K>(value).map(K::into_source)
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
