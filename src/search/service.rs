//! The search service: owns the indexes, runs indexing and queries.

use super::config::SearchConfig;
use super::embed::{Embedder, normalize};
use super::error::SearchError;
use super::filter::Filter;
use super::fusion::{Fused, fuse};
use super::hooks::{QueryExpander, Reranker, SearchHooks};
use super::keyword::{ChunkDoc, KeywordIndex, KeywordOp};
use super::model::{Document, Mode, Scores, SearchQuery, SearchRequest, SearchResult};
use super::store::{self as sstore, DocRecord, PendingDoc};
use super::vector::VectorIndex;
use crate::{events::EventBus, jobs::JobQueue, runtime::Readiness, store::Store};
use parking_lot::RwLock;
use redb::ReadableDatabase;
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// Chunk vectors kept in the in-memory embedding cache (384 floats each: ~16 MB).
const EMBED_CACHE_ENTRIES: usize = 10_000;

/// What the service keeps in memory per document: enough to filter and to map hits back.
struct DocMeta {
    id: Arc<str>,
    metadata: Arc<Map<String, Value>>,
    chunks: u32,
}

#[derive(Default)]
struct Docs {
    by_id: HashMap<Arc<str>, u32>,
    by_num: HashMap<u32, DocMeta>,
    chunks: usize,
}

impl Docs {
    fn put(&mut self, num: u32, id: &str, metadata: Map<String, Value>, chunks: u32) {
        self.remove(id);
        let id: Arc<str> = Arc::from(id);
        self.by_id.insert(id.clone(), num);
        self.chunks += chunks as usize;
        self.by_num.insert(num, DocMeta { id, metadata: Arc::new(metadata), chunks });
    }

    fn remove(&mut self, id: &str) -> Option<u32> {
        let num = self.by_id.remove(id)?;
        if let Some(m) = self.by_num.remove(&num) {
            self.chunks -= m.chunks as usize;
        }
        Some(num)
    }
}

/// Readiness of the semantic side.
enum ModelState {
    Loading,
    Ready(Arc<dyn Embedder>),
    Missing(String),
}

#[derive(Default)]
struct Extensions {
    hooks: Vec<Arc<dyn SearchHooks>>,
    reranker: Option<Arc<dyn Reranker>>,
    expander: Option<Arc<dyn QueryExpander>>,
}

struct Inner {
    store: Store,
    events: EventBus,
    jobs: JobQueue,
    config: SearchConfig,
    data_dir: PathBuf,
    model: RwLock<ModelState>,
    keyword: RwLock<Result<KeywordIndex, String>>,
    vectors: VectorIndex,
    docs: RwLock<Docs>,
    loaded: watch::Sender<bool>,
    /// Serialises index writes: store write, then in-memory and keyword updates.
    write_order: tokio::sync::Mutex<()>,
    ext: RwLock<Extensions>,
    rebuild_due: tokio::sync::Notify,
    /// Recently computed chunk vectors by content hash (model id checked on use), so the
    /// same text in another document, or re-sent, is not embedded again.
    embed_cache: quick_cache::sync::Cache<[u8; 16], Arc<(String, Vec<f32>)>>,
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
    inner: Arc<Inner>,
}

