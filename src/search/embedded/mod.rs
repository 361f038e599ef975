//! The embedded search store: everything in the data directory, nothing to run beside.
//!
//! - redb ([`tables`]) is the source of truth for documents and their vectors;
//! - tantivy ([`keyword`]) holds one BM25 document per chunk, in `<data_dir>/search/tantivy`;
//! - [`vector`] holds the chunk vectors in memory with an HNSW graph ([`distance`] is the
//!   dot product both use);
//! - [`docs`] keeps number ↔ id and metadata in memory, for filters and naming hits.
//!
//! Invariants:
//! - The tantivy index, the vectors in memory and the document map are derived from redb
//!   and rebuilt at [`SearchStore::open`] when missing or stale (the index records the
//!   store's operation sequence number it reflects).
//! - Writes are serialised (redb write, then the map, the vectors and the keyword index,
//!   in that order, under one lock) and run to the end on their own task even if the
//!   caller goes away, so the derived state always converges on redb's.

pub mod distance;
mod docs;
pub mod keyword;
mod read;
pub mod tables;
pub mod vector;
mod write;

use super::backend::{ChunkHit, DocNum, Scope, SearchStore, StoreState, StoreStats, StoreStatus, StoredDoc, VectorUpdate};
use super::config::VectorDbConfig;
use super::error::SearchError;
use super::filter::Filter;
use crate::store::Store;
use async_trait::async_trait;
use docs::Docs;
use keyword::KeywordIndex;
use parking_lot::RwLock;
use std::ops::Range;
use std::path::PathBuf;
use std::sync::Arc;
use vector::VectorIndex;

/// The embedded store. Cheap to clone.
#[derive(Clone)]
pub struct EmbeddedStore(Arc<Inner>);

struct Inner {
    store: Store,
    /// Where the tantivy index lives.
    keyword_dir: PathBuf,
    /// Not opened yet (`Ok(None)`), open, or why it could not open.
    keyword: RwLock<Result<Option<KeywordIndex>, String>>,
    vectors: VectorIndex,
    docs: Arc<RwLock<Docs>>,
    /// Serialises writes: redb, then the map, vectors and keyword index.
    write_order: tokio::sync::Mutex<()>,
}

impl EmbeddedStore {
    /// A store over the search tables of `store`, with its keyword index in
    /// `<data_dir>/search/tantivy`. Nothing is read until [`SearchStore::open`].
    pub fn new(store: Store, data_dir: PathBuf, cfg: VectorDbConfig) -> EmbeddedStore {
        EmbeddedStore(Arc::new(Inner {
            store,
            keyword_dir: data_dir.join("search").join("tantivy"),
            keyword: RwLock::new(Ok(None)),
            vectors: VectorIndex::new(cfg),
            docs: Arc::default(),
            write_order: tokio::sync::Mutex::new(()),
        }))
    }

    /// The vector index (benchmarks measure its recall against exact search).
    pub fn vector_index(&self) -> &VectorIndex {
        &self.0.vectors
    }

    /// Blocking: rebuilds the HNSW graph now if it is due (benchmarks, tests).
    pub fn rebuild_graph_if_due(&self) {
        if self.0.vectors.needs_rebuild() {
            self.0.vectors.rebuild();
        }
    }

    /// The keyword index, or the error every operation answers while it cannot serve.
    fn keyword_index(&self) -> Result<KeywordIndex, SearchError> {
        self.with_keyword(KeywordIndex::clone)
    }

    /// Whether the store can serve (as [`EmbeddedStore::keyword_index`], without a clone).
    fn serving(&self) -> Result<(), SearchError> {
        self.with_keyword(|_| ())
    }

    fn with_keyword<T>(&self, f: impl FnOnce(&KeywordIndex) -> T) -> Result<T, SearchError> {
        match &*self.0.keyword.read() {
            Ok(Some(k)) => Ok(f(k)),
            Ok(None) => Err(SearchError::Index("keyword index not opened yet".into())),
            Err(e) => Err(SearchError::Index(e.clone())),
        }
    }

    /// Runs `f` on the blocking pool with a handle on the store.
    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&EmbeddedStore) -> Result<T, SearchError> + Send + 'static,
    ) -> Result<T, SearchError> {
        let me = self.clone();
        tokio::task::spawn_blocking(move || f(&me)).await.map_err(|e| SearchError::Index(format!("search task failed: {e}")))?
    }

    /// Runs the write `f` on its own task (so it completes even if the caller goes away),
    /// holding the write lock.
    async fn detached_write<T, F>(&self, f: impl FnOnce(EmbeddedStore, KeywordIndex) -> F + Send + 'static) -> Result<T, SearchError>
    where
        T: Send + 'static,
        F: std::future::Future<Output = Result<T, SearchError>> + Send + 'static,
    {
        let me = self.clone();
        tokio::spawn(async move {
            let kw = me.keyword_index()?;
            f(me, kw).await
        })
        .await
        .unwrap_or_else(|e| Err(SearchError::Index(format!("write task failed: {e}"))))
    }
}

