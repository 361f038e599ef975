//! The search service's shared state and small accessors. What it does is split by
//! concern: [`super::lifecycle`] (start, model, backfill, readiness), [`super::ingest`]
//! (indexing and deleting) and [`super::query`] (searching).

use super::backend::{SearchStore, StoreStatus};
use super::config::SearchConfig;
use super::embed::Embedder;
use super::embedded::EmbeddedStore;
use super::error::SearchError;
use super::hooks::{QueryExpander, Reranker, SearchHooks};
use crate::{events::EventBus, jobs::JobQueue, store::Store};
use parking_lot::RwLock;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;

/// Chunk vectors kept in the in-memory embedding cache (384 floats each: ~16 MB).
const EMBED_CACHE_ENTRIES: usize = 10_000;

/// The store behind a service: the embedded one (known statically, so benchmarks reach
/// its internals) or any other [`SearchStore`]. One virtual call per query or batch.
#[derive(Clone)]
pub enum StoreHandle {
    /// redb + tantivy + HNSW in the data directory.
    Embedded(EmbeddedStore),
    /// Any other implementation (a cluster backend, a test double).
    Custom(Arc<dyn SearchStore>),
}

impl StoreHandle {
    /// The store.
    pub fn get(&self) -> &dyn SearchStore {
        match self {
            StoreHandle::Embedded(s) => s,
            StoreHandle::Custom(s) => &**s,
        }
    }
}

impl From<EmbeddedStore> for StoreHandle {
    fn from(s: EmbeddedStore) -> Self {
        StoreHandle::Embedded(s)
    }
}

impl From<Arc<dyn SearchStore>> for StoreHandle {
    fn from(s: Arc<dyn SearchStore>) -> Self {
        StoreHandle::Custom(s)
    }
}

/// Readiness of the semantic side.
pub(super) enum ModelState {
    Loading,
    Ready(Arc<dyn Embedder>),
    Missing(String),
}

#[derive(Default)]
pub(super) struct Extensions {
    pub(super) hooks: Vec<Arc<dyn SearchHooks>>,
    pub(super) reranker: Option<Arc<dyn Reranker>>,
    pub(super) expander: Option<Arc<dyn QueryExpander>>,
}

pub(super) struct Inner {
    pub(super) store: StoreHandle,
    pub(super) events: EventBus,
    pub(super) jobs: JobQueue,
    pub(super) config: SearchConfig,
    pub(super) model: RwLock<ModelState>,
    /// Set once the model and the store have been opened (successfully or not).
    pub(super) loaded: watch::Sender<bool>,
    pub(super) ext: RwLock<Extensions>,
    /// Wakes the background loop to run the store's maintenance (after writes).
    pub(super) maintenance_due: tokio::sync::Notify,
    /// Recently computed chunk vectors by content hash (model id checked on use), so the
    /// same text in another document, or re-sent, is not embedded again.
    pub(super) embed_cache: quick_cache::sync::Cache<[u8; 16], Arc<(String, Vec<f32>)>>,
}

/// Counts reported by `GET /api/search/stats`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SearchStats {
    /// Documents indexed.
    pub documents: usize,
    /// Chunks indexed (keyword side).
    pub chunks: usize,
    /// Chunk vectors held (semantic side).
    pub vectors: usize,
    /// Points in the HNSW graph (0: exact scan only).
    pub graph_points: usize,
    /// Deleted points awaiting a graph rebuild.
    pub tombstones: usize,
    /// Vector dimension (0 before the first vector).
    pub dimension: usize,
    /// Whether semantic search is available.
    pub semantic_ready: bool,
    /// Why not, when not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub semantic_unavailable_reason: Option<String>,
    /// The embedding model's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// A handle that does not keep the service alive.
pub(super) struct WeakSearch(std::sync::Weak<Inner>);

impl WeakSearch {
    pub(super) fn upgrade(&self) -> Option<SearchService> {
        self.0.upgrade().map(|inner| SearchService { inner })
    }
}

/// The search service. Cheap to clone.
#[derive(Clone)]
pub struct SearchService {
    pub(super) inner: Arc<Inner>,
}

impl SearchService {
    /// Builds the service over the embedded store (redb tables of `store`, the keyword
    /// index under `data_dir`). Never fails or panics: the model and indexes are loaded by
    /// [`SearchService::start`] in the background, and a missing model only disables
    /// semantic search (see [`SearchService::readiness`]).
    pub fn new(store: Store, events: EventBus, jobs: JobQueue, config: SearchConfig, data_dir: PathBuf) -> Self {
        let embedded = EmbeddedStore::new(store, data_dir, config.vector_db.clone());
        Self::with_store(embedded, events, jobs, config)
    }

