//! Indexing and deleting: documents are chunked, each chunk's vector is reused (from the
//! stored document or the embedding cache) or computed, and the batch is written to the
//! store, which acknowledges it once it is durable and searchable.

use super::SearchService;
use super::backend::{DocRecord, StoredDoc};
use super::embed::Embedder;
use super::error::SearchError;
use super::filter::Filter;
use super::model::Document;
use super::service::detached;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;

/// Called with the fraction of chunks embedded so far.
pub type Progress = Arc<dyn Fn(f32) + Send + Sync>;

/// A chunk to embed: (document index, chunk index, text).
type Todo = (usize, usize, String);

impl SearchService {
    /// Indexes one document; resolves once it is durable and searchable.
    pub async fn index(&self, doc: Document) -> Result<(), SearchError> {
        doc.validate("", &self.inner.config)?;
        self.index_many(vec![doc], None).await.map(|_| ())
    }

    /// Indexes documents (validated with field names `documents[i].…`); `progress` is
    /// called with the fraction done while embedding. Returns how many were indexed.
    pub async fn index_batch(&self, docs: Vec<Document>, progress: Option<Progress>) -> Result<usize, SearchError> {
        self.validate_batch(&docs)?;
        self.index_many(docs, progress).await
    }

    async fn index_many(&self, docs: Vec<Document>, progress: Option<Progress>) -> Result<usize, SearchError> {
        let me = self.clone();
        detached(async move { me.index_now(docs, progress).await }).await
    }