#[async_trait]
impl SearchStore for EmbeddedStore {
    async fn open(&self) -> Result<(), SearchError> {
        let me = self.clone();
        let opened = tokio::task::spawn_blocking(move || me.load())
            .await
            .unwrap_or_else(|e| Err(SearchError::Index(format!("loading task failed: {e}"))));
        match opened {
            Ok(kw) => {
                *self.0.keyword.write() = Ok(Some(kw));
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "search: keyword index unavailable");
                *self.0.keyword.write() = Err(e.to_string());
                Err(e)
            }
        }
    }

    async fn upsert(&self, docs: Vec<StoredDoc>) -> Result<Vec<DocNum>, SearchError> {
        self.detached_write(move |me, kw| async move { me.upsert_now(kw, docs).await }).await
    }

    async fn put_vectors(&self, updates: Vec<VectorUpdate>) -> Result<Vec<bool>, SearchError> {
        self.detached_write(move |me, _| async move { me.put_vectors_now(updates).await }).await
    }

    async fn delete(&self, ids: &[String]) -> Result<Vec<String>, SearchError> {
        let ids = ids.to_vec();
        self.detached_write(move |me, kw| async move { me.delete_now(kw, |_| ids).await }).await
    }

    async fn delete_matching(&self, filter: &Filter) -> Result<Vec<String>, SearchError> {
        let filter = filter.clone();
        self.detached_write(move |me, kw| async move {
            me.delete_now(kw, move |docs| docs.by_num.values().filter(|m| filter.matches(&m.metadata)).map(|m| m.id.to_string()).collect())
                .await
        })
        .await
    }

    async fn keyword(&self, query: &str, scope: &Scope, k: usize) -> Result<Vec<ChunkHit>, SearchError> {
        let (query, scope) = (query.to_string(), scope.clone());
        self.blocking(move |me| {
            let hits = me.with_keyword(|index| index.search(&query, k, docs::allow(&me.0.docs, &scope)))??;
            Ok(me.0.docs.read().name(hits.iter().map(|h| (h.doc, h.chunk, h.score))))
        })
        .await
    }

    async fn vector(&self, query: &[f32], scope: &Scope, k: usize) -> Result<Vec<ChunkHit>, SearchError> {
        let (query, scope) = (query.to_vec(), scope.clone());
        self.blocking(move |me| {
            me.serving()?;
            let allow = docs::allow(&me.0.docs, &scope);
            let allow_ref = allow.as_deref().map(|f| f as &(dyn Fn(u32) -> bool + Sync));
            let hits = me.0.vectors.search(&query, k, allow_ref);
            Ok(me.0.docs.read().name(hits.iter().map(|h| (h.doc, h.chunk, h.score))))
        })
        .await
    }

    async fn get(&self, ids: &[String], vectors: bool) -> Result<Vec<Option<StoredDoc>>, SearchError> {
        self.serving()?;
        let ids = ids.to_vec();
        self.0.store.read(move |txn| read::get(txn, ids, vectors)).await
    }

    async fn missing_vectors(&self, model: &str, after: Option<&str>, limit: usize) -> Result<Vec<StoredDoc>, SearchError> {
        self.serving()?;
        let (model, after) = (model.to_string(), after.map(str::to_string));
        self.0.store.read(move |txn| tables::docs_after(txn, after.as_deref(), limit, |r| r.model != model && !r.chunks.is_empty())).await
    }

    fn matching_ranges(&self, query: &str, text: &str) -> Vec<Range<usize>> {
        self.with_keyword(|k| k.matching_ranges(query, text)).unwrap_or_default()
    }

    fn status(&self) -> StoreStatus {
        let state = match &*self.0.keyword.read() {
            Ok(Some(_)) => StoreState::Ready,
            Ok(None) => StoreState::Opening,
            Err(e) => StoreState::Unavailable(format!("keyword index unavailable: {e}")),
        };
        let (documents, chunks) = {
            let d = self.0.docs.read();
            (d.by_num.len(), d.chunks)
        };
        let v = self.0.vectors.stats();
        let stats = StoreStats {
            documents,
            chunks,
            vectors: v.vectors,
            dimension: v.dimension,
            graph_points: v.graph_points,
            tombstones: v.tombstones,
        };
        StoreStatus { state, stats }
    }

    async fn maintain(&self) {
        if self.0.vectors.needs_rebuild() {
            let me = self.clone();
            let _ = tokio::task::spawn_blocking(move || me.0.vectors.rebuild()).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::TempDb;
    use crate::search::conformance;

    async fn open(dir: PathBuf, cfg: VectorDbConfig) -> EmbeddedStore {
        let store = EmbeddedStore::new(Store::open(&dir).expect("redb opens"), dir, cfg);
        store.open().await.expect("the embedded store opens");
        store
    }

    fn dirs(cfg: VectorDbConfig) -> TempDb<EmbeddedStore> {
        TempDb::new(move |dir| open(dir, cfg.clone()))
    }

    #[tokio::test]
    async fn the_embedded_store_passes_the_conformance_suite() {
        conformance::run(dirs(VectorDbConfig::default())).await;
    }

    #[tokio::test]
    async fn the_embedded_store_passes_it_through_the_hnsw_graph_too() {
        // Graph from the first vector on (built by `maintain`): the walk, not the scan.
        conformance::run(dirs(VectorDbConfig { exact_below: 0, ..Default::default() })).await;
    }
}
