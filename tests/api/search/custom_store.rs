//! A custom [`SearchStore`] plugged into a service with `SearchService::with_store`: the
//! service works through it unchanged and calls it once per query or batch, never per
//! chunk or per vector.

use crate::common::TestServer;
use async_trait::async_trait;
use hearth::search::filter::Filter;
use hearth::search::{
    ChunkHit, Document, EmbeddedStore, Scope, SearchRequest, SearchService, SearchStore, StoreStatus, StoredDoc, VectorUpdate,
};
use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

/// The embedded store behind a decorator that counts the calls of each method.
struct Counting {
    inner: EmbeddedStore,
    calls: Mutex<BTreeMap<&'static str, usize>>,
}

impl Counting {
    fn count(&self, method: &'static str) {
        *self.calls.lock().entry(method).or_default() += 1;
    }

    /// The calls counted since the last `take`.
    fn take(&self) -> BTreeMap<&'static str, usize> {
        std::mem::take(&mut *self.calls.lock())
    }
}

#[async_trait]
impl SearchStore for Counting {
    async fn open(&self) -> Result<(), hearth::search::SearchError> {
        self.count("open");
        self.inner.open().await
    }
    async fn upsert(&self, docs: Vec<StoredDoc>) -> Result<Vec<u32>, hearth::search::SearchError> {
        self.count("upsert");
        self.inner.upsert(docs).await
    }
    async fn put_vectors(&self, updates: Vec<VectorUpdate>) -> Result<Vec<bool>, hearth::search::SearchError> {
        self.count("put_vectors");
        self.inner.put_vectors(updates).await
    }
    async fn delete(&self, ids: &[String]) -> Result<Vec<String>, hearth::search::SearchError> {
        self.count("delete");
        self.inner.delete(ids).await
    }
    async fn delete_matching(&self, filter: &Filter) -> Result<Vec<String>, hearth::search::SearchError> {
        self.count("delete_matching");
        self.inner.delete_matching(filter).await
    }
    async fn keyword(&self, query: &str, scope: &Scope, k: usize) -> Result<Vec<ChunkHit>, hearth::search::SearchError> {
        self.count("keyword");
        self.inner.keyword(query, scope, k).await
    }
    async fn vector(&self, query: &[f32], scope: &Scope, k: usize) -> Result<Vec<ChunkHit>, hearth::search::SearchError> {
        self.count("vector");
        self.inner.vector(query, scope, k).await
    }
    async fn get(&self, ids: &[String], vectors: bool) -> Result<Vec<Option<StoredDoc>>, hearth::search::SearchError> {
        self.count("get");
        self.inner.get(ids, vectors).await
    }
    async fn missing_vectors(&self, model: &str, after: Option<&str>, limit: usize) -> Result<Vec<StoredDoc>, hearth::search::SearchError> {
        self.count("missing_vectors");
        self.inner.missing_vectors(model, after, limit).await
    }
    fn matching_ranges(&self, query: &str, text: &str) -> Vec<Range<usize>> {
        self.inner.matching_ranges(query, text)
    }
    fn status(&self) -> StoreStatus {
        self.inner.status()
    }
    async fn maintain(&self) {
        self.inner.maintain().await
    }
}

#[tokio::test]
async fn a_custom_store_plugs_in_and_is_called_once_per_query_or_batch() {
    let s = TestServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let redb = hearth::store::Store::open(dir.path()).unwrap();
    let counting =
        Arc::new(Counting { inner: EmbeddedStore::new(redb, dir.path().to_path_buf(), Default::default()), calls: Default::default() });
    let store: Arc<dyn SearchStore> = counting.clone();
    let search = SearchService::with_store(store, s.app.events.clone(), s.app.jobs.clone(), s.app.config.search.clone());
    let bg = hearth::runtime::Background::default();
    search.start(&bg);
    assert!(search.stats().await.semantic_ready, "the model loads for this service too");
    counting.take();

    let docs: Vec<Document> = (0..40)
        .map(|i| Document {
            id: format!("d{i}"),
            content: format!("Note {i}. The lighthouse keeper logs the weather every evening. Storms came on day {i}."),
            metadata: serde_json::json!({"even": i % 2 == 0}).as_object().unwrap().clone(),
        })
        .collect();
    assert_eq!(search.index_batch(docs, None).await.unwrap(), 40);
    assert_eq!(counting.take(), [("get", 1), ("upsert", 1)].into(), "one read (for stored vectors) and one write per batch");

    let q = |mode: &str| SearchRequest {
        query: "lighthouse storms".into(),
        mode: Some(mode.into()),
        filters: Some(serde_json::json!({"even": true})),
        highlight: Some(true),
        ..Default::default()
    };
    let r = search.search(&q("hybrid")).await.unwrap();
    assert_eq!(r.len(), 10);
    assert!(r.iter().all(|x| x.metadata["even"] == true && x.content.contains("<em>")), "filtered and highlighted: {r:?}");
    assert_eq!(counting.take(), [("get", 1), ("keyword", 1), ("vector", 1)].into(), "hybrid: one call per retriever, one read");
    search.search(&q("keyword")).await.unwrap();
    assert_eq!(counting.take(), [("get", 1), ("keyword", 1)].into(), "keyword: one retrieval, one read");
    let similar = search.similar("d3", 5).await.unwrap();
    assert!(similar.len() == 5 && similar.iter().all(|x| x.id != "d3"), "{similar:?}");
    assert_eq!(counting.take(), [("get", 2), ("vector", 1)].into(), "similar: the document, one retrieval, one read");
    search.delete("d0").await.unwrap();
    assert_eq!(counting.take(), [("delete", 1)].into());
    let removed = search.delete_matching(&Filter::parse(serde_json::json!({"even": false}).as_object().unwrap()).unwrap()).await.unwrap();
    assert_eq!(removed.len(), 20);
    assert_eq!(counting.take(), [("delete_matching", 1)].into());
    assert_eq!(search.stats().await.documents, 19);
    bg.shutdown.cancel();
}