    async fn index_now(&self, docs: Vec<Document>, progress: Option<Progress>) -> Result<usize, SearchError> {
        self.wait_loaded().await;
        let started = std::time::Instant::now();
        let embedder = self.embedder_handle().ok();
        let n = docs.len();
        let (pending, docs) = self.prepare(docs, embedder, progress).await?;
        self.store().upsert(pending).await?;
        self.inner.maintenance_due.notify_one();
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

    /// Chunks `docs`, reuses the vectors of unchanged chunks (stored under the same model,
    /// or in the embedding cache) and embeds the rest. Returns the documents to write and
    /// `docs` back.
    async fn prepare(
        &self,
        docs: Vec<Document>,
        embedder: Option<Arc<dyn Embedder>>,
        progress: Option<Progress>,
    ) -> Result<(Vec<StoredDoc>, Vec<Document>), SearchError> {
        let model_id = embedder.as_ref().map(|e| e.model_id().to_string()).unwrap_or_default();
        // Vectors of chunks already stored under the same model, keyed by content hash.
        let mut stored: HashMap<[u8; 16], Vec<f32>> = HashMap::new();
        if embedder.is_some() {
            let ids: Vec<String> = docs.iter().map(|d| d.id.clone()).collect();
            for old in self.store().get(&ids, true).await?.into_iter().flatten() {
                if old.record.model == model_id
                    && let Some(vs) = old.vectors
                {
                    stored.extend(old.record.hashes.iter().copied().zip(vs));
                }
            }
        }
        let me = self.clone();
        let with_vectors = embedder.is_some();
        let (mut pending, mut todo, docs) = tokio::task::spawn_blocking(move || {
            let (pending, todo) = me.plan(&docs, &stored, &model_id, with_vectors);
            (pending, todo, docs)
        })
        .await
        .map_err(|e| SearchError::Index(format!("chunking task failed: {e}")))?;
        if let Some(e) = &embedder {
            self.embed_missing(&**e, &mut pending, &mut todo, progress).await?;
        }
        Ok((pending, docs))
    }

    /// Blocking: chunks each document and takes every chunk's vector from `stored` or the
    /// embedding cache when it can; returns the documents (vectors still to compute left
    /// empty) and the chunks to embed.
    fn plan(
        &self,
        docs: &[Document],
        stored: &HashMap<[u8; 16], Vec<f32>>,
        model_id: &str,
        with_vectors: bool,
    ) -> (Vec<StoredDoc>, Vec<Todo>) {
        let cfg = &self.inner.config;
        let now = chrono::Utc::now().timestamp_millis();
        let mut pending = Vec::with_capacity(docs.len());
        let mut todo = Vec::new();
        for (di, d) in docs.iter().enumerate() {
            let ranges = super::chunk::chunk(&d.content, cfg.chunking.size, cfg.chunking.overlap);
            let chunks: Vec<(u32, u32)> = ranges.iter().map(|r| (r.start as u32, r.end as u32)).collect();
            let hashes: Vec<[u8; 16]> = ranges.iter().map(|r| chunk_hash(&d.content[r.clone()])).collect();
            let mut vectors = Vec::with_capacity(ranges.len());
            for (ci, r) in ranges.iter().enumerate() {
                let cached = stored
                    .get(&hashes[ci])
                    .cloned()
                    .or_else(|| self.inner.embed_cache.get(&hashes[ci]).filter(|e| e.0 == model_id && with_vectors).map(|e| e.1.clone()));
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
                model: if with_vectors { model_id.to_string() } else { String::new() },
                indexed_at: now,
            };
            pending.push(StoredDoc { id: d.id.clone(), record, vectors: with_vectors.then_some(vectors) });
        }
        (pending, todo)
    }

    /// Embeds the chunks in `todo` in batches, fills their vectors into `pending` and the
    /// embedding cache, and reports progress.
    async fn embed_missing(
        &self,
        e: &dyn Embedder,
        pending: &mut [StoredDoc],
        todo: &mut [Todo],
        progress: Option<Progress>,
    ) -> Result<(), SearchError> {
        let model_id = e.model_id().to_string();
        let batch = self.inner.config.embeddings.batch_size.max(1);
        let total = todo.len().max(1);
        // A batch is padded to its longest text: batching texts of similar length (full
        // chunks together, short last chunks together) wastes less compute.
        todo.sort_by_key(|t| t.2.len());
        for (done, part) in todo.chunks_mut(batch).enumerate() {
            let texts: Vec<String> = part.iter_mut().map(|t| std::mem::take(&mut t.2)).collect();
            let vs = e.embed(&texts).await?;
            if vs.len() != texts.len() {
                return Err(SearchError::Embedding(format!("{} vectors for {} texts", vs.len(), texts.len())));
            }
            for (&(di, ci, _), v) in part.iter().zip(vs) {
                self.inner.embed_cache.insert(pending[di].record.hashes[ci], Arc::new((model_id.clone(), v.clone())));
                if let Some(list) = pending[di].vectors.as_mut() {
                    list[ci] = v;
                }
            }
            if let Some(p) = &progress {
                p(((done + 1) * batch).min(total) as f32 / total as f32);
            }
        }
        ::metrics::counter!("hearth_search_chunks_embedded_total").increment(todo.len() as u64);
        Ok(())
    }

    /// Deletes a document; `NotFound` when it does not exist.
    pub async fn delete(&self, id: &str) -> Result<(), SearchError> {
        let ids = vec![id.to_string()];
        if self.delete_where(move |s| async move { s.store().delete(&ids).await }).await?.is_empty() {
            return Err(SearchError::NotFound(id.to_string()));
        }
        Ok(())
    }

    /// Deletes every document whose metadata matches `filter`; returns their ids.
    pub async fn delete_matching(&self, filter: &Filter) -> Result<Vec<String>, SearchError> {
        let filter = filter.clone();
        self.delete_where(move |s| async move { s.store().delete_matching(&filter).await }).await
    }

    /// Runs the store delete `op` once loaded, to the end even if the caller goes away,
    /// then announces each deleted document.
    async fn delete_where<F, Fut>(&self, op: F) -> Result<Vec<String>, SearchError>
    where
        F: FnOnce(SearchService) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<Vec<String>, SearchError>> + Send,
    {
        let me = self.clone();
        detached(async move {
            me.wait_loaded().await;
            let removed = op(me.clone()).await?;
            if !removed.is_empty() {
                me.inner.maintenance_due.notify_one();
            }
            for id in &removed {
                me.inner.events.emit("search.deleted", id, None, json!({"id": id}));
            }
            Ok(removed)
        })
        .await
    }
}

fn chunk_hash(text: &str) -> [u8; 16] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(text.as_bytes());
    let mut out = [0u8; 16];
    out.copy_from_slice(&d[..16]);
    out
}
