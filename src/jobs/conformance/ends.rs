//! Ends of runs and jobs: idempotent finish, retries, batches, dependencies and their
//! cascade, cancel and retry.

use super::*;
use crate::jobs::broker::{Cancelled, Finished};

/// Finishing twice is a conflict that changes nothing.
pub(super) async fn finishing_twice_is_a_conflict<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("a")], t0()).await;
    claim(&b, "w", 1, t0()).await;
    let done = complete(&b, "a", "w", at(1)).await.expect("complete");
    assert!(done.was_running && !done.failed_run);
    assert_eq!(done.job.status, JobStatus::Completed);
    assert_eq!(done.job.finished_at, Some(at(1)), "a final job records when it finished");
    assert_eq!(done.job.result, Some(serde_json::json!({ "done": "a" })), "the result is kept");
    let again = end(&b, "a", Some("w"), RunOutcome::Complete(Some(serde_json::json!("other"))), at(2)).await;
    assert!(is_conflict(&again), "complete after complete is a conflict, got {again:?}");
    assert!(is_conflict(&fail(&b, "a", "w", true, at(2)).await), "fail after complete is a conflict");
    let j = get(&b, "a").await;
    assert_eq!(
        (j.status, j.result, j.finished_at, j.errors.len()),
        (JobStatus::Completed, Some(serde_json::json!({ "done": "a" })), Some(at(1)), 0),
        "a refused second end changes nothing"
    );
    assert!(matches!(complete(&b, "nope", "w", at(2)).await, Err(JobError::NotFound { .. })), "ending an unknown job: not found");
    enqueue(&b, vec![job("waiting")], at(2)).await;
    assert!(is_conflict(&complete(&b, "waiting", "w", at(2)).await), "a job that is not running cannot be completed");
    assert_eq!(get(&b, "waiting").await.status, JobStatus::Pending);
}

/// A failed run retries after its backoff while attempts remain, then the job is dead;
/// a failure without retry is dead at once.
pub(super) async fn failures_retry_after_backoff_then_die<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let backoff = Backoff { kind: BackoffKind::Fixed, base_ms: 5000, max_ms: 5000, jitter: false };
    enqueue(&b, vec![Job { max_attempts: 2, backoff, ..job("a") }, job("fatal")], t0()).await;
    claim(&b, "w", 2, t0()).await;
    let e = fail(&b, "a", "w", true, t0()).await.expect("fail");
    assert!(e.failed_run);
    assert_eq!((e.job.status, e.job.run_at), (JobStatus::Failed, at(5)), "a failed run with attempts left retries after its backoff");
    assert_eq!(e.job.errors.len(), 1, "each failed attempt is recorded");
    assert!(claim(&b, "w", 1, at(4)).await.is_empty(), "a failed job is not claimed before its backoff ends");
    assert_eq!(ids(&claim(&b, "w", 1, at(5)).await), ["a"], "a failed job is claimed again after its backoff");
    let e = fail(&b, "a", "w", true, at(6)).await.expect("fail");
    assert_eq!(e.job.status, JobStatus::Dead, "the last attempt failing makes the job dead");
    assert_eq!((e.job.errors.len(), e.job.errors[1].attempt), (2, 2), "errors are numbered by attempt");
    assert_eq!(e.job.reason.as_deref(), Some("a failed"), "a dead job says why");
    let e = fail(&b, "fatal", "w", false, at(6)).await.expect("fail");
    assert_eq!((e.job.status, e.job.attempts), (JobStatus::Dead, 1), "a failure without retry is dead at once");
}

/// In a batch of ends, a bad entry does not affect the others.
pub(super) async fn a_batch_finish_isolates_a_bad_entry<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("a"), job("b"), job("c")], t0()).await;
    claim(&b, "w", 2, t0()).await;
    claim(&b, "v", 1, t0()).await;
    let run = |id: &str, w: &str, outcome| RunEnd { id: id.into(), worker_id: Some(w.into()), outcome };
    let ends = vec![
        run("a", "w", RunOutcome::Complete(None)),
        run("missing", "w", RunOutcome::Complete(None)),
        run("b", "w", RunOutcome::Fail { error: "x".into(), retry: true }),
        run("c", "w", RunOutcome::Complete(None)),
    ];
    let f = b.finish(ends, at(1)).await;
    assert_eq!(f.results.len(), 4, "one result per end, in order");
    assert_eq!(f.results[0].as_ref().map(|e| e.job.status).ok(), Some(JobStatus::Completed), "the good entries of a batch end");
    assert!(matches!(f.results[1], Err(JobError::NotFound { .. })), "an unknown job in a batch is not found");
    assert_eq!(f.results[2].as_ref().map(|e| e.job.status).ok(), Some(JobStatus::Failed), "the good entries of a batch end");
    assert!(is_conflict(&f.results[3]), "a job held by another worker is refused within a batch");
    assert_eq!(get(&b, "c").await.status, JobStatus::Running, "the refused entry is left as it was");
    assert_eq!(get(&b, "a").await.status, JobStatus::Completed, "the accepted entries are durable");
}

