//! Unit tests of the tracker, its background upkeep and live feeds, on a real redb store
//! in a temp dir and a manual clock.

use super::*;
use crate::clock::ManualClock;
use crate::events::EventBus;
use crate::store::Store;
use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;
use std::sync::Arc;

struct Env {
    tracker: ProgressTracker,
    storage: RedbProgressStorage,
    clock: ManualClock,
    bus: EventBus,
    _dir: tempfile::TempDir,
}

fn t0() -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000, 0).unwrap()
}

fn env_with(bus_capacity: usize) -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock = ManualClock::new(t0());
    let bus = EventBus::new(bus_capacity);
    let tracker = ProgressTracker::new(store.clone(), bus.clone(), Arc::new(clock.clone()), Default::default());
    Env { tracker, storage: RedbProgressStorage::new(store), clock, bus, _dir: dir }
}

fn env() -> Env {
    env_with(1024)
}

impl Env {
    async fn stored(&self, id: &str) -> ProgressRecord {
        self.storage.load(id).await.unwrap().expect("stored")
    }
}

#[tokio::test]
async fn lifecycle_through_the_rust_api() {
    let e = env();
    let p = e.tracker.create(NewProgress::with_stages(Some("f1".into()), &["upload", "transcribe", "process"])).await.unwrap();
    assert_eq!((p.status, p.stage.as_deref(), p.overall), (ProgressStatus::Pending, Some("upload"), 0.0));
    assert!(matches!(e.tracker.create(NewProgress::with_stages(Some("f1".into()), &[])).await, Err(ProgressError::AlreadyExists(_))));

    e.clock.advance(Duration::seconds(1));
    let p = e.tracker.update("f1", 50.0, Some("upload")).await.unwrap();
    assert_eq!((p.status, p.overall, p.started_at), (ProgressStatus::Processing, 16.666667, Some(t0() + Duration::seconds(1))));
    let p = e.tracker.advance_stage("f1").await.unwrap();
    assert_eq!((p.stage.as_deref(), p.progress), (Some("transcribe"), 0.0));
    let p = e.tracker.update("f1", 30.0, None).await.unwrap();
    assert_eq!(p.stage.as_deref(), Some("transcribe"));
    let p = e.tracker.complete("f1", Some(serde_json::json!({"words": 3}))).await.unwrap();
    assert_eq!((p.status, p.overall, p.result), (ProgressStatus::Completed, 100.0, Some(serde_json::json!({"words": 3}))));
    assert!(matches!(e.tracker.update("f1", 1.0, None).await, Err(ProgressError::Conflict(_))));
    assert!(matches!(e.tracker.fail("f1", "late").await, Err(ProgressError::Conflict(_))));
    assert_eq!(e.tracker.get("f1").await.unwrap().status, ProgressStatus::Completed);
    assert_eq!(e.stored("f1").await.status, ProgressStatus::Completed);

    assert!(matches!(e.tracker.update("nope", 1.0, None).await, Err(ProgressError::NotFound(_))));
    assert!(matches!(e.tracker.get("nope").await, Err(ProgressError::NotFound(_))));
    e.tracker.delete("f1").await.unwrap();
    assert!(matches!(e.tracker.get("f1").await, Err(ProgressError::NotFound(_))));
    assert!(matches!(e.tracker.delete("f1").await, Err(ProgressError::NotFound(_))));
    // Placeholders of unknown ids do not linger.
    assert!(e.tracker.live_ids().is_empty());
}

