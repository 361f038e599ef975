//! Hardening of the queue's insides (issue 19): stored records with values no API would
//! accept today cannot panic a background task, and long cascades run in the background.

use super::*;
use crate::jobs::broker::{JobBroker, NewJob};
use crate::jobs::lifecycle::{Outcome, next_state};

/// A record as an older hearth (or another broker) might have stored it: every time
/// value at its most hostile.
fn hostile(id: &str, now: chrono::DateTime<Utc>) -> Job {
    Job {
        name: "fails".into(),
        backoff: Backoff { kind: BackoffKind::Exponential, base_ms: u64::MAX, max_ms: u64::MAX, jitter: true },
        timeout: u64::MAX,
        unique_key: Some(format!("k-{id}")),
        unique_for: Some(u64::MAX),
        max_attempts: 1000,
        ..crate::jobs::conformance::job_at(id, now)
    }
}

#[test]
fn the_life_cycle_saturates_hostile_stored_values() {
    let now = Utc::now();
    let running = Job { status: JobStatus::Running, attempts: 1, ..hostile("h", now) };
    for _ in 0..100 {
        let next = next_state(&running, &Outcome::Fail { error: "no".into(), retry: true }, false, now);
        assert_eq!(next.status, JobStatus::Failed);
        assert!(next.run_at > now && next.run_at <= now + Duration::days(30), "the delay is capped at 30 days: {}", next.run_at);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stored_records_with_hostile_values_cannot_panic_the_workers_or_the_completer() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock: SharedClock = Arc::new(crate::clock::SystemClock);
    let events = EventBus::default();
    let progress = ProgressTracker::new(store.clone(), events.clone(), clock.clone(), ProgressConfig::default());
    let q = JobQueue::new(store, events, clock.clone(), progress, JobQueueConfig::default());
    q.handler("fails", |_ctx: JobContext, _p| async move { Err::<serde_json::Value, _>(JobFailure::retry("no")) });
    q.handler("ok", |_ctx: JobContext, p| async move { Ok(p) });
    // Written as stored, past the facade's validation.
    let jobs = (0..3).map(|i| NewJob { job: hostile(&format!("h{i}"), clock.now()), chosen_id: true }).collect();
    q.shared.broker.enqueue(jobs, clock.now(), &|_: &Job| {}).await.unwrap();
    let bg = crate::runtime::Background::default();
    q.start(&bg);
    let wait_for = |id: String, status: JobStatus| {
        let q = q.clone();
        async move {
            for _ in 0..1000 {
                let j = q.get_status(&id).await.unwrap();
                if j.status == status {
                    return j;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("job {id} never reached {status:?}");
        }
    };
    for i in 0..3 {
        let j = wait_for(format!("h{i}"), JobStatus::Failed).await;
        assert!(j.run_at <= clock.now() + Duration::days(30), "{}", j.run_at);
    }
    // Processing goes on.
    let ok = q.enqueue(EnqueueRequest::new("ok", json!({"n": 1}))).await.unwrap().job_id;
    assert_eq!(wait_for(ok, JobStatus::Completed).await.result, Some(json!({"n": 1})));
    assert!(bg.crash_loops().is_empty());
    bg.shutdown.cancel();
}

#[tokio::test]
async fn ending_the_head_of_a_long_chain_leaves_the_chain_to_the_background() {
    let f = Fixture::new();
    const N: usize = 10_000;
    let chain: Vec<EnqueueRequest> = (0..N)
        .map(|i| EnqueueRequest {
            id: Some(format!("c{i}")),
            depends_on: if i == 0 { Vec::new() } else { vec![format!("c{}", i - 1)] },
            ..req(5)
        })
        .collect();
    f.q.enqueue_batch(chain).await.unwrap();
    assert_eq!(f.q.cancel("c0").await.unwrap().status, JobStatus::Cancelled);
    // The request did one write: the dependants wait for the maintenance ticks (this
    // fixture has no loop running), and none of them is claimable meanwhile.
    assert_eq!(f.q.get_status("c1").await.unwrap().status, JobStatus::Pending);
    assert!(f.claim(10).await.is_empty());
    let mut ticks = 0;
    while f.q.get_status(&format!("c{}", N - 1)).await.unwrap().status != JobStatus::Cancelled {
        f.q.tick().await;
        ticks += 1;
        assert!(ticks <= N, "the cascade must progress");
    }
    assert!(ticks <= N.div_ceil(crate::jobs::embedded::CASCADE_STEP) + 1, "each tick cancels a bounded step: {ticks} ticks");
    for i in [1, 2, N / 2, N - 1] {
        let j = f.q.get_status(&format!("c{i}")).await.unwrap();
        assert_eq!((j.status, j.reason), (JobStatus::Cancelled, Some(format!("dependency c{} ended cancelled", i - 1))));
    }
}
