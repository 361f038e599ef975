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
pub mod config;
pub mod error;
pub mod fonts;
pub mod formats;
pub mod hooks;
mod job;
pub mod model;
pub mod record;
pub mod render;
pub mod request;
pub mod sources;
pub mod storage;
mod store;
pub mod templates;

pub use error::ExportError;
pub use hooks::ExportHooks;
pub use model::{Document, Segment, Source, Transcript};
pub use record::{ExportJob, ExportStatus};
pub use render::Renderer;
pub use request::{BatchItem, ExportCreated, ExportRequest};
pub use sources::ExportSource;

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
    pub store: Store,
    pub events: EventBus,
    pub clock: SharedClock,
    pub jobs: JobQueue,
    pub progress: ProgressTracker,
    pub notify: Notifications,
    pub config: ExportConfig,
    pub renderer: Renderer,
    pub storage: RwLock<Arc<dyn ExportStorage>>,
    pub local_root: PathBuf,
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

/// Filters of [`ExportService::list`].
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only this source type.
    pub source_type: Option<String>,
    /// Only this status.
    pub status: Option<ExportStatus>,
    /// Only exports created by this user.
    pub user_id: Option<String>,
    /// At most this many (newest first).
    pub limit: usize,
}

impl ExportService {
    /// Builds the service and registers the `export` job handler.
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
        let local_root = data_dir.join(&config.storage.path);
        let storage: Arc<dyn ExportStorage> = Arc::new(LocalStorage::new(local_root.clone()));
        let sources = sources::SourceRegistry::default();
        sources.register(Arc::new(sources::TranscriptSource::new(store.clone())));
        sources.register(Arc::new(sources::DocumentSource::new(store.clone())));
        let renderer = Renderer::new(&config);
        let inner = Inner {
            store,
            events,
            clock,
            jobs,
            progress,
            notify,
            config,
            renderer,
            storage: RwLock::new(storage),
            local_root,
            sources,
            hooks: RwLock::new(Vec::new()),
        };
        let svc = ExportService { inner: Arc::new(inner) };
        job::register(&svc);
        svc
    }

    /// Starts background work: removes temp files left by a crash mid-write.
    pub fn start(&self, bg: &crate::runtime::Background) {
        let root = self.inner.local_root.clone();
        bg.spawn(async move {
            let _ = tokio::task::spawn_blocking(move || LocalStorage::new(root).sweep_temp()).await;
        });
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

    /// Validates and stores a transcript (segments sorted by start); assigns an id when
    /// empty. Returns what was stored.
    pub async fn save_transcript(&self, value: serde_json::Value) -> Result<Transcript, ExportError> {
        let mut t = sources::transcript_from_json(value)?;
        if t.id.is_empty() {
            t.id = uuid::Uuid::now_v7().to_string();
        }
        check_id(&t.id)?;
        let json = serde_json::to_string(&t).map_err(|e| ExportError::Render(e.to_string()))?;
        store::put_source(&self.inner.store, store::TRANSCRIPTS, &t.id, json).await?;
        Ok(t)
    }

    /// A stored transcript.
    pub async fn get_transcript(&self, id: &str) -> Result<Transcript, ExportError> {
        match self.inner.sources.get("transcript").expect("built-in").load(id).await? {
            Source::Transcript(t) => Ok(t),
            Source::Document(_) => Err(ExportError::NotFound { kind: "transcript", id: id.into() }),
        }
    }

    /// Deletes a stored transcript.
    pub async fn delete_transcript(&self, id: &str) -> Result<(), ExportError> {
        if store::delete_source(&self.inner.store, store::TRANSCRIPTS, id).await? {
            Ok(())
        } else {
            Err(ExportError::NotFound { kind: "transcript", id: id.into() })
        }
    }

    /// Validates and stores a document; assigns an id when empty.
    pub async fn save_document(&self, value: serde_json::Value) -> Result<Document, ExportError> {
        let mut d = sources::document_from_json(value)?;
        if d.id.is_empty() {
            d.id = uuid::Uuid::now_v7().to_string();
        }
        check_id(&d.id)?;
        let json = serde_json::to_string(&d).map_err(|e| ExportError::Render(e.to_string()))?;
        store::put_source(&self.inner.store, store::DOCUMENTS, &d.id, json).await?;
        Ok(d)
    }

    /// A stored document.
    pub async fn get_document(&self, id: &str) -> Result<Document, ExportError> {
        match self.inner.sources.get("document").expect("built-in").load(id).await? {
            Source::Document(d) => Ok(d),
            Source::Transcript(_) => Err(ExportError::NotFound { kind: "document", id: id.into() }),
        }
    }

    /// Deletes a stored document.
    pub async fn delete_document(&self, id: &str) -> Result<(), ExportError> {
        if store::delete_source(&self.inner.store, store::DOCUMENTS, id).await? {
            Ok(())
        } else {
            Err(ExportError::NotFound { kind: "document", id: id.into() })
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
        let rec = store::get_export(&self.inner.store, id).await?.ok_or_else(|| ExportError::NotFound { kind: "export", id: id.into() })?;
        let mut rec = job::reconcile(self, rec).await?;
        if rec.status == ExportStatus::Running
            && let Ok(p) = self.inner.progress.get(id).await
        {
            // The record holds stage boundaries durably; the tracker has the live figure.
            rec.progress = rec.progress.max(p.progress.clamp(0.0, 100.0));
        }
        Ok(rec)
    }

    /// Exports, newest first.
    pub async fn list(&self, f: ListFilter) -> Result<Vec<ExportJob>, ExportError> {
        let all = store::list_exports(&self.inner.store).await?;
        let limit = if f.limit == 0 { 100 } else { f.limit };
        Ok(all
            .into_iter()
            .filter(|e| f.source_type.as_deref().is_none_or(|t| e.source_type == t))
            .filter(|e| f.status.is_none_or(|s| e.status == s))
            .filter(|e| f.user_id.as_deref().is_none_or(|u| e.user_id.as_deref() == Some(u)))
            .take(limit)
            .collect())
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