/// A job waits until its dependencies completed, then runs.
pub(super) async fn dependencies_wait_then_run<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let deps = |d: &[&str]| d.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    enqueue(&b, vec![job("a"), Job { priority: 9, depends_on: deps(&["a"]), ..job("b") }], t0()).await;
    // Within one batch a job may depend on a later one.
    enqueue(&b, vec![Job { priority: 9, depends_on: deps(&["c"]), ..job("d") }, Job { priority: 1, ..job("c") }], t0()).await;
    assert_eq!(get(&b, "b").await.status, JobStatus::Pending, "a waiting job is pending");
    assert_eq!(ids(&claim(&b, "w", 10, t0()).await), ["a", "c"], "a job whose dependencies are unfinished is not claimable");
    let f = b.finish(vec![RunEnd { id: "a".into(), worker_id: None, outcome: RunOutcome::Complete(None) }], at(1)).await;
    assert!(f.results[0].is_ok());
    assert!(f.ready.iter().any(|(q, n)| q == "default" && n == "t"), "a released dependant is reported ready");
    assert_eq!(ids(&claim(&b, "w", 10, at(1)).await), ["b"], "a job runs once its dependency completed");
    complete(&b, "c", "w", at(2)).await.expect("complete");
    assert_eq!(ids(&claim(&b, "w", 10, at(2)).await), ["d"], "a dependency later in the same batch is waited for");
}

/// A dead or cancelled dependency cancels its dependants, over several levels.
pub(super) async fn dead_or_cancelled_dependencies_cascade<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let on = |d: &str| vec![d.to_string()];
    let chain = vec![
        job("a"),
        Job { depends_on: on("a"), ..job("b") },
        Job { depends_on: on("b"), ..job("c") },
        Job { depends_on: on("c"), ..job("d") },
    ];
    enqueue(&b, chain, t0()).await;
    claim(&b, "w", 10, t0()).await;
    let f = b
        .finish(
            vec![RunEnd { id: "a".into(), worker_id: Some("w".into()), outcome: RunOutcome::Fail { error: "no".into(), retry: false } }],
            at(1),
        )
        .await;
    assert_eq!(f.results[0].as_ref().map(|e| e.job.status).ok(), Some(JobStatus::Dead));
    assert!(claim(&b, "w", 10, at(1)).await.is_empty(), "a dependant left for the cascade is never claimable");
    let all = cascaded(&b, &f, at(1)).await;
    let mut ids: Vec<String> = all.iter().map(|e| e.job.id.clone()).collect();
    ids.sort();
    assert_eq!(ids, ["b", "c", "d"], "every level of dependants of a dead job is cancelled (by the call or the ticks), and reported");
    assert!(all.iter().all(|e| e.job.status == JobStatus::Cancelled && !e.was_running));
    let b_job = get(&b, "b").await;
    assert_eq!(
        (b_job.status, b_job.reason.as_deref()),
        (JobStatus::Cancelled, Some("dependency a ended dead")),
        "the reason names the dependency"
    );
    assert_eq!(get(&b, "d").await.reason.as_deref(), Some("dependency c ended cancelled"));
    // Cancelling a waiting dependency cascades too.
    enqueue(&b, vec![Job { status: JobStatus::Scheduled, run_at: at(100), ..job("x") }, Job { depends_on: on("x"), ..job("y") }], at(1))
        .await;
    let Cancelled::Ended(f) = b.cancel("x", "stop", at(2)).await.expect("cancel") else { panic!("a waiting job's cancel ends it") };
    let all = cascaded(&b, &f, at(2)).await;
    assert_eq!(all.iter().map(|e| e.job.id.as_str()).collect::<Vec<_>>(), ["y"], "a cancelled dependency cancels its dependants");
    // A job enqueued on a dependency that already ended badly is cancelled at once.
    let late = enqueue(&b, vec![Job { depends_on: on("a"), ..job("late") }], at(3)).await;
    let late_cancelled =
        late.cancelled.iter().any(|e| e.job.id == "late") || b.tick(at(3)).await.expect("tick").ended.iter().any(|e| e.job.id == "late");
    assert!(late_cancelled, "a job whose dependency already ended dead is cancelled (by the enqueue or the next tick), and reported");
    assert_eq!(get(&b, "late").await.status, JobStatus::Cancelled);
    assert!(claim(&b, "w", 10, at(3)).await.is_empty(), "cancelled jobs are never claimed");
}