#[tokio::test]
async fn transitions_are_stored_at_once_and_percents_coalesced() {
    let e = env();
    e.tracker.create(NewProgress::with_stages(Some("c".into()), &["a", "b"])).await.unwrap();
    assert_eq!(e.stored("c").await.status, ProgressStatus::Pending);
    e.tracker.update("c", 10.0, None).await.unwrap();
    // The first update (pending -> processing) is durable.
    let s = e.stored("c").await;
    assert_eq!((s.status, s.progress), (ProgressStatus::Processing, 10.0));
    for i in 11..=40 {
        e.tracker.update("c", i as f64, None).await.unwrap();
    }
    // Intermediate percents: broadcast state is newer than storage until a flush.
    assert_eq!(e.stored("c").await.progress, 10.0);
    assert_eq!(e.tracker.get("c").await.unwrap().progress, 40.0);
    assert_eq!(e.tracker.flush().await, 1, "thirty updates, one write");
    assert_eq!(e.stored("c").await.progress, 40.0);
    assert_eq!(e.tracker.flush().await, 0);
    // A stage change is durable immediately, with its percent.
    e.tracker.update("c", 5.0, Some("b")).await.unwrap();
    let s = e.stored("c").await;
    assert_eq!((s.stage_index, s.progress), (1, 5.0));
    e.tracker.update("c", 7.0, None).await.unwrap();
    e.tracker.fail("c", "disk full").await.unwrap();
    // The stale snapshot (7 %) must not overwrite the terminal state.
    e.tracker.flush().await;
    let s = e.stored("c").await;
    assert_eq!((s.status, s.error.as_deref(), s.progress), (ProgressStatus::Failed, Some("disk full"), 7.0));
}

#[tokio::test]
async fn a_flush_never_resurrects_a_deleted_progress() {
    let e = env();
    e.tracker.create(NewProgress::with_stages(Some("d".into()), &[])).await.unwrap();
    e.tracker.update("d", 1.0, None).await.unwrap();
    e.tracker.update("d", 2.0, None).await.unwrap();
    e.tracker.delete("d").await.unwrap();
    e.tracker.flush().await;
    assert!(e.storage.load("d").await.unwrap().is_none());
}

