//! Unit tests of the job queue facade against a real store and a manual clock (what the
//! facade adds to the broker: validation, retention from config, cron, in-process
//! handlers, events), plus a state-machine property test against an in-memory model.
//! The broker's own rules (order, leases, ends, dependencies, storage, restarts) are
//! checked by the conformance suite (`conformance/`), run in `embedded/mod.rs`.

mod hardening;

use super::config::JobQueueConfig;
use super::*;
use crate::clock::{Clock, ManualClock};
use crate::progress::{ProgressTracker, config::ProgressConfig};
use chrono::{Duration, TimeZone, Utc};
use serde_json::json;

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
    q: JobQueue,
}

fn config() -> JobQueueConfig {
    let mut c = JobQueueConfig::default();
    c.workers.clear();
    c
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let clock = ManualClock::new(Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap());
        let q = build(&store, &clock, config());
        Fixture { _dir: dir, store, clock, q }
    }

    /// Drops the queue's memory and rebuilds it from the store, as a restart does.
    fn restart(&mut self) {
        self.q = build(&self.store, &self.clock, config());
    }

    async fn claim(&self, max: usize) -> Vec<Job> {
        self.q
            .claim(ClaimRequest {
                queues: vec!["default".into()],
                worker_id: "w".into(),
                names: None,
                max: Some(max),
                lease_seconds: Some(60),
                wait_ms: None,
            })
            .await
            .unwrap()
    }
}

fn build(store: &Store, clock: &ManualClock, cfg: JobQueueConfig) -> JobQueue {
    let clock: SharedClock = Arc::new(clock.clone());
    let events = EventBus::default();
    let progress = ProgressTracker::new(store.clone(), events.clone(), clock.clone(), ProgressConfig::default());
    JobQueue::new(store.clone(), events, clock, progress, cfg)
}

fn req(priority: u8) -> EnqueueRequest {
    EnqueueRequest {
        priority: Some(priority),
        backoff: Some(Backoff { kind: BackoffKind::Fixed, base_ms: 0, max_ms: 0, jitter: false }),
        ..EnqueueRequest::new("t", json!({"p": priority}))
    }
}

#[tokio::test]
async fn validation_names_the_field_and_a_single_enqueue_drops_the_index() {
    let f = Fixture::new();
    let err = f.q.enqueue(EnqueueRequest { depends_on: vec!["missing".into()], ..req(5) }).await.unwrap_err();
    assert!(matches!(err, JobError::Invalid { ref field, .. } if field == "depends_on[0]"), "{err:?}");
    let err = f.q.enqueue_batch(vec![req(5), EnqueueRequest { depends_on: vec!["missing".into()], ..req(5) }]).await.unwrap_err();
    assert!(matches!(err, JobError::Invalid { ref field, .. } if field == "[1].depends_on[0]"), "{err:?}");
    let err = f.q.enqueue_batch(vec![req(5), req(10)]).await.unwrap_err();
    assert!(matches!(err, JobError::Invalid { ref field, .. } if field == "[1].priority"), "{err:?}");
    assert!(f.q.list(ListQuery::default()).await.unwrap().jobs.is_empty(), "a refused batch writes nothing");
    let id = f.q.enqueue(req(5)).await.unwrap().job_id;
    f.claim(1).await;
    f.clock.advance(Duration::seconds(61));
    f.q.tick().await;
    assert_eq!(f.q.complete(&id, Some("w"), None).await.unwrap_err().to_string(), format!("job {id} is pending, not running"));
    assert!(f.q.queues().await.unwrap().iter().any(|q| q.name == "default" && q.counts["pending"] == 1));
}

#[tokio::test]
async fn a_cancel_before_the_run_registered_reaches_that_run_only() {
    let f = Fixture::new();
    let job = Job {
        worker_id: Some(broker::IN_PROCESS.into()),
        attempts: 1,
        started_at: Some(f.clock.now()),
        ..crate::jobs::conformance::job("early")
    };
    f.q.signal_run(&job);
    assert!(f.q.run_signal(&job).is_cancelled(), "the run takes the signal given before it registered");
    let next_run = Job { started_at: Some(f.clock.now() + Duration::seconds(5)), ..job.clone() };
    assert!(!f.q.run_signal(&next_run).is_cancelled(), "a signal for an earlier run does not reach a later one");
    f.q.signal_run(&Job { id: "gone".into(), ..job.clone() });
    f.q.drop_stale_signals(f.clock.now() + Duration::minutes(1));
    assert!(f.q.shared.runs.lock().get("gone").is_none(), "signals never taken are dropped");
    let external = Job { worker_id: Some("w".into()), id: "ext".into(), ..job };
    f.q.signal_run(&external);
    assert!(f.q.shared.runs.lock().get("ext").is_none(), "external runs have no in-process signal");
}

