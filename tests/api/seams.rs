//! Backends other than the configured ones plug into the served app through
//! `App::builder`: each wrapper below counts the calls that reach it, so the test proves
//! that HTTP requests go through the backend the builder was given, not a hard-wired one.

use crate::common::TestServer;
use async_trait::async_trait;
use hearth::cache::CacheError;
use hearth::cache::backend::{BackendEntry, CacheBackend, KeyFilter, KeyPage, Precondition, Usage, WriteOutcome};
use hearth::events::{Event, EventTransport, LocalTransport, Subscription};
use hearth::progress::{ListQuery, ProgressError, ProgressRecord, ProgressStatus, ProgressStorage, RedbProgressStorage};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Counts the calls of each wrapped backend.
#[derive(Default)]
struct Calls {
    progress: AtomicUsize,
    cache: AtomicUsize,
    events: AtomicUsize,
}

struct CountingProgress(Arc<dyn ProgressStorage>, Arc<Calls>);

#[async_trait]
impl ProgressStorage for CountingProgress {
    async fn insert(&self, rec: &ProgressRecord) -> Result<(), ProgressError> {
        self.1.progress.fetch_add(1, Ordering::SeqCst);
        self.0.insert(rec).await
    }
    async fn save(&self, rec: &ProgressRecord) -> Result<(), ProgressError> {
        self.1.progress.fetch_add(1, Ordering::SeqCst);
        self.0.save(rec).await
    }
    async fn save_coalesced(&self, recs: Vec<ProgressRecord>) -> Result<usize, ProgressError> {
        self.0.save_coalesced(recs).await
    }
    async fn load(&self, id: &str) -> Result<Option<ProgressRecord>, ProgressError> {
        self.0.load(id).await
    }
    async fn list(&self, query: ListQuery) -> Result<Vec<ProgressRecord>, ProgressError> {
        self.0.list(query).await
    }
    async fn delete(&self, id: &str) -> Result<bool, ProgressError> {
        self.0.delete(id).await
    }
    async fn remove_finished(
        &self,
        status: ProgressStatus,
        before: chrono::DateTime<chrono::Utc>,
        limit: usize,
    ) -> Result<Vec<String>, ProgressError> {
        self.0.remove_finished(status, before, limit).await
    }
}

struct CountingCache(Arc<dyn CacheBackend>, Arc<Calls>);

#[async_trait]
impl CacheBackend for CountingCache {
    async fn get(&self, key: &str, now_ms: i64) -> Result<Option<BackendEntry>, CacheError> {
        self.0.get(key, now_ms).await
    }
    async fn set(&self, key: &str, entry: BackendEntry, precondition: Precondition) -> Result<WriteOutcome, CacheError> {
        self.1.cache.fetch_add(1, Ordering::SeqCst);
        self.0.set(key, entry, precondition).await
    }
    async fn delete(&self, key: &str, precondition: Precondition) -> Result<WriteOutcome, CacheError> {
        self.0.delete(key, precondition).await
    }
    async fn delete_tagged(&self, tags: &[String]) -> Result<u64, CacheError> {
        self.0.delete_tagged(tags).await
    }
    async fn delete_matching(&self, scan_prefix: &str, filter: KeyFilter) -> Result<u64, CacheError> {
        self.0.delete_matching(scan_prefix, filter).await
    }
    async fn list_keys(
        &self,
        scan_prefix: &str,
        filter: KeyFilter,
        cursor: Option<&str>,
        count: usize,
        now_ms: i64,
    ) -> Result<KeyPage, CacheError> {
        self.0.list_keys(scan_prefix, filter, cursor, count, now_ms).await
    }
    async fn sweep(&self, now_ms: i64) -> Result<u64, CacheError> {
        self.0.sweep(now_ms).await
    }
    async fn usage(&self) -> Result<Usage, CacheError> {
        self.0.usage().await
    }
    fn capacity(&self) -> u64 {
        self.0.capacity()
    }
}

struct CountingEvents(LocalTransport, Arc<Calls>);

impl EventTransport for CountingEvents {
    fn publish(&self, event: Arc<Event>) {
        self.1.events.fetch_add(1, Ordering::SeqCst);
        self.0.publish(event)
    }
    fn subscribe(&self) -> Subscription {
        self.0.subscribe()
    }
    fn subscriber_count(&self) -> usize {
        self.0.subscriber_count()
    }
}