/// The dependants a finish (or cancel) cancelled: in the call, or by the ticks after it
/// (a broker may leave them to background work; it then ticks again at once).
async fn cascaded<B: JobBroker>(b: &B, f: &Finished, now: DateTime<Utc>) -> Vec<Ended> {
    let mut out = f.cascaded.clone();
    for _ in 0..1000 {
        let t = b.tick(now).await.expect("tick");
        let again = t.next_due == Some(now);
        out.extend(t.ended.into_iter().filter(|e| e.job.status == JobStatus::Cancelled));
        if !again {
            return out;
        }
    }
    panic!("a cascade must end");
}

/// Cancel of a waiting job ends it; of a running job it is requested, reported by
/// heartbeats, and the run's end makes the job cancelled. A final job is a conflict.
pub(super) async fn cancel_waiting_and_running_jobs<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("run"), job("wait")], t0()).await;
    claim(&b, "w", 1, t0()).await;
    let Cancelled::Ended(f) = b.cancel("wait", "by request", at(1)).await.expect("cancel") else {
        panic!("a waiting job's cancel ends it")
    };
    let e = f.results.into_iter().next().expect("one result").expect("cancelled");
    assert_eq!(
        (e.job.status, e.job.reason.as_deref()),
        (JobStatus::Cancelled, Some("by request")),
        "a waiting job is cancelled with the reason"
    );
    assert!(claim(&b, "w", 10, at(1)).await.is_empty(), "a cancelled job is never claimed");
    match b.cancel("run", "by request", at(2)).await.expect("cancel") {
        Cancelled::Requested(j) => assert_eq!(j.status, JobStatus::Running, "a running job stays running until its run ends"),
        Cancelled::Ended(_) => panic!("a running job's cancel is a request"),
    }
    assert!(
        b.heartbeat("run", Some("w"), None, at(3)).await.expect("heartbeat").cancel_requested,
        "a heartbeat reports the cancel request"
    );
    let e = complete(&b, "run", "w", at(4)).await.expect("the run still ends");
    assert_eq!(e.job.status, JobStatus::Cancelled, "a run that ends after a cancel request makes the job cancelled");
    assert!(is_conflict(&b.cancel("run", "again", at(5)).await.map(|_| ())), "a final job cannot be cancelled");
}

/// Retry makes a failed job ready now and revives a dead or cancelled one.
pub(super) async fn retry_revives_dead_and_cancelled_jobs<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let slow = Backoff { kind: BackoffKind::Fixed, base_ms: 600_000, max_ms: 600_000, jitter: false };
    enqueue(&b, vec![Job { max_attempts: 1, ..job("dead") }, Job { backoff: slow, ..job("failed") }, job("done")], t0()).await;
    claim(&b, "w", 3, t0()).await;
    fail(&b, "dead", "w", true, at(1)).await.expect("fail");
    fail(&b, "failed", "w", true, at(1)).await.expect("fail");
    complete(&b, "done", "w", at(1)).await.expect("complete");
    let (j, ready) = b.retry("dead", at(2)).await.expect("retry of a dead job");
    assert_eq!(
        (j.status, j.attempts, j.finished_at),
        (JobStatus::Pending, 0, None),
        "a revived dead job is pending with its attempts reset"
    );
    assert!(ready.is_some(), "a revived job is ready");
    let (j, _) = b.retry("failed", at(2)).await.expect("retry of a failed job");
    assert_eq!(j.run_at, at(2), "a retried failed job runs now");
    let mut got = ids(&claim(&b, "w", 10, at(2)).await);
    got.sort();
    assert_eq!(got, ["dead", "failed"], "retried jobs are claimable at once");
    assert!(is_conflict(&b.retry("done", at(3)).await), "a completed job cannot be retried");
    assert!(matches!(b.retry("nope", at(3)).await, Err(JobError::NotFound { .. })), "retry of an unknown job: not found");
    enqueue(&b, vec![job("c")], at(3)).await;
    assert!(matches!(b.cancel("c", "x", at(3)).await, Ok(Cancelled::Ended(_))));
    assert_eq!(b.retry("c", at(4)).await.expect("retry of a cancelled job").0.status, JobStatus::Pending, "a cancelled job can be revived");
}
