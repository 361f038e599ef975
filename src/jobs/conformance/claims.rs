//! Claims and leases: order, delays, filters, pause, expiry, heartbeats, holders.

use super::*;
use crate::jobs::broker::{Holder, Names};

/// Priority 9 first, then FIFO within a priority.
pub(super) async fn priority_then_fifo<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let jobs = vec![
        Job { priority: 5, ..job("a") },
        Job { priority: 9, ..job("b") },
        Job { priority: 5, ..job("c") },
        Job { priority: 0, ..job("d") },
        Job { priority: 9, ..job("e") },
    ];
    enqueue(&b, jobs, t0()).await;
    let first = claim(&b, "w", 2, t0()).await;
    assert_eq!(ids(&first), ["b", "e"], "the most urgent (priority 9) jobs are claimed first, in enqueue order");
    let rest = claim(&b, "w", 10, t0()).await;
    assert_eq!(ids(&rest), ["a", "c", "d"], "equal priorities are claimed first in, first out; priority 0 last");
    assert!(rest.iter().chain(&first).all(|j| j.attempts == 1), "a claim counts the attempt");
    assert!(claim(&b, "w", 10, t0()).await.is_empty(), "a claimed job is not claimed again while its lease holds");
}

/// A delayed job is never claimed before its run_at, and is claimed from then on.
pub(super) async fn delayed_jobs_wait_for_run_at<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let later = Job { status: JobStatus::Scheduled, run_at: at(10), priority: 9, ..job("later") };
    let a = enqueue(&b, vec![later, job("now")], t0()).await;
    assert_eq!(a.answers[0].status, JobStatus::Scheduled, "a job whose run_at is ahead is scheduled");
    assert_eq!(get(&b, "later").await.status, JobStatus::Scheduled);
    assert_eq!(ids(&claim(&b, "w", 10, t0()).await), ["now"], "a delayed job is never claimed before its run_at");
    assert!(claim(&b, "w", 10, at(9)).await.is_empty(), "a delayed job is never claimed before its run_at (1 s before)");
    let got = claim(&b, "w", 10, at(10)).await;
    assert_eq!(ids(&got), ["later"], "a delayed job is claimed once its run_at has come, without a tick");
    assert_eq!((got[0].attempts, got[0].started_at), (1, Some(at(10))), "the claim records the attempt and its start");
    let t = b.tick(at(10)).await.expect("tick");
    assert!(t.ended.is_empty(), "a tick before any lease end ends nothing");
}

/// Claims take only the listed queues and the names the filter allows; in-process claims
/// hold the job under the job's timeout.
pub(super) async fn names_and_queues_filter_claims<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let jobs = vec![
        Job { name: "mail".into(), ..job("m") },
        Job { name: "pdf".into(), ..job("p") },
        Job { queue: "other".into(), ..job("o") },
        Job { name: "hearth.internal".into(), priority: 9, ..job("h") },
    ];
    enqueue(&b, jobs, t0()).await;
    let q = vec!["default".to_string()];
    let handled = vec!["mail".to_string()];
    let c = b.claim(&q, Names::Except(&handled), Holder::Worker { id: "w", lease_ms: 1000 }, 10, t0()).await.expect("claim");
    assert_eq!(ids(&c.jobs), ["p"], "Names::Except skips the listed names, hearth's reserved names (and other queues)");
    let c = b.claim(&q, Names::Only(&handled), Holder::InProcess, 10, t0()).await.expect("claim");
    assert_eq!(ids(&c.jobs), ["m"], "Names::Only takes only the listed names");
    let m = &c.jobs[0];
    assert_eq!(m.worker_id.as_deref(), Some(crate::jobs::broker::IN_PROCESS), "an in-process run is held by `in-process`");
    assert_eq!(m.lease_until, Some(t0() + Duration::seconds(m.timeout as i64)), "an in-process run's lease is its timeout");
    let other = claim_from(&b, &["other", "default"], "w", 10, t0()).await;
    assert_eq!(ids(&other), ["o"], "a claim takes from every listed queue");
    let own = vec!["hearth.internal".to_string()];
    let c = b.claim(&q, Names::Only(&own), Holder::InProcess, 10, t0()).await.expect("claim");
    assert_eq!(ids(&c.jobs), ["h"], "a reserved name is claimed by its in-process handler");
}