#[tokio::test]
async fn backends_given_to_the_builder_serve_the_http_api() {
    let dir = tempfile::tempdir().unwrap();
    // The wrapped progress storage and L2 keep their data in a store of their own, apart
    // from the app's database, so the data below can only have come through them.
    let side = tempfile::tempdir().unwrap();
    let side_store = hearth::store::Store::open(side.path()).unwrap();
    let calls = Arc::new(Calls::default());
    let progress: Arc<dyn ProgressStorage> =
        Arc::new(CountingProgress(Arc::new(RedbProgressStorage::new(side_store.clone())), calls.clone()));
    let l2: Arc<dyn CacheBackend> =
        Arc::new(CountingCache(Arc::new(hearth::cache::embedded::EmbeddedBackend::new(side_store.clone(), 1 << 20, None)), calls.clone()));
    let events: Arc<dyn EventTransport> = Arc::new(CountingEvents(LocalTransport::new(1024), calls.clone()));
    let s = TestServer::start_built(dir.path(), |_| {}, |b| b.progress_storage(progress).cache_backend(l2).event_transport(events)).await;

    // Publishers skip events nobody listens to: listen, through the app's bus.
    let mut sub = s.app.events.subscribe();
    let (st, body) = s.post("/api/progress", json!({"id": "plugged", "stages": ["a", "b"]})).await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = s.post("/api/progress/plugged/advance", json!({})).await;
    assert_eq!(st, 200, "{body}");
    assert!(calls.progress.load(Ordering::SeqCst) >= 2, "progress writes reach the given storage");
    let stored = RedbProgressStorage::new(side_store.clone()).load("plugged").await.unwrap().expect("the record is in the given storage");
    assert_eq!(stored.stage_index, 1);

    let r = s.client.put(s.url("/api/cache/k1")).body("v1").send().await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(calls.cache.load(Ordering::SeqCst), 1, "a cache set reaches the given L2");
    let published = calls.events.load(Ordering::SeqCst);
    assert!(published >= 1, "events are published through the given transport ({published})");
    let first = sub.recv().await.expect("the subscription of the given transport delivers");
    assert!(first.topic.starts_with("progress.") && first.key == "plugged", "{} {}", first.topic, first.key);
}

#[tokio::test]
async fn every_seam_of_the_builder_routes_to_the_backend_it_was_given() {
    use hearth::export::{EmbeddedExportStore, SourceKind, SourceStore};
    use hearth::notify::{EmbeddedNotificationStore, NotificationStore};
    // The embedded backends, but over a store and a directory of their own: whatever
    // lands there came through the builder's backends, not the app's own database.
    let dir = tempfile::tempdir().unwrap();
    let side = tempfile::tempdir().unwrap();
    let side_store = hearth::store::Store::open(side.path()).unwrap();
    let files = side.path().join("files");
    let (broker, loaded) = hearth::jobs::EmbeddedBroker::open(side_store.clone(), chrono::Utc::now());
    loaded.unwrap();
    let notify = Arc::new(EmbeddedNotificationStore::new(side_store.clone()));
    let export = Arc::new(EmbeddedExportStore::new(side_store.clone()));
    let (n, e, f) = (notify.clone(), export.clone(), files.clone());
    let s = TestServer::start_built(
        dir.path(),
        |_| {},
        move |b| {
            b.job_broker(hearth::jobs::Broker::custom(broker))
                .notification_store(n)
                .export_records(e.clone())
                .export_sources(e)
                .export_files(Arc::new(hearth::export::storage::LocalStorage::new(f)))
        },
    )
    .await;

    let (st, body) = s.post("/api/notifications", json!({"type": "info", "user_id": "u1", "title": "hello", "channels": ["in-app"]})).await;
    assert_eq!(st, 200, "{body}");
    let feed = notify.list("u1", &hearth::notify::ListQuery { unread_only: false, limit: 10, cursor: None }).await.unwrap();
    assert_eq!(feed.items.len(), 1, "the notification is in the given store");

    let (st, body) =
        s.post("/api/transcripts", json!({"id": "t1", "title": "T", "segments": [{"start": 0.0, "end": 1.0, "text": "hi"}]})).await;
    assert_eq!(st, 201, "{body}");
    assert!(export.get(SourceKind::Transcript, "t1").await.unwrap().is_some(), "the transcript is in the given source store");
    let (st, body) = s.post("/api/exports", json!({"source_type": "transcript", "source_id": "t1", "format": "srt"})).await;
    assert_eq!(st, 202, "{body}");
    let id = body["job_id"].as_str().expect("export id").to_string();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let (_, rec) = s.get(&format!("/api/exports/{id}")).await;
        if rec["status"] == "completed" {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "export did not complete: {rec}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(std::fs::read_dir(&files).unwrap().count() > 0, "the export file is in the given file storage");
    let (_, jobs) = s.get("/api/jobs?limit=10").await;
    assert!(!jobs["jobs"].as_array().unwrap().is_empty(), "the export ran as a job on the given broker");
    s.stop().await;
    // The app's own database never saw any of it.
    let own = hearth::store::Store::open(dir.path()).unwrap();
    assert!(EmbeddedNotificationStore::new(own.clone()).get(&feed.items[0].id).await.unwrap().is_none());
    assert!(EmbeddedExportStore::new(own.clone()).get(SourceKind::Transcript, "t1").await.unwrap().is_none());
    let (other, _) = hearth::jobs::EmbeddedBroker::open(own, chrono::Utc::now());
    use hearth::jobs::JobBroker;
    assert!(other.get(&id).await.unwrap().is_none(), "the job is not in the app's own database");
}
