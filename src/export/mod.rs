//! Document export (seed "5. Export Module", issue #7).
//!
//! Sources (stored transcripts and documents, inline data, or any [`ExportSource`]
//! registered from Rust) are rendered by the formatters of [`formats::BUILTIN`] (txt,
//! json, srt, vtt, md, docx, pdf; more via [`ExportService::register_format`]).
//!
//! - **An export is a job.** `create` validates the request (4xx naming the field), stores
//!   the export record and its work durably, then enqueues an `export` job whose id is the
//!   export id; the job reports progress under the same id.
//! - **Files appear whole.** The rendered bytes are checked against `export.jobs.max_size`
//!   and written with temp file + rename by the [`storage::ExportStorage`] backend
//!   (local directory `<data_dir>/<export.storage.path>`), so a download never sees a
//!   partial file; a failed export leaves no file.
//! - **Completion** updates the record, runs the hooks, emits `export.completed` /
//!   `export.failed` on the event bus, optionally notifies a user in-app and enqueues a
//!   signed webhook callback ([`crate::webhooks::enqueue_delivery`]; the event is the
//!   topic, the export record the `data`).
//! - **Batch**: several sources in one request are rendered to one zip.

pub mod batch;
pub mod caps;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod embedded;
pub mod error;
pub mod fonts;
pub mod formats;
pub mod hooks;
mod job;
pub mod model;
pub mod record;
pub mod record_store;
pub mod redis;
pub mod render;
pub mod request;
pub mod s3;
pub mod source_store;
pub mod sources;
pub mod storage;
pub mod templates;
#[cfg(any(test, feature = "conformance"))]
pub mod test_s3;

pub use embedded::EmbeddedExportStore;
pub use error::ExportError;
pub use hooks::ExportHooks;
pub use model::{Document, Segment, Source, Transcript};
pub use record::{ExportJob, ExportStatus};
pub use record_store::{ExportRecordStore, ListFilter};
pub use render::Renderer;
pub use request::{BatchItem, ExportCreated, ExportRequest};
pub use source_store::{SourceKind, SourceStore};
pub use sources::{ExportSource, StoredKind, StoredSource};

use crate::{clock::SharedClock, events::EventBus, jobs::JobQueue, notify::Notifications, progress::ProgressTracker, store::Store};
use config::ExportConfig;
use parking_lot::RwLock;
use std::path::PathBuf;
use std::sync::Arc;
use storage::{ExportStorage, LocalStorage, Reader};

/// Job name of exports.
pub const JOB: &str = "export";

/// State shared by every clone of the service.
pub(crate) struct Inner {
    pub parts: ExportParts,
    pub records: Arc<dyn ExportRecordStore>,
    pub stored: Arc<dyn SourceStore>,
    pub renderer: Renderer,
    pub storage: RwLock<Arc<dyn ExportStorage>>,
    pub sources: sources::SourceRegistry,
    pub hooks: RwLock<Vec<Arc<dyn ExportHooks>>>,
}

/// The export service. Cheap to clone.
#[derive(Clone)]
pub struct ExportService {
    pub(crate) inner: Arc<Inner>,
}

/// A completed export's file, ready to stream.
pub struct Download {
    /// The export.
    pub job: ExportJob,
    /// The file contents.
    pub reader: Reader,
    /// Its length in bytes.
    pub len: u64,
}

/// Where the export service keeps its data.
#[derive(Clone)]
pub struct ExportBackends {
    /// Export records and their pending work.
    pub records: Arc<dyn ExportRecordStore>,
    /// Stored transcripts and documents.
    pub sources: Arc<dyn SourceStore>,
    /// Export files.
    pub files: Arc<dyn ExportStorage>,
}

impl ExportBackends {
    /// The embedded backends: records and sources in hearth's database, files in the
    /// local directory `files_root`.
    pub fn embedded(store: &Store, files_root: PathBuf) -> Self {
        let db = Arc::new(EmbeddedExportStore::new(store.clone()));
        ExportBackends { records: db.clone(), sources: db, files: Arc::new(LocalStorage::new(files_root)) }
    }
}

/// The services and settings an export service is built from, besides its backends.
pub struct ExportParts {
    /// hearth's database; it keeps the webhook secrets of completion callbacks.
    pub store: Store,
    /// Where `export.*` events go.
    pub events: EventBus,
    /// The clock stamping records.
    pub clock: SharedClock,
    /// The queue exports run on.
    pub jobs: JobQueue,
    /// Progress of running exports (export id = progress id).
    pub progress: ProgressTracker,
    /// Completion notifications.
    pub notify: Notifications,
    /// The `export:` configuration.
    pub config: ExportConfig,
    /// `outbound:`: whether a `webhook_url` may name an internal address.
    pub outbound: crate::outbound::OutboundConfig,
}