/// Claims skip a paused queue until it is resumed.
pub(super) async fn pause_skips_a_queue<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("a"), Job { queue: "q2".into(), ..job("b") }], t0()).await;
    b.set_paused("default", true).await.expect("pause");
    assert_eq!(ids(&claim_from(&b, &["default", "q2"], "w", 10, t0()).await), ["b"], "claims skip a paused queue");
    let stats = b.queue_stats(t0()).await.expect("stats");
    let d = stats.iter().find(|s| s.name == "default").expect("the paused queue is listed");
    assert!(d.paused, "queue stats say the queue is paused");
    b.set_paused("default", false).await.expect("resume");
    assert_eq!(ids(&claim(&b, "w", 10, t0()).await), ["a"], "a resumed queue is claimed from again");
}

/// An expired lease returns the job with its attempt counted; at max_attempts it is dead.
pub(super) async fn an_expired_lease_counts_the_attempt_then_dead<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![Job { max_attempts: 2, ..job("a") }], t0()).await;
    claim(&b, "w", 1, t0()).await;
    let t = b.tick(at(59)).await.expect("tick");
    assert!(t.ended.is_empty(), "a lease is not expired before its end");
    assert!(t.next_due.is_none_or(|d| d <= at(60)), "the next due time, when known, is not after the lease end");
    let t = b.tick(at(61)).await.expect("tick");
    assert_eq!(t.ended.len(), 1, "an ended lease is expired by the tick");
    let e = &t.ended[0];
    assert!(e.was_running && e.failed_run, "an expired lease is a failed run");
    assert_eq!((e.job.status, e.job.attempts), (JobStatus::Pending, 1), "an expired lease returns the job, attempt counted");
    assert_eq!(e.job.errors.last().map(|a| a.error.as_str()), Some("lease expired"), "the expiry is recorded as the attempt's error");
    let j = get(&b, "a").await;
    assert_eq!((j.status, j.attempts), (JobStatus::Pending, 1), "the expired job is pending again");
    assert!(is_conflict(&complete(&b, "a", "w", at(61)).await), "the old holder cannot complete a job whose lease expired");
    assert_eq!(claim(&b, "w2", 1, at(61)).await.len(), 1, "the expired job can be claimed again");
    let t = b.tick(at(122)).await.expect("tick");
    assert_eq!(t.ended.first().map(|e| e.job.status), Some(JobStatus::Dead), "a lease expiry at max_attempts makes the job dead");
    assert_eq!(get(&b, "a").await.status, JobStatus::Dead);
}

/// A heartbeat extends the lease by its length (or by the length given).
pub(super) async fn a_heartbeat_extends_the_lease<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("a")], t0()).await;
    claim(&b, "w", 1, t0()).await;
    let ack = b.heartbeat("a", Some("w"), None, at(50)).await.expect("heartbeat");
    assert_eq!(ack.lease_until, Some(at(110)), "a heartbeat without a length extends by the lease's length");
    assert!(!ack.cancel_requested);
    assert!(b.tick(at(100)).await.expect("tick").ended.is_empty(), "a heartbeat extended the lease");
    assert_eq!(get(&b, "a").await.status, JobStatus::Running);
    let ack = b.heartbeat("a", None, Some(300_000), at(100)).await.expect("heartbeat");
    assert_eq!(ack.lease_until, Some(at(400)), "a heartbeat with a length extends to now + length");
    assert!(b.tick(at(399)).await.expect("tick").ended.is_empty());
    assert_eq!(b.tick(at(401)).await.expect("tick").ended.len(), 1, "the extended lease still ends");
    assert!(is_conflict(&b.heartbeat("a", Some("w"), None, at(402)).await), "a job that is not running cannot heartbeat");
    assert!(matches!(b.heartbeat("nope", None, None, at(402)).await, Err(JobError::NotFound { .. })), "an unknown job is not found");
}

/// Only the holder may heartbeat, complete or fail a run; others change nothing.
pub(super) async fn only_the_holder_may_heartbeat_or_end<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("a")], t0()).await;
    claim(&b, "w", 1, t0()).await;
    assert!(is_conflict(&b.heartbeat("a", Some("other"), None, at(1)).await), "another worker cannot heartbeat a leased job");
    assert!(is_conflict(&complete(&b, "a", "other", at(1)).await), "another worker cannot complete a leased job");
    assert!(is_conflict(&fail(&b, "a", "other", true, at(1)).await), "another worker cannot fail a leased job");
    let j = get(&b, "a").await;
    assert_eq!(
        (j.status, j.worker_id.as_deref(), j.lease_until),
        (JobStatus::Running, Some("w"), Some(at(60))),
        "refused ends change nothing"
    );
    let done = end(&b, "a", None, RunOutcome::Complete(None), at(2)).await.expect("an end without a worker id is accepted");
    assert_eq!(done.job.status, JobStatus::Completed);
}
