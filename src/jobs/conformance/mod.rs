//! The conformance suite every [`JobBroker`] must pass (compiled for tests and with the
//! `conformance` feature, so backend crates and hearth's own adapters run the same checks).
//!
//! The suite uses only the trait, and builds [`Job`] records the way the facade does
//! ([`job`]). It drives time itself (every broker method takes `now`), so no clock is
//! involved. A [`Harness`] opens brokers on fresh storage and re-opens the same storage,
//! as a restart does. Each check panics with a message naming the rule that broke.
//!
//! Backend-specific freedom the suite allows (and says where): after a re-open a job that
//! was running is either ready again with the attempts of its last durable state (the
//! embedded broker: claims live in memory), or still running under its lease and ready
//! again once that lease ended, with the attempt counted (a shared broker).

mod claims;
mod ends;
mod storage;

use super::broker::{Admitted, Ended, Holder, JobBroker, Names, NewJob, RunEnd, RunOutcome};
use super::error::JobError;
use super::model::{Backoff, BackoffKind, Job, JobStatus};
use chrono::{DateTime, Duration, TimeZone, Utc};
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Opens brokers for the suite.
pub trait Harness<B: JobBroker> {
    /// A broker on new, empty storage, opened as of `now`.
    fn fresh(&mut self, now: DateTime<Utc>) -> impl Future<Output = B>;
    /// Closes `broker` and opens a new one on the same storage as of `now`, as a restart
    /// of the process does (for a shared broker: a new connection to the same data).
    fn reopen(&mut self, broker: B, now: DateTime<Utc>) -> impl Future<Output = B>;
}

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<B: JobBroker>(mut h: impl Harness<B>) {
    let h = &mut h;
    claims::priority_then_fifo(h).await;
    claims::delayed_jobs_wait_for_run_at(h).await;
    claims::names_and_queues_filter_claims(h).await;
    claims::pause_skips_a_queue(h).await;
    claims::an_expired_lease_counts_the_attempt_then_dead(h).await;
    claims::a_heartbeat_extends_the_lease(h).await;
    claims::only_the_holder_may_heartbeat_or_end(h).await;
    ends::finishing_twice_is_a_conflict(h).await;
    ends::failures_retry_after_backoff_then_die(h).await;
    ends::a_batch_finish_isolates_a_bad_entry(h).await;
    ends::dependencies_wait_then_run(h).await;
    ends::dead_or_cancelled_dependencies_cascade(h).await;
    ends::cancel_waiting_and_running_jobs(h).await;
    ends::retry_revives_dead_and_cancelled_jobs(h).await;
    storage::unique_keys_and_chosen_ids_answer_existing(h).await;
    storage::an_unknown_dependency_writes_nothing(h).await;
    storage::listing_pages_newest_first_with_filters(h).await;
    storage::counts_per_status(h).await;
    storage::retention_deletes_only_old_final_jobs(h).await;
    storage::purge_deletes_one_status_of_one_queue(h).await;
    storage::schedules_are_stored_and_fire_once_per_slot(h).await;
    storage::a_reopen_keeps_every_acknowledged_job(h).await;
}

/// The suite's starting time.
pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).single().expect("a valid time")
}

/// `t0 + seconds`.
pub fn at(seconds: i64) -> DateTime<Utc> {
    t0() + Duration::seconds(seconds)
}

/// A new job record as the facade builds it: queue `default`, name `t`, priority 5, ready
/// at `t0`, three attempts, no backoff delay, timeout 300 s.
pub fn job(id: &str) -> Job {
    Job {
        id: id.to_string(),
        name: "t".into(),
        queue: "default".into(),
        payload: serde_json::json!({ "id": id }),
        priority: 5,
        status: JobStatus::Pending,
        attempts: 0,
        max_attempts: 3,
        run_at: t0(),
        created_at: t0(),
        started_at: None,
        finished_at: None,
        result: None,
        errors: Vec::new(),
        progress_id: None,
        depends_on: Vec::new(),
        backoff: Backoff { kind: BackoffKind::Fixed, base_ms: 0, max_ms: 0, jitter: false },
        timeout: 300,
        unique_key: None,
        unique_for: None,
        reason: None,
        worker_id: None,
        lease_until: None,
        seq: 0,
    }
}