#[tokio::test]
async fn idle_slots_are_evicted_and_reloaded() {
    let e = env();
    e.tracker.create(NewProgress::with_stages(Some("i".into()), &[])).await.unwrap();
    e.tracker.update("i", 1.0, None).await.unwrap();
    e.tracker.update("i", 2.0, None).await.unwrap();
    // Dirty slots stay until flushed.
    assert_eq!(e.tracker.evict_idle(std::time::Duration::ZERO), 0);
    e.tracker.flush().await;
    assert_eq!(e.tracker.evict_idle(std::time::Duration::ZERO), 1);
    assert!(e.tracker.live_ids().is_empty());
    let p = e.tracker.update("i", 3.0, None).await.unwrap();
    assert_eq!((p.progress, p.version), (3.0, 4));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_on_one_id_are_serialised() {
    let e = env();
    e.tracker.create(NewProgress::with_stages(Some("x".into()), &["a", "b"])).await.unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let tr = e.tracker.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..200 {
                tr.update("x", ((t * 200 + i) % 100) as f64, None).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(e.tracker.get("x").await.unwrap().version, 1 + 8 * 200);
}

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<String>>,
}

#[async_trait::async_trait]
impl ProgressPlugin for Recorder {
    async fn on_update(&self, p: &Progress) {
        self.calls.lock().push(format!("update {}", p.progress));
    }
    async fn on_stage_change(&self, p: &Progress) {
        self.calls.lock().push(format!("stage {}", p.stage.as_deref().unwrap_or("-")));
    }
    async fn on_complete(&self, p: &Progress) {
        self.calls.lock().push(format!("complete {}", p.id));
    }
    async fn on_fail(&self, p: &Progress) {
        self.calls.lock().push(format!("fail {}", p.error.as_deref().unwrap_or("-")));
    }
    fn validate_stage_change(&self, _current: &Progress, to: &str) -> Result<(), String> {
        if to == "forbidden" { Err("not today".into()) } else { Ok(()) }
    }
}

#[tokio::test]
async fn plugins_see_every_kind_of_change_and_may_veto_stages() {
    let e = env();
    let rec = Arc::new(Recorder::default());
    e.tracker.register_plugin(rec.clone());
    e.tracker.create(NewProgress::with_stages(Some("p".into()), &["a", "b", "forbidden"])).await.unwrap();
    e.tracker.update("p", 20.0, None).await.unwrap();
    e.tracker.update("p", 10.0, Some("b")).await.unwrap();
    match e.tracker.advance_stage("p").await {
        Err(ProgressError::Conflict(m)) => assert_eq!(m, "not today"),
        other => panic!("expected a veto, got {other:?}"),
    }
    e.tracker.complete("p", None).await.unwrap();
    e.tracker.create(NewProgress::with_stages(Some("q".into()), &[])).await.unwrap();
    e.tracker.fail("q", "boom").await.unwrap();
    assert_eq!(*rec.calls.lock(), ["update 20", "stage b", "complete p", "fail boom"]);
}

#[tokio::test]
async fn events_are_emitted_with_the_progress_json() {
    let e = env();
    let mut rx = e.bus.subscribe();
    e.tracker.create(NewProgress::with_stages(Some("ev".into()), &["a", "b"])).await.unwrap();
    e.tracker.update("ev", 40.0, None).await.unwrap();
    e.tracker.advance_stage("ev").await.unwrap();
    e.tracker.cancel("ev").await.unwrap();
    let mut got = Vec::new();
    while let Ok(Some(ev)) = rx.try_recv() {
        assert_eq!(ev.key, "ev");
        got.push((ev.topic.clone(), ev.data["status"].as_str().unwrap().to_string(), ev.data["version"].as_u64().unwrap()));
    }
    let want = [("progress.update", "processing", 2), ("progress.stage", "processing", 3), ("progress.cancelled", "cancelled", 4)];
    assert_eq!(got, want.map(|(a, b, c)| (a.to_string(), b.to_string(), c)));
}

#[tokio::test]
async fn retention_removes_finished_records_by_age_and_status() {
    let e = env();
    for id in ["done", "failed", "cancelled", "running"] {
        e.tracker.create(NewProgress::with_stages(Some(id.into()), &[])).await.unwrap();
    }
    e.tracker.complete("done", None).await.unwrap();
    e.tracker.fail("failed", "x").await.unwrap();
    e.tracker.cancel("cancelled").await.unwrap();
    e.tracker.update("running", 5.0, None).await.unwrap();
    e.clock.advance(Duration::hours(23));
    assert_eq!(e.tracker.sweep_expired().await.unwrap(), 0);
    e.clock.advance(Duration::hours(2));
    assert_eq!(e.tracker.sweep_expired().await.unwrap(), 1);
    assert!(matches!(e.tracker.get("done").await, Err(ProgressError::NotFound(_))));
    e.clock.advance(Duration::hours(168));
    assert_eq!(e.tracker.sweep_expired().await.unwrap(), 2);
    assert_eq!(e.tracker.get("running").await.unwrap().status, ProgressStatus::Processing);
}

#[tokio::test]
async fn the_background_sweeper_runs_on_start_and_stops_on_shutdown() {
    let e = env();
    e.tracker.create(NewProgress::with_stages(Some("old".into()), &[])).await.unwrap();
    e.tracker.complete("old", None).await.unwrap();
    e.clock.advance(Duration::hours(25));
    let bg = crate::runtime::Background::default();
    e.tracker.start(&bg);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while e.storage.load("old").await.unwrap().is_some() {
        assert!(std::time::Instant::now() < deadline, "sweeper did not run");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // Shutdown flushes the latest percent and ends both loops.
    e.tracker.create(NewProgress::with_stages(Some("live".into()), &[])).await.unwrap();
    e.tracker.update("live", 1.0, None).await.unwrap();
    e.tracker.update("live", 2.0, None).await.unwrap();
    bg.shutdown.cancel();
    bg.tasks.close();
    tokio::time::timeout(std::time::Duration::from_secs(5), bg.tasks.wait()).await.expect("loops end");
    assert_eq!(e.stored("live").await.progress, 2.0);
}

mod feeds {
    use super::*;
    use crate::progress::live::Feed;

    async fn next(f: &mut Feed) -> (String, f64, String) {
        let m = tokio::time::timeout(std::time::Duration::from_secs(2), f.next()).await.expect("a message").expect("open");
        (m.topic.clone(), m.data()["progress"].as_f64().unwrap(), m.data()["status"].as_str().unwrap().to_string())
    }

    /// Every message until none arrives for 300 ms.
    async fn rest(f: &mut Feed) -> Vec<live::FeedMessage> {
        let mut out = Vec::new();
        while let Ok(Some(m)) = tokio::time::timeout(std::time::Duration::from_millis(300), f.next()).await {
            out.push(m);
        }
        out
    }

    fn summary(m: &live::FeedMessage) -> (String, f64, String) {
        (m.topic.clone(), m.data()["progress"].as_f64().unwrap(), m.data()["status"].as_str().unwrap().to_string())
    }

    #[tokio::test]
    async fn a_subscriber_gets_the_current_state_then_changes() {
        let e = env();
        e.tracker.create(NewProgress::with_stages(Some("s".into()), &["a", "b"])).await.unwrap();
        e.tracker.update("s", 30.0, None).await.unwrap();
        let mut f = Feed::new(e.tracker.clone(), 16);
        f.subscribe("s");
        assert_eq!(next(&mut f).await, ("progress.update".into(), 30.0, "processing".into()));
        e.tracker.update("other", 1.0, None).await.ok();
        e.tracker.advance_stage("s").await.unwrap();
        assert_eq!(next(&mut f).await, ("progress.stage".into(), 0.0, "processing".into()));
        f.unsubscribe("s");
        e.tracker.update("s", 10.0, None).await.unwrap();
        assert!(rest(&mut f).await.is_empty());
    }

    #[tokio::test]
    async fn a_slow_subscriber_skips_intermediate_percents_but_not_stages_or_the_end() {
        let e = env();
        e.tracker.create(NewProgress::with_stages(Some("s".into()), &["a", "b"])).await.unwrap();
        let mut f = Feed::new(e.tracker.clone(), 64);
        f.subscribe("s");
        assert_eq!(next(&mut f).await.2, "pending");
        for i in 1..=50 {
            e.tracker.update("s", i as f64, None).await.unwrap();
        }
        e.tracker.update("s", 5.0, Some("b")).await.unwrap();
        for i in 6..=60 {
            e.tracker.update("s", i as f64, None).await.unwrap();
        }
        e.tracker.complete("s", None).await.unwrap();
        // Let the hub route everything before the subscriber reads anything.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let got: Vec<_> = rest(&mut f).await.iter().map(summary).collect();
        let stage_event = ("progress.stage".to_string(), 5.0, "processing".to_string());
        let done = ("progress.completed".to_string(), 100.0, "completed".to_string());
        // The queued 50 % update was superseded by the stage event, the 60 % one by the end.
        assert_eq!(got, vec![stage_event, done]);
    }

    #[tokio::test]
    async fn overflowing_the_buffer_collapses_to_latest_states() {
        let e = env();
        let mut f = Feed::new(e.tracker.clone(), 4);
        f.subscribe_all();
        for i in 0..10 {
            let id = format!("id{i}");
            e.tracker.create(NewProgress::with_stages(Some(id.clone()), &["a", "b"])).await.unwrap();
            e.tracker.advance_stage(&id).await.unwrap();
            if i % 2 == 0 {
                e.tracker.complete(&id, None).await.unwrap();
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        // Bounded: one snapshot per id with undelivered changes (more ids than capacity here).
        assert!(f.queued() <= 10, "bounded: {}", f.queued());
        let mut got = std::collections::BTreeMap::new();
        for m in rest(&mut f).await {
            let stage = m.data()["stage"].as_str().unwrap().to_string();
            got.insert(m.id.clone(), (m.topic.clone(), stage));
        }
        assert_eq!(got.len(), 10, "every id's latest state arrives: {got:?}");
        for (id, (topic, stage)) in got {
            let n: usize = id[2..].parse().unwrap();
            // Collapsed stage events arrive as the latest state (`progress.update`, stage b);
            // terminal states always as their terminal event.
            if n % 2 == 0 {
                assert_eq!(topic, "progress.completed", "{id}");
            } else {
                assert!(topic == "progress.update" || topic == "progress.stage", "{id}: {topic}");
                assert_eq!(stage, "b", "{id}");
            }
        }
    }

    #[tokio::test]
    async fn a_lagging_subscriber_resyncs_from_the_tracker() {
        let e = env_with(16);
        e.tracker.create(NewProgress::with_stages(Some("l".into()), &[])).await.unwrap();
        let mut f = Feed::new(e.tracker.clone(), 8);
        f.subscribe("l");
        assert_eq!(next(&mut f).await.2, "pending");
        // Far more events than the bus keeps for this receiver.
        for i in 0..200 {
            e.tracker.update("noise", 1.0, None).await.ok();
            e.tracker.update("l", (i % 100) as f64, None).await.unwrap();
        }
        e.tracker.fail("l", "gone").await.unwrap();
        let got = rest(&mut f).await;
        assert_eq!(got.last().map(summary).unwrap().0, "progress.failed");
        assert!(got.len() < 50, "coalesced after the lag: {} messages", got.len());
    }
}