    /// Builds the service over `store`, which [`SearchService::start`] opens.
    pub fn with_store(store: impl Into<StoreHandle>, events: EventBus, jobs: JobQueue, config: SearchConfig) -> Self {
        describe_metrics();
        let (loaded, _) = watch::channel(false);
        let me = SearchService {
            inner: Arc::new(Inner {
                store: store.into(),
                events,
                jobs,
                config,
                model: RwLock::new(ModelState::Loading),
                loaded,
                ext: RwLock::new(Extensions::default()),
                maintenance_due: tokio::sync::Notify::new(),
                embed_cache: quick_cache::sync::Cache::new(EMBED_CACHE_ENTRIES),
            }),
        };
        me.register_job();
        me
    }

    pub(super) fn downgrade(&self) -> WeakSearch {
        WeakSearch(Arc::downgrade(&self.inner))
    }

    pub(super) fn jobs(&self) -> &JobQueue {
        &self.inner.jobs
    }

    pub(super) fn store(&self) -> &dyn SearchStore {
        self.inner.store.get()
    }

    /// The embedded store, when the service runs on it (benchmarks reach its vector index).
    pub fn embedded_store(&self) -> Option<&EmbeddedStore> {
        match &self.inner.store {
            StoreHandle::Embedded(s) => Some(s),
            StoreHandle::Custom(_) => None,
        }
    }

    /// The configuration in force.
    pub fn config(&self) -> &SearchConfig {
        &self.inner.config
    }

    /// Replaces the embedder (seed "Custom Embeddings"). Documents already indexed keep
    /// their vectors; re-index them if the new model differs.
    pub fn set_embedder(&self, embedder: Arc<dyn Embedder>) {
        *self.inner.model.write() = ModelState::Ready(embedder);
    }

    /// Registers hooks.
    pub fn add_hooks(&self, hooks: Arc<dyn SearchHooks>) {
        self.inner.ext.write().hooks.push(hooks);
    }

    /// Sets the reranker used when `search.enable_reranking` is on.
    pub fn set_reranker(&self, r: Arc<dyn Reranker>) {
        self.inner.ext.write().reranker = Some(r);
    }

    /// Sets the query expander.
    pub fn set_query_expander(&self, q: Arc<dyn QueryExpander>) {
        self.inner.ext.write().expander = Some(q);
    }

    /// The embedder, when semantic search is available.
    pub fn embedder_handle(&self) -> Result<Arc<dyn Embedder>, SearchError> {
        match &*self.inner.model.read() {
            ModelState::Ready(e) => Ok(e.clone()),
            ModelState::Missing(why) => Err(SearchError::Unavailable(why.clone())),
            ModelState::Loading => Err(SearchError::Unavailable("the embedding model is still loading".into())),
        }
    }

    /// The embedder once loading is over (as requests wait for it), when semantic search
    /// is available.
    pub async fn loaded_embedder(&self) -> Result<Arc<dyn Embedder>, SearchError> {
        self.wait_loaded().await;
        self.embedder_handle()
    }

    pub(super) async fn wait_loaded(&self) {
        let mut rx = self.inner.loaded.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    /// Counts, without waiting for the load.
    pub fn stats_now(&self) -> SearchStats {
        self.stats_of(&self.store().status())
    }

    pub(super) fn stats_of(&self, status: &StoreStatus) -> SearchStats {
        let s = status.stats;
        let (semantic_ready, reason, model) = match &*self.inner.model.read() {
            ModelState::Ready(e) => (true, None, Some(e.model_id().to_string())),
            ModelState::Missing(w) => (false, Some(w.clone()), None),
            ModelState::Loading => (false, Some("loading".to_string()), None),
        };
        SearchStats {
            documents: s.documents,
            chunks: s.chunks,
            vectors: s.vectors,
            graph_points: s.graph_points,
            tombstones: s.tombstones,
            dimension: s.dimension,
            semantic_ready,
            semantic_unavailable_reason: reason,
            model,
        }
    }

    /// Counts, once loaded.
    pub async fn stats(&self) -> SearchStats {
        self.wait_loaded().await;
        self.stats_now()
    }
}

/// Runs `work` on its own task, so a caller that goes away cannot stop it half-way (after
/// the store write, before the events).
pub(super) async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, SearchError>> + Send + 'static,
) -> Result<T, SearchError> {
    tokio::spawn(work).await.unwrap_or_else(|e| Err(SearchError::Index(format!("search task failed: {e}"))))
}

fn describe_metrics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        ::metrics::describe_counter!("hearth_search_documents_indexed_total", "Documents indexed (including re-indexed).");
        ::metrics::describe_counter!("hearth_search_chunks_embedded_total", "Chunks embedded by the model (cache misses).");
        ::metrics::describe_counter!("hearth_search_queries_total", "Search queries run, by mode.");
        ::metrics::describe_histogram!("hearth_search_query_seconds", "Search query latency in seconds, by mode.");
        ::metrics::describe_histogram!("hearth_search_index_seconds", "Time to index a request's documents, in seconds.");
    });
}