#[tokio::test]
async fn retention_deletes_old_final_jobs() {
    let f = Fixture::new();
    let id = f.q.enqueue(req(5)).await.unwrap().job_id;
    let keep = f.q.enqueue(req(5)).await.unwrap().job_id;
    f.claim(1).await;
    f.q.complete(&id, Some("w"), None).await.unwrap();
    f.clock.advance(Duration::hours(25));
    assert_eq!(f.q.apply_retention().await.unwrap(), 1);
    assert!(matches!(f.q.get_status(&id).await, Err(JobError::NotFound { .. })));
    assert_eq!(f.q.get_status(&keep).await.unwrap().status, JobStatus::Pending);
}

#[tokio::test]
async fn schedules_fire_once_per_slot_and_coalesce_missed_runs() {
    let mut f = Fixture::new();
    let s =
        f.q.put_schedule(ScheduleRequest {
            name: "nightly".into(),
            cron: "0 3 * * *".into(),
            timezone: Some("UTC".into()),
            job: schedule::ScheduleJob {
                name: "t".into(),
                payload: json!({}),
                queue: None,
                priority: None,
                max_attempts: None,
                timeout: None,
            },
        })
        .await
        .unwrap();
    assert_eq!(s.next_run, Some(Utc.with_ymd_and_hms(2026, 3, 2, 3, 0, 0).unwrap()));
    // Down for three days: one catch-up run, then the next slot after now.
    f.clock.advance(Duration::days(3));
    f.restart();
    f.q.tick().await;
    f.q.tick().await;
    let jobs = f.q.list(ListQuery::default()).await.unwrap().jobs;
    assert_eq!(jobs.len(), 1);
    assert_eq!(jobs[0].id, format!("schedule:nightly:{}", Utc.with_ymd_and_hms(2026, 3, 2, 3, 0, 0).unwrap().timestamp()));
    assert_eq!(f.q.schedule("nightly").await.unwrap().next_run, Some(Utc.with_ymd_and_hms(2026, 3, 5, 3, 0, 0).unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_process_handlers_run_complete_fail_and_time_out() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock: SharedClock = Arc::new(crate::clock::SystemClock);
    let events = EventBus::default();
    let progress = ProgressTracker::new(store.clone(), events.clone(), clock.clone(), ProgressConfig::default());
    let q = JobQueue::new(store, events.clone(), clock, progress.clone(), JobQueueConfig::default());
    q.handler("double", |ctx: JobContext, p: serde_json::Value| async move {
        assert_eq!(ctx.attempt(), 1);
        Ok(json!(p["n"].as_i64().unwrap_or(0) * 2))
    });
    q.handler("slow", |ctx: JobContext, _p| async move {
        ctx.cancelled().await;
        Err(JobFailure::retry("stopped"))
    });
    q.handler("hang", |_ctx: JobContext, _p| async move {
        std::future::pending::<()>().await;
        Ok(json!(null))
    });
    q.handler("reporting", |ctx: JobContext, _p| async move {
        ctx.progress(50.0, Some("upload")).await;
        ctx.heartbeat().await;
        Ok(json!("reported"))
    });
    let mut rx = events.subscribe();
    let bg = crate::runtime::Background::default();
    q.start(&bg);
    let a = q.enqueue(EnqueueRequest::new("double", json!({"n": 21}))).await.unwrap().job_id;
    let b = q.enqueue(EnqueueRequest::new("slow", json!({}))).await.unwrap().job_id;
    let c = q
        .enqueue(EnqueueRequest { timeout: Some(1), max_attempts: Some(1), ..EnqueueRequest::new("hang", json!({})) })
        .await
        .unwrap()
        .job_id;
    let wait_for = |id: String, status: JobStatus| {
        let q = q.clone();
        async move {
            for _ in 0..300 {
                let j = q.get_status(&id).await.unwrap();
                if j.status == status {
                    return j;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("job {id} never reached {status:?}");
        }
    };
    assert_eq!(wait_for(a.clone(), JobStatus::Completed).await.result, Some(json!(42)));
    wait_for(b.clone(), JobStatus::Running).await;
    q.cancel(&b).await.unwrap();
    wait_for(b, JobStatus::Cancelled).await;
    let j = wait_for(c, JobStatus::Dead).await;
    assert!(j.errors[0].error.contains("timed out"), "{:?}", j.errors);
    let r = q.enqueue(EnqueueRequest::new("reporting", json!({}))).await.unwrap().job_id;
    let j = wait_for(r.clone(), JobStatus::Completed).await;
    assert_eq!(j.progress_id.as_deref(), Some(r.as_str()));
    let p = progress.get(&r).await.unwrap();
    assert_eq!(p.status, crate::progress::ProgressStatus::Completed);
    let mut topics = Vec::new();
    while let Ok(Some(e)) = rx.try_recv() {
        if e.key == a {
            topics.push(e.topic.clone());
        }
    }
    assert_eq!(topics, vec!["job.enqueued", "job.started", "job.completed"]);
    bg.shutdown.cancel();
}

mod model;
mod poison;
mod sim;

mod property {
    //! The state-machine property test: random operation sequences against the model.
    use super::model::Model;
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Op {
        Enqueue(u8),
        Claim(usize),
        Complete(usize),
        Fail(usize, bool),
        Cancel(usize),
        Expire,
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            3 => (0u8..10).prop_map(Op::Enqueue),
            3 => (1usize..4).prop_map(Op::Claim),
            2 => any::<prop::sample::Index>().prop_map(|i| Op::Complete(i.index(64))),
            2 => (any::<prop::sample::Index>(), any::<bool>()).prop_map(|(i, r)| Op::Fail(i.index(64), r)),
            1 => any::<prop::sample::Index>().prop_map(|i| Op::Cancel(i.index(64))),
            1 => Just(Op::Expire),
            1 => Just(Op::Restart),
        ]
    }

    const MAX: u32 = 3;

    async fn run(ops: Vec<Op>) {
        let mut f = Fixture::new();
        let mut m = Model::new(MAX);
        let now_ms = |f: &Fixture| f.clock.now().timestamp_millis();
        for op in ops {
            match op {
                Op::Enqueue(p) => {
                    let r = EnqueueRequest { max_attempts: Some(MAX), ..req(p) };
                    let e = f.q.enqueue(r).await.unwrap();
                    m.enqueued(e.job_id, p, now_ms(&f), now_ms(&f));
                }
                Op::Claim(n) => {
                    let expect = m.claim(n, now_ms(&f));
                    let got: Vec<String> = f.claim(n).await.into_iter().map(|j| j.id).collect();
                    assert_eq!(got, expect, "claim order");
                }
                Op::Complete(_) | Op::Fail(..) | Op::Cancel(_) if m.jobs.is_empty() => {}
                Op::Complete(i) => {
                    let i = i % m.jobs.len();
                    let r = f.q.complete(&m.jobs[i].id, Some("w"), None).await;
                    m.end(i, None, now_ms(&f), &r, false);
                }
                Op::Fail(i, retry) => {
                    let i = i % m.jobs.len();
                    let r = f.q.fail(&m.jobs[i].id, Some("w"), "x", retry).await;
                    m.end(i, Some(retry), now_ms(&f), &r, false);
                }
                Op::Cancel(i) => {
                    let i = i % m.jobs.len();
                    let r = f.q.cancel(&m.jobs[i].id).await;
                    m.cancel(i, now_ms(&f), &r, false);
                }
                Op::Expire => {
                    f.clock.advance(Duration::seconds(61));
                    f.q.tick().await;
                    m.tick(now_ms(&f), false, &|_| None);
                }
                Op::Restart => {
                    f.restart();
                    m.restart(now_ms(&f));
                }
            }
            m.check(&f.q, "property test").await;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, max_shrink_iters: 200, ..ProptestConfig::default() })]
        #[test]
        fn the_queue_behaves_like_its_model(ops in prop::collection::vec(op(), 1..40)) {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(run(ops));
        }
    }
}