/// `job(id)` created at `now` (ready then, or `scheduled` when `run_at` is later).
pub fn job_at(id: &str, now: DateTime<Utc>) -> Job {
    Job { run_at: now, created_at: now, ..job(id) }
}

/// Enqueues `jobs` (generated ids unless `chosen`), checking that each new job was
/// announced once.
async fn enqueue_as<B: JobBroker>(b: &B, jobs: Vec<Job>, chosen: bool, now: DateTime<Utc>) -> Result<Admitted, JobError> {
    let announced = AtomicUsize::new(0);
    let announce = |_: &Job| {
        announced.fetch_add(1, Ordering::Relaxed);
    };
    let r = b.enqueue(jobs.into_iter().map(|job| NewJob { job, chosen_id: chosen }).collect(), now, &announce).await;
    let fresh = r.as_ref().map(|a| a.answers.iter().filter(|e| !e.existing).count()).unwrap_or(0);
    assert_eq!(announced.load(Ordering::Relaxed), fresh, "announce is called once per new job, and only when the enqueue succeeded");
    r
}

/// Enqueues jobs that must all be new.
async fn enqueue<B: JobBroker>(b: &B, jobs: Vec<Job>, now: DateTime<Utc>) -> Admitted {
    let n = jobs.len();
    let a = enqueue_as(b, jobs, false, now).await.unwrap_or_else(|e| panic!("enqueue of new jobs must succeed: {e}"));
    assert_eq!(a.answers.len(), n, "one answer per enqueued job");
    assert!(a.answers.iter().all(|e| !e.existing), "new ids create new jobs");
    a
}

/// Claims up to `max` jobs of `default` for `worker` with a 60 s lease.
async fn claim<B: JobBroker>(b: &B, worker: &str, max: usize, now: DateTime<Utc>) -> Vec<Job> {
    claim_from(b, &["default"], worker, max, now).await
}

async fn claim_from<B: JobBroker>(b: &B, queues: &[&str], worker: &str, max: usize, now: DateTime<Utc>) -> Vec<Job> {
    let queues: Vec<String> = queues.iter().map(|q| q.to_string()).collect();
    let holder = Holder::Worker { id: worker, lease_ms: 60_000 };
    let c = b.claim(&queues, Names::Except(&[]), holder, max, now).await.unwrap_or_else(|e| panic!("claim must succeed: {e}"));
    for j in &c.jobs {
        assert_eq!(j.status, JobStatus::Running, "a claimed job is running");
        assert_eq!(j.worker_id.as_deref(), Some(worker), "a claimed job names its holder");
        assert_eq!(j.lease_until, Some(now + Duration::seconds(60)), "a worker's lease ends at now + lease_ms");
    }
    c.jobs
}

fn ids(jobs: &[Job]) -> Vec<String> {
    jobs.iter().map(|j| j.id.clone()).collect()
}

/// Ends one run.
async fn end<B: JobBroker>(b: &B, id: &str, worker: Option<&str>, outcome: RunOutcome, now: DateTime<Utc>) -> Result<Ended, JobError> {
    let e = RunEnd { id: id.to_string(), worker_id: worker.map(str::to_string), outcome };
    let mut f = b.finish(vec![e], now).await;
    assert_eq!(f.results.len(), 1, "one result per end");
    f.results.pop().expect("one result")
}

async fn complete<B: JobBroker>(b: &B, id: &str, worker: &str, now: DateTime<Utc>) -> Result<Ended, JobError> {
    end(b, id, Some(worker), RunOutcome::Complete(Some(serde_json::json!({ "done": id }))), now).await
}

async fn fail<B: JobBroker>(b: &B, id: &str, worker: &str, retry: bool, now: DateTime<Utc>) -> Result<Ended, JobError> {
    end(b, id, Some(worker), RunOutcome::Fail { error: format!("{id} failed"), retry }, now).await
}

/// The job as the broker has it now (it must exist).
async fn get<B: JobBroker>(b: &B, id: &str) -> Job {
    b.get(id).await.unwrap_or_else(|e| panic!("get {id}: {e}")).unwrap_or_else(|| panic!("job {id} must exist"))
}

fn is_conflict<T: std::fmt::Debug>(r: &Result<T, JobError>) -> bool {
    matches!(r, Err(JobError::Conflict(_)))
}