impl SearchService {
    /// Builds the service. Never fails or panics: the model and indexes are loaded by
    /// [`SearchService::start`] in the background, and a missing model only disables
    /// semantic search (see [`SearchService::readiness`]).
    pub fn new(store: Store, events: EventBus, jobs: JobQueue, config: SearchConfig, data_dir: PathBuf) -> Self {
        describe_metrics();
        let (loaded, _) = watch::channel(false);
        let vectors = VectorIndex::new(config.vector_db.clone());
        let me = SearchService {
            inner: Arc::new(Inner {
                store,
                events,
                jobs,
                config,
                data_dir,
                model: RwLock::new(ModelState::Loading),
                keyword: RwLock::new(Err("keyword index not opened yet".into())),
                vectors,
                docs: RwLock::new(Docs::default()),
                loaded,
                write_order: tokio::sync::Mutex::new(()),
                ext: RwLock::new(Extensions::default()),
                rebuild_due: tokio::sync::Notify::new(),
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

    /// The configuration in force.
    pub fn config(&self) -> &SearchConfig {
        &self.inner.config
    }

    /// Whether the module can serve its requests: unavailable while the indexes load or
    /// when the keyword index cannot open; degraded (keyword search only) while the
    /// embedding model loads or when it is missing.
    pub fn readiness(&self) -> Readiness {
        let stats = self.stats_now();
        let details = serde_json::to_value(&stats).unwrap_or(Value::Null);
        if !*self.inner.loaded.borrow() {
            return Readiness::unavailable("search index is loading").with_details(details);
        }
        if let Err(e) = &*self.inner.keyword.read() {
            return Readiness::unavailable(format!("keyword index unavailable: {e}")).with_details(details);
        }
        match &*self.inner.model.read() {
            ModelState::Ready(_) => Readiness::ready().with_details(details),
            ModelState::Missing(why) => {
                Readiness::degraded(format!("semantic search unavailable: {why}; keyword search works")).with_details(details)
            }
            ModelState::Loading => Readiness::degraded("embedding model is loading; keyword search works").with_details(details),
        }
    }

    /// Starts loading (model, keyword index, documents and vectors from the store) and the
    /// background graph maintenance on `bg`. Requests wait for the load to finish.
    pub fn start(&self, bg: &crate::runtime::Background) {
        let me = self.clone();
        let shutdown = bg.shutdown.clone();
        bg.spawn(async move {
            let loader = me.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || loader.load()).await {
                tracing::error!(error = %e, "search: loading failed");
            }
            me.inner.loaded.send_replace(true);
            let filler = me.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || filler.backfill()).await {
                tracing::error!(error = %e, "search: embedding backfill failed");
            }
            me.inner.rebuild_due.notify_one();
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = me.inner.rebuild_due.notified() => {}
                    _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                }
                if me.inner.vectors.needs_rebuild() {
                    let m = me.clone();
                    let _ = tokio::task::spawn_blocking(move || m.inner.vectors.rebuild()).await;
                }
            }
        });
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

    fn model_dir(&self) -> PathBuf {
        let d = Path::new(&self.inner.config.embeddings.model_dir);
        d.to_path_buf()
    }

    /// Blocking: opens everything and loads the store's documents.
    fn load(&self) {
        let inner = &self.inner;
        let cfg = &inner.config.embeddings;
        if matches!(*inner.model.read(), ModelState::Loading) {
            let state = if cfg.provider != "local" {
                ModelState::Missing(format!("embedding provider '{}' is not available in this build; use 'local'", cfg.provider))
            } else {
                match super::embed::load_shared(&self.model_dir(), cfg.max_seq_length, cfg.batch_size, &cfg.model) {
                    Ok(e) => ModelState::Ready(e),
                    Err(e) => {
                        let why = match e {
                            SearchError::Unavailable(w) => w,
                            other => other.to_string(),
                        };
                        tracing::warn!(reason = %why, "search: semantic search unavailable; keyword search works");
                        ModelState::Missing(why)
                    }
                }
            };
            let mut m = inner.model.write();
            if matches!(*m, ModelState::Loading) {
                *m = state;
            }
        }
        let dir = inner.data_dir.join("search").join("tantivy");
        let kw = match KeywordIndex::open(&dir) {
            Ok(k) => k,
            Err(e) => {
                tracing::error!(error = %e, "search: keyword index unavailable");
                *inner.keyword.write() = Err(e.to_string());
                return;
            }
        };
        let result = (|| -> Result<(), SearchError> {
            let txn = inner.store.database()?.begin_read().map_err(crate::store::StoreError::from)?;
            let seq = sstore::read_seq(&txn)?;
            let rebuild_keyword = seq != kw.opened_seq;
            let mut ops = Vec::new();
            if rebuild_keyword {
                tracing::info!(store_seq = seq, index_seq = kw.opened_seq, "search: rebuilding the keyword index from the store");
                ops.push(KeywordOp::Clear { watermark: seq });
            }
            let mut docs = inner.docs.write();
            sstore::for_each_doc(&txn, |id, rec, vecs| {
                if rebuild_keyword {
                    let chunks = (0..rec.chunks.len()).map(|i| ChunkDoc { text: rec.chunk_text(i).to_string() }).collect();
                    ops.push(KeywordOp::Put { id: id.clone(), doc: rec.doc, chunks });
                }
                if let Some(v) = vecs {
                    inner.vectors.put(rec.doc, &v);
                }
                docs.put(rec.doc, &id, rec.metadata, rec.chunks.len() as u32);
                Ok(())
            })?;
            drop(docs);
            if rebuild_keyword {
                kw.apply_blocking(seq, ops)?;
            }
            Ok(())
        })();
        match result {
            Ok(()) => *inner.keyword.write() = Ok(kw),
            Err(e) => {
                tracing::error!(error = %e, "search: loading the index failed");
                *inner.keyword.write() = Err(e.to_string());
            }
        }
    }

    /// Blocking: embeds documents stored without vectors of the current model (indexed
    /// while the model was missing, or under another model), so semantic search covers
    /// every document. Skips a document that was re-indexed meanwhile.
    fn backfill(&self) {
        let Ok(embedder) = self.embedder() else { return };
        let model = embedder.model_id().to_string();
        let mut todo: Vec<(String, DocRecord)> = Vec::new();
        let listed = (|| -> Result<(), SearchError> {
            let txn = self.inner.store.database()?.begin_read().map_err(crate::store::StoreError::from)?;
            sstore::for_each_doc(&txn, |id, rec, _| {
                if rec.model != model && !rec.chunks.is_empty() {
                    todo.push((id, rec));
                }
                Ok(())
            })
        })();
        if let Err(e) = listed {
            tracing::error!(error = %e, "search: cannot list documents to embed");
            return;
        }
        if todo.is_empty() {
            return;
        }
        tracing::info!(documents = todo.len(), "search: embedding documents stored without vectors");
        let per_batch = self.inner.config.embeddings.batch_size.max(1);
        let mut at = 0;
        while at < todo.len() {
            let mut end = at;
            let mut texts = Vec::new();
            while end < todo.len() && (end == at || texts.len() + todo[end].1.chunks.len() <= per_batch) {
                texts.extend((0..todo[end].1.chunks.len()).map(|i| todo[end].1.chunk_text(i).to_string()));
                end += 1;
            }
            let vectors = match embedder.embed(&texts) {
                Ok(v) => v,
                Err(e) => {
                    tracing::error!(error = %e, "search: backfill embedding failed");
                    return;
                }
            };
            let mut it = vectors.into_iter();
            let batch: Vec<(String, u32, Vec<[u8; 16]>, Vec<Vec<f32>>)> = todo[at..end]
                .iter()
                .map(|(id, rec)| (id.clone(), rec.doc, rec.hashes.clone(), it.by_ref().take(rec.chunks.len()).collect()))
                .collect();
            let _order = self.inner.write_order.blocking_lock();
            let to_write = batch.clone();
            let model_id = model.clone();
            // A document that cannot be updated is skipped (it keeps working for keyword search).
            let written = self.inner.store.write_blocking(move |txn| -> Result<Vec<bool>, SearchError> {
                Ok(to_write
                    .iter()
                    .map(|(id, _, hashes, vs)| sstore::put_vectors(txn, id, hashes, &model_id, vs).unwrap_or(false))
                    .collect())
            });
            match written {
                Ok(flags) => {
                    for ((_, num, _, vs), ok) in batch.iter().zip(flags) {
                        if ok {
                            self.inner.vectors.put(*num, vs);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(error = %e, "search: storing backfilled vectors failed");
                    return;
                }
            }
            at = end;
        }
    }

    async fn wait_loaded(&self) {
        let mut rx = self.inner.loaded.subscribe();
        let _ = rx.wait_for(|v| *v).await;
    }

    fn keyword(&self) -> Result<KeywordIndex, SearchError> {
        self.inner.keyword.read().clone().map_err(SearchError::Index)
    }

    fn embedder(&self) -> Result<Arc<dyn Embedder>, SearchError> {
        match &*self.inner.model.read() {
            ModelState::Ready(e) => Ok(e.clone()),
            ModelState::Missing(why) => Err(SearchError::Unavailable(why.clone())),
            ModelState::Loading => Err(SearchError::Unavailable("the embedding model is still loading".into())),
        }
    }

    /// Indexes one document; resolves once it is durable and searchable.
    pub async fn index(&self, doc: Document) -> Result<(), SearchError> {
        doc.validate("", &self.inner.config)?;
        self.index_many(vec![doc], None).await.map(|_| ())
    }

    /// Indexes documents (validated with field names `documents[i].…`); `progress` is
    /// called with the fraction done while embedding. Returns how many were indexed.
    pub async fn index_batch(&self, docs: Vec<Document>, progress: Option<Arc<dyn Fn(f32) + Send + Sync>>) -> Result<usize, SearchError> {
        self.validate_batch(&docs)?;
        self.index_many(docs, progress).await
    }

    async fn index_many(&self, docs: Vec<Document>, progress: Option<Arc<dyn Fn(f32) + Send + Sync>>) -> Result<usize, SearchError> {
        let me = self.clone();
        // Detached: a client that disconnects cannot leave the store and indexes apart.
        tokio::spawn(async move { me.index_inner(docs, progress).await })
            .await
            .unwrap_or_else(|e| Err(SearchError::Index(format!("indexing task failed: {e}"))))
    }

    async fn index_inner(&self, docs: Vec<Document>, progress: Option<Arc<dyn Fn(f32) + Send + Sync>>) -> Result<usize, SearchError> {
        self.wait_loaded().await;
        let kw = self.keyword()?;
        let started = std::time::Instant::now();
        let embedder = self.embedder().ok();
        let me = self.clone();
        let n = docs.len();
        let (pending, docs) = tokio::task::spawn_blocking(move || me.prepare(docs, embedder, progress))
            .await
            .map_err(|e| SearchError::Index(format!("embedding task failed: {e}")))??;
        let _order = self.inner.write_order.lock().await;
        let to_write = pending.clone();
        let (seq, nums) = self.inner.store.write(move |txn| sstore::write_docs(txn, to_write)).await?;
        let mut ops = Vec::with_capacity(n);
        {
            let mut mem = self.inner.docs.write();
            for (p, &num) in pending.iter().zip(&nums) {
                mem.put(num, &p.id, p.record.metadata.clone(), p.record.chunks.len() as u32);
                let chunks = (0..p.record.chunks.len()).map(|i| ChunkDoc { text: p.record.chunk_text(i).to_string() }).collect();
                ops.push(KeywordOp::Put { id: p.id.clone(), doc: num, chunks });
            }
        }
        let me = self.clone();
        let vec_pending = pending;
        let vec_nums = nums.clone();
        tokio::task::spawn_blocking(move || {
            for (p, num) in vec_pending.iter().zip(vec_nums) {
                match &p.vectors {
                    Some(v) => me.inner.vectors.put(num, v),
                    None => me.inner.vectors.remove(num),
                }
            }
        })
        .await
        .map_err(|e| SearchError::Index(e.to_string()))?;
        let applied = kw.apply(seq, ops);
        drop(_order);
        applied.await?;
        self.inner.rebuild_due.notify_one();
        ::metrics::counter!("hearth_search_documents_indexed_total").increment(n as u64);
        ::metrics::histogram!("hearth_search_index_seconds").record(started.elapsed().as_secs_f64());
        let hooks = self.inner.ext.read().hooks.clone();
        for d in &docs {
            for h in &hooks {
                h.on_index(d);
            }
            self.inner.events.emit("search.indexed", &d.id, None, json!({"id": d.id}));
        }
        Ok(n)
    }

    /// Blocking: chunks, reuses cached vectors of unchanged chunks, embeds the rest.
    fn prepare(
        &self,
        docs: Vec<Document>,
        embedder: Option<Arc<dyn Embedder>>,
        progress: Option<Arc<dyn Fn(f32) + Send + Sync>>,
    ) -> Result<(Vec<PendingDoc>, Vec<Document>), SearchError> {
        let cfg = &self.inner.config;
        let now = chrono::Utc::now().timestamp_millis();
        let model_id = embedder.as_ref().map(|e| e.model_id().to_string()).unwrap_or_default();
        // Vectors of chunks already stored under the same model, keyed by content hash.
        let mut cache: HashMap<[u8; 16], Vec<f32>> = HashMap::new();
        if embedder.is_some() {
            let txn = self.inner.store.database()?.begin_read().map_err(crate::store::StoreError::from)?;
            for d in &docs {
                if let Some(old) = sstore::get_doc(&txn, &d.id)?
                    && old.model == model_id
                    && let Some(vs) = sstore::get_vectors(&txn, &d.id, old.chunks.len())?
                {
                    for (h, v) in old.hashes.iter().zip(vs) {
                        cache.insert(*h, v);
                    }
                }
            }
        }
        let mut pending = Vec::with_capacity(docs.len());
        let mut todo: Vec<(usize, usize, String)> = Vec::new(); // (doc, chunk, text)
        for (di, d) in docs.iter().enumerate() {
            let ranges = super::chunk::chunk(&d.content, cfg.chunking.size, cfg.chunking.overlap);
            let chunks: Vec<(u32, u32)> = ranges.iter().map(|r| (r.start as u32, r.end as u32)).collect();
            let hashes: Vec<[u8; 16]> = ranges.iter().map(|r| chunk_hash(&d.content[r.clone()])).collect();
            let mut vectors = Vec::with_capacity(ranges.len());
            for (ci, r) in ranges.iter().enumerate() {
                let cached = cache.get(&hashes[ci]).cloned().or_else(|| {
                    self.inner.embed_cache.get(&hashes[ci]).filter(|e| e.0 == model_id && embedder.is_some()).map(|e| e.1.clone())
                });
                match cached {
                    Some(v) => vectors.push(v),
                    None => {
                        vectors.push(Vec::new());
                        todo.push((di, ci, d.content[r.clone()].to_string()));
                    }
                }
            }
            let record = DocRecord {
                doc: 0,
                content: d.content.clone(),
                metadata: d.metadata.clone(),
                chunks,
                hashes,
                model: if embedder.is_some() { model_id.clone() } else { String::new() },
                indexed_at: now,
            };
            pending.push(PendingDoc { id: d.id.clone(), record, vectors: embedder.as_ref().map(|_| vectors) });
        }
        if let Some(e) = &embedder {
            let batch = cfg.embeddings.batch_size.max(1);
            let total = todo.len().max(1);
            // A batch is padded to its longest text: batching texts of similar length
            // (full chunks together, short last chunks together) wastes less compute.
            todo.sort_by_key(|t| t.2.len());
            for (done, part) in todo.chunks(batch).enumerate() {
                let texts: Vec<String> = part.iter().map(|t| t.2.clone()).collect();
                let vs = e.embed(&texts)?;
                if vs.len() != texts.len() {
                    return Err(SearchError::Embedding(format!("{} vectors for {} texts", vs.len(), texts.len())));
                }
                for ((di, ci, _), v) in part.iter().zip(vs) {
                    self.inner.embed_cache.insert(pending[*di].record.hashes[*ci], Arc::new((model_id.clone(), v.clone())));
                    if let Some(list) = pending[*di].vectors.as_mut() {
                        list[*ci] = v;
                    }
                }
                if let Some(p) = &progress {
                    p(((done + 1) * batch).min(total) as f32 / total as f32);
                }
            }
            ::metrics::counter!("hearth_search_chunks_embedded_total").increment(todo.len() as u64);
        }
        Ok((pending, docs))
    }

    /// Deletes a document; `NotFound` when it does not exist.
    pub async fn delete(&self, id: &str) -> Result<(), SearchError> {
        self.wait_loaded().await;
        let me = self.clone();
        let id = id.to_string();
        tokio::spawn(async move {
            let kw = me.keyword()?;
            let _order = me.inner.write_order.lock().await;
            let key = id.clone();
            let Some((seq, num)) = me.inner.store.write(move |txn| sstore::delete_doc(txn, &key)).await? else {
                return Err(SearchError::NotFound(id));
            };
            me.inner.docs.write().remove(&id);
            me.inner.vectors.remove(num);
            let applied = kw.apply(seq, vec![KeywordOp::Delete { id: id.clone() }]);
            drop(_order);
            applied.await?;
            me.inner.rebuild_due.notify_one();
            me.inner.events.emit("search.deleted", &id, None, json!({"id": id}));
            Ok(())
        })
        .await
        .unwrap_or_else(|e| Err(SearchError::Index(format!("delete task failed: {e}"))))
    }

    /// Runs a search request.
    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<SearchResult>, SearchError> {
        let q = req.validate(&self.inner.config)?;
        self.run_query(q).await
    }

    /// Runs a validated query.
    pub async fn run_query(&self, mut q: SearchQuery) -> Result<Vec<SearchResult>, SearchError> {
        self.wait_loaded().await;
        let started = std::time::Instant::now();
        let (hooks, expander, reranker) = {
            let x = self.inner.ext.read();
            (x.hooks.clone(), x.expander.clone(), x.reranker.clone())
        };
        if let Some(x) = &expander {
            q.query = x.expand(&q.query);
        }
        for h in &hooks {
            h.on_search(&q);
        }
        let embedder = if q.mode == Mode::Keyword { None } else { Some(self.embedder()?) };
        let kw = self.keyword()?;
        let mode = q.mode;
        let allow = self.allow_fn(&q.filter);
        let k = self.inner.config.search.candidates.max(q.limit);
        // The two retrievers run at once on blocking threads: in hybrid mode the keyword
        // search overlaps the query's embedding (the longest step) instead of adding to it.
        let keyword_task = (mode != Mode::Semantic).then(|| {
            let (kw, query, allow) = (kw.clone(), q.query.clone(), allow.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<(u32, u32, f32)>, SearchError> {
                Ok(best_per_doc(kw.search(&query, k, allow)?.iter().map(|h| (h.doc, h.chunk, h.score))))
            })
        });
        let semantic_task = embedder.map(|e| {
            let (me, query, allow) = (self.clone(), q.query.clone(), allow.clone());
            tokio::task::spawn_blocking(move || -> Result<Vec<(u32, u32, f32)>, SearchError> {
                let qv = e.embed_query(&query)?;
                let allow_ref = allow.as_deref().map(|f| f as &(dyn Fn(u32) -> bool + Sync));
                Ok(best_per_doc(me.inner.vectors.search(&qv, k, allow_ref).iter().map(|h| (h.doc, h.chunk, h.score))))
            })
        });
        let (keyword_hits, semantic_hits) = tokio::join!(retrieved(keyword_task), retrieved(semantic_task));
        let (keyword_hits, semantic_hits) = (keyword_hits?, semantic_hits?);
        let me = self.clone();
        let q2 = q.clone();
        let mut results = tokio::task::spawn_blocking(move || -> Result<Vec<SearchResult>, SearchError> {
            let fused: Vec<Fused> = match mode {
                Mode::Keyword => {
                    keyword_hits.iter().map(|&(d, _, s)| Fused { doc: d, score: s, keyword: Some(s), semantic: None }).collect()
                }
                Mode::Semantic => {
                    semantic_hits.iter().map(|&(d, _, s)| Fused { doc: d, score: s, keyword: None, semantic: Some(s) }).collect()
                }
                Mode::Hybrid => {
                    let kl: Vec<(u32, f32)> = keyword_hits.iter().map(|&(d, _, s)| (d, s)).collect();
                    let sl: Vec<(u32, f32)> = semantic_hits.iter().map(|&(d, _, s)| (d, s)).collect();
                    fuse(&kl, &sl, q2.fusion)
                }
            };
            let best_chunk: HashMap<u32, u32> =
                keyword_hits.iter().map(|&(d, c, _)| (d, c)).chain(semantic_hits.iter().map(|&(d, c, _)| (d, c))).collect();
            let picked: Vec<Fused> = fused.into_iter().filter(|f| q2.threshold.is_none_or(|t| f.score >= t)).take(q2.limit).collect();
            me.materialise(&picked, &best_chunk, q2.highlight.then_some(q2.query.as_str()), &kw)
        })
        .await
        .map_err(|e| SearchError::Index(format!("search task failed: {e}")))??;
        if self.inner.config.search.enable_reranking
            && let Some(r) = reranker
        {
            let query = q.query.clone();
            results =
                tokio::task::spawn_blocking(move || r.rerank(&query, results)).await.map_err(|e| SearchError::Index(e.to_string()))?;
        }
        for h in &hooks {
            h.on_result(&q, &mut results);
        }
        let mode_label = match mode {
            Mode::Keyword => "keyword",
            Mode::Semantic => "semantic",
            Mode::Hybrid => "hybrid",
        };
        ::metrics::counter!("hearth_search_queries_total", "mode" => mode_label).increment(1);
        ::metrics::histogram!("hearth_search_query_seconds", "mode" => mode_label).record(started.elapsed().as_secs_f64());
        Ok(results)
    }

    /// Documents most similar to `id` (never `id` itself), by its mean chunk vector.
    pub async fn similar(&self, id: &str, limit: usize) -> Result<Vec<SearchResult>, SearchError> {
        self.wait_loaded().await;
        let num = self.inner.docs.read().by_id.get(id).copied().ok_or_else(|| SearchError::NotFound(id.to_string()))?;
        let kw = self.keyword()?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            let vs = me.inner.vectors.doc_vectors(num);
            if vs.is_empty() {
                me.embedder()?;
                return Err(SearchError::Unavailable("this document has no vectors yet (indexed while the model was missing)".into()));
            }
            let dim = vs[0].len();
            let mut mean = vec![0.0f32; dim];
            for v in &vs {
                mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
            }
            let q = normalize(mean);
            let not_self = move |d: u32| d != num;
            let k = me.inner.config.search.candidates.max(limit);
            let hits = best_per_doc(me.inner.vectors.search(&q, k, Some(&not_self)).iter().map(|h| (h.doc, h.chunk, h.score)));
            let fused: Vec<Fused> =
                hits.iter().take(limit).map(|&(d, _, s)| Fused { doc: d, score: s, keyword: None, semantic: Some(s) }).collect();
            let best: HashMap<u32, u32> = hits.iter().map(|&(d, c, _)| (d, c)).collect();
            me.materialise(&fused, &best, None, &kw)
        })
        .await
        .map_err(|e| SearchError::Index(e.to_string()))?
    }

    /// Blocking: loads the picked documents and builds results with their best chunk.
    fn materialise(
        &self,
        picked: &[Fused],
        best_chunk: &HashMap<u32, u32>,
        highlight: Option<&str>,
        kw: &KeywordIndex,
    ) -> Result<Vec<SearchResult>, SearchError> {
        let ids: Vec<(u32, Arc<str>, Arc<Map<String, Value>>)> = {
            let docs = self.inner.docs.read();
            picked.iter().filter_map(|f| docs.by_num.get(&f.doc).map(|m| (f.doc, m.id.clone(), m.metadata.clone()))).collect()
        };
        let txn = self.inner.store.database()?.begin_read().map_err(crate::store::StoreError::from)?;
        let mut out = Vec::with_capacity(ids.len());
        for (f, (num, id, metadata)) in picked.iter().filter(|f| ids.iter().any(|x| x.0 == f.doc)).zip(ids.iter()) {
            debug_assert_eq!(f.doc, *num);
            let Some(rec) = sstore::get_doc(&txn, id)? else { continue };
            let chunk = best_chunk.get(num).copied().unwrap_or(0) as usize;
            let text = rec.chunk_text(chunk);
            let content = match highlight {
                Some(q) => highlight_ranges(text, &kw.matching_ranges(q, text)),
                None => text.to_string(),
            };
            out.push(SearchResult {
                id: id.to_string(),
                score: f.score,
                content,
                metadata: (**metadata).clone(),
                scores: Scores { keyword: f.keyword, semantic: f.semantic },
            });
        }
        Ok(out)
    }

    /// A filter predicate over document numbers, or `None` for no filter.
    ///
    /// The filter is evaluated once per query over every document, under one read lock,
    /// into a bitset; the retrievers then test bits (they call the predicate for every
    /// matching keyword hit and every vector candidate, from two threads at once). The
    /// set is computed on first use, on the retriever's blocking thread, so the async
    /// executor never does it; the other retriever waits for it rather than repeating it.
    fn allow_fn(&self, filter: &Filter) -> Option<Arc<dyn Fn(u32) -> bool + Send + Sync>> {
        if filter.is_empty() {
            return None;
        }
        let me = self.clone();
        let filter = filter.clone();
        let bits: std::sync::OnceLock<Vec<u64>> = std::sync::OnceLock::new();
        Some(Arc::new(move |d: u32| {
            let bits = bits.get_or_init(|| {
                let docs = me.inner.docs.read();
                let top = docs.by_num.keys().copied().max().unwrap_or(0) as usize;
                let mut bits = vec![0u64; top / 64 + 1];
                for (&num, m) in &docs.by_num {
                    if filter.matches(&m.metadata) {
                        bits[num as usize / 64] |= 1 << (num % 64);
                    }
                }
                bits
            });
            bits.get(d as usize / 64).is_some_and(|w| (w >> (d % 64)) & 1 == 1)
        }))
    }

    /// Counts, without waiting for the load.
    pub fn stats_now(&self) -> SearchStats {
        let (documents, chunks) = {
            let d = self.inner.docs.read();
            (d.by_num.len(), d.chunks)
        };
        let v = self.inner.vectors.stats();
        let (semantic_ready, reason, model) = match &*self.inner.model.read() {
            ModelState::Ready(e) => (true, None, Some(e.model_id().to_string())),
            ModelState::Missing(w) => (false, Some(w.clone()), None),
            ModelState::Loading => (false, Some("loading".to_string()), None),
        };
        SearchStats {
            documents,
            chunks,
            vectors: v.vectors,
            graph_points: v.graph_points,
            tombstones: v.tombstones,
            dimension: v.dimension,
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

    /// Blocking: rebuilds the HNSW graph now if it is due (benchmarks, tests).
    pub fn rebuild_graph_if_due(&self) {
        if self.inner.vectors.needs_rebuild() {
            self.inner.vectors.rebuild();
        }
    }

    /// The vector index (benchmarks measure its recall against exact search).
    pub fn vector_index(&self) -> &VectorIndex {
        &self.inner.vectors
    }

    /// The embedder, when semantic search is available.
    pub fn embedder_handle(&self) -> Result<Arc<dyn Embedder>, SearchError> {
        self.embedder()
    }
}

/// The hits of one retriever's task (none when the retriever did not run).
async fn retrieved(
    task: Option<tokio::task::JoinHandle<Result<Vec<(u32, u32, f32)>, SearchError>>>,
) -> Result<Vec<(u32, u32, f32)>, SearchError> {
    match task {
        Some(t) => t.await.map_err(|e| SearchError::Index(format!("search task failed: {e}")))?,
        None => Ok(Vec::new()),
    }
}

/// Keeps each document's best chunk, preserving best-first order.
fn best_per_doc(hits: impl Iterator<Item = (u32, u32, f32)>) -> Vec<(u32, u32, f32)> {
    let mut seen = std::collections::HashSet::new();
    let mut all: Vec<(u32, u32, f32)> = hits.collect();
    all.sort_by(|a, b| b.2.total_cmp(&a.2));
    all.retain(|h| seen.insert(h.0));
    all
}

fn chunk_hash(text: &str) -> [u8; 16] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}

/// Wraps each range of `text` in `<em>`…`</em>`.
fn highlight_ranges(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len() + ranges.len() * 9);
    let mut at = 0;
    for r in ranges {
        if r.start < at || r.end > text.len() {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str("<em>");
        out.push_str(&text[r.clone()]);
        out.push_str("</em>");
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
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