impl ExportService {
    /// Builds the service on the embedded backends (records and sources in `store`, files
    /// under `<data_dir>/<export.storage.path>`) and registers the `export` job handler.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        events: EventBus,
        clock: SharedClock,
        jobs: JobQueue,
        progress: ProgressTracker,
        notify: Notifications,
        config: ExportConfig,
        data_dir: PathBuf,
    ) -> Self {
        let backends = ExportBackends::embedded(&store, data_dir.join(&config.storage.path));
        let outbound = crate::outbound::OutboundConfig::default();
        Self::with_backends(ExportParts { store, events, clock, jobs, progress, notify, config, outbound }, backends)
    }

    /// As [`ExportService::new`], on any backends (e.g. stores shared by several nodes and
    /// an object store for files).
    pub fn with_backends(parts: ExportParts, backends: ExportBackends) -> Self {
        let sources = sources::SourceRegistry::default();
        sources.register(Arc::new(StoredSource::<Transcript>::new(backends.sources.clone())));
        sources.register(Arc::new(StoredSource::<Document>::new(backends.sources.clone())));
        let renderer = Renderer::new(&parts.config);
        let inner = Inner {
            parts,
            records: backends.records,
            stored: backends.sources,
            renderer,
            storage: RwLock::new(backends.files),
            sources,
            hooks: RwLock::new(Vec::new()),
        };
        let svc = ExportService { inner: Arc::new(inner) };
        job::register(&svc);
        svc
    }

    /// Starts background work: the file storage removes what a crash mid-write left.
    pub fn start(&self, bg: &crate::runtime::Background) {
        let files = self.storage();
        bg.spawn(async move { files.clean_up().await });
    }

    /// The renderer (formats, templates, font).
    pub fn renderer(&self) -> &Renderer {
        &self.inner.renderer
    }

    /// Registers a source type.
    pub fn register_source(&self, source: Arc<dyn ExportSource>) {
        self.inner.sources.register(source);
    }

    /// Registers an output format.
    pub fn register_format(&self, spec: formats::FormatSpec) {
        self.inner.renderer.register_format(spec);
    }

    /// Registers life-cycle hooks.
    pub fn register_hooks(&self, hooks: Arc<dyn ExportHooks>) {
        self.inner.hooks.write().push(hooks);
    }

    /// Replaces the storage backend (e.g. an S3 adapter). Existing files are not moved.
    pub fn set_storage(&self, storage: Arc<dyn ExportStorage>) {
        *self.inner.storage.write() = storage;
    }

    pub(crate) fn storage(&self) -> Arc<dyn ExportStorage> {
        self.inner.storage.read().clone()
    }

    pub(crate) fn run_hooks(&self, f: impl Fn(&dyn ExportHooks)) {
        let hooks = self.inner.hooks.read().clone();
        for h in hooks {
            f(h.as_ref());
        }
    }

    // ---- stored sources -------------------------------------------------------------

    /// Validates and stores a transcript or document (`K`), assigning an id when empty.
    /// Returns what was stored (a transcript's segments sorted by start).
    pub async fn save_stored<K: StoredKind>(&self, value: serde_json::Value) -> Result<K, ExportError> {
        let mut k = sources::from_json::<K>(value)?;
        if k.id().is_empty() {
            *k.id_mut() = uuid::Uuid::now_v7().to_string();
        }
        check_id(k.id())?;
        let json = serde_json::to_string(&k).map_err(|e| ExportError::Render(e.to_string()))?;
        self.inner.stored.put(K::KIND, k.id(), json).await?;
        Ok(k)
    }

    /// A stored transcript or document (`K`).
    pub async fn get_stored<K: StoredKind>(&self, id: &str) -> Result<K, ExportError> {
        sources::load_stored::<K>(self.inner.stored.as_ref(), id).await
    }

    /// Deletes a stored transcript or document (`K`).
    pub async fn delete_stored<K: StoredKind>(&self, id: &str) -> Result<(), ExportError> {
        if self.inner.stored.delete(K::KIND, id).await? {
            Ok(())
        } else {
            Err(ExportError::NotFound { kind: K::KIND.as_str(), id: id.into() })
        }
    }

    // ---- exports ----------------------------------------------------------------------

    /// Validates `req`, stores the export and enqueues its job. `owner` is the creating
    /// user (for access checks), if the caller is a user.
    pub async fn create(&self, req: ExportRequest, owner: Option<String>) -> Result<ExportCreated, ExportError> {
        job::create(self, req, owner).await
    }

    /// An export's record (reconciled with its job if the job ended without the handler
    /// recording it, e.g. a forced timeout).
    pub async fn get(&self, id: &str) -> Result<ExportJob, ExportError> {
        let rec = self.inner.records.get(id).await?.ok_or_else(|| ExportError::NotFound { kind: "export", id: id.into() })?;
        let mut rec = job::reconcile(self, rec).await?;
        if rec.status == ExportStatus::Running
            && let Ok(p) = self.inner.parts.progress.get(id).await
        {
            // The record holds stage boundaries durably; the tracker has the live figure.
            rec.progress = rec.progress.max(p.progress.clamp(0.0, 100.0));
        }
        Ok(rec)
    }

    /// Exports, newest first.
    pub async fn list(&self, f: ListFilter) -> Result<Vec<ExportJob>, ExportError> {
        let limit = if f.limit == 0 { 100 } else { f.limit };
        self.inner.records.list(&ListFilter { limit, ..f }).await
    }

    /// Opens a completed export's file; 409 while it is not completed.
    pub async fn download(&self, id: &str) -> Result<Download, ExportError> {
        let rec = self.get(id).await?;
        if rec.status != ExportStatus::Completed {
            return Err(ExportError::Conflict(format!("export {id} is {}; download is possible once completed", rec.status.as_str())));
        }
        let (reader, len) =
            self.storage().open(&rec.storage_key()).await?.ok_or_else(|| ExportError::NotFound { kind: "export file", id: id.into() })?;
        self.run_hooks(|h| h.on_download(&rec));
        Ok(Download { job: rec, reader, len })
    }

    /// Cancels a pending or running export (the record stays, `cancelled`), or deletes a
    /// finished export's file and record. Returns the resulting status.
    pub async fn delete(&self, id: &str) -> Result<ExportStatus, ExportError> {
        job::delete(self, id).await
    }
}

/// Checks a caller-chosen source id.
fn check_id(id: &str) -> Result<(), ExportError> {
    if id.len() > 200 || id.chars().any(|c| c.is_control() || c == '/') {
        return Err(ExportError::invalid("id", "must be at most 200 characters without '/' or control characters"));
    }
    Ok(())
}
