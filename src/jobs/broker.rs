//! The job-broker seam: the store that holds every job's state and makes it durable.
//!
//! [`super::JobQueue`] is the facade every caller uses; it validates requests, builds
//! [`Job`] records, runs in-process handlers, wakes workers and reports (events, hooks,
//! metrics, progress). Everything that holds job state lives behind [`JobBroker`]: the
//! embedded broker ([`super::EmbeddedBroker`], redb plus an in-memory ready
//! index) by default, or another one (e.g. Redis, shared by several hearth nodes) through
//! [`super::JobQueue::with_broker`].
//!
//! Invariants every implementation keeps (checked by the conformance suite,
//! `jobs/conformance/`):
//! - **Durable before acknowledged.** Every method that changes state returns only once
//!   the change is durable; an error means nothing of it was applied. An enqueue batch is
//!   all or nothing; in a finish batch each end succeeds or fails on its own.
//! - **A record in flight keeps its previous state.** While a write about a job is in
//!   flight the job is in no claimable set and other changes to it answer
//!   [`JobError::Conflict`] ("being updated"); if the write fails, the job is as it was.
//! - **Leases.** A claim gives the job to one holder until its lease ends: a worker's
//!   lease is `now + lease_ms` (extended by heartbeats); an in-process run's lease is its
//!   `timeout`. A lease that ends makes the job ready again with the attempt counted, or
//!   dead when no attempt is left ([`JobBroker::tick`]). Only the holder may heartbeat,
//!   complete or fail a run. At-least-once: a job may run twice, never zero times.
//! - **Order.** A claim takes the most urgent ready job first: priority 9 first, then the
//!   earliest `run_at`, then enqueue order (FIFO). A job is never claimed before its
//!   `run_at`, nor from a paused queue, nor while a dependency is unfinished.
//! - **Idempotent ends.** Ending a job that is not running (or already final) is a
//!   conflict that changes nothing.
//! - **Dependencies.** A job waits until every dependency completed. When a dependency
//!   ends dead or cancelled, its dependants are cancelled, transitively: in the same call
//!   or by the following [`JobBroker::tick`]s (background work, so that ending the head of
//!   a long chain answers at once; [`Finished::cascading`] says that some are left). A
//!   dependant left for later is never claimable meanwhile.
//! - **Identity.** A caller-chosen id that exists, or a held unique key, answers the
//!   existing job (`existing: true`) instead of creating one; this is how a cron slot
//!   (`schedule:<name>:<slot>`) fires once even when several nodes fire it.
//! - **Time** is the caller's: every method that depends on it takes `now`; a broker never
//!   reads a clock.
//! - **One life cycle.** What a job becomes when a run ends (retry with backoff, dead,
//!   cancelled after a request) is [`super::lifecycle::next_state`]; brokers apply it
//!   rather than re-deciding.
//!
//! Backend-specific (documented, not required): the embedded broker keeps claims in memory
//! and does not reap in-process runs (a crash loses them anyway; after a restart a job that
//! was running is ready again with the attempts of its last durable state). A shared broker
//! must reap in-process leases too, since the node running them may die.

use super::error::JobError;
use super::model::{Enqueued, HeartbeatAck, Job, JobList, JobStatus, Schedule};
use chrono::{DateTime, Utc};
use std::future::Future;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// A queue and a job name that just got a ready job (who can run it is woken).
pub type Ready = (String, String);

/// A job to enqueue, built and validated by the facade (its `seq` is assigned by the
/// broker).
#[derive(Debug, Clone)]
pub struct NewJob {
    /// The record to store (`status` is `pending` or `scheduled`).
    pub job: Job,
    /// The caller chose the id: an existing job with that id is answered instead.
    /// Generated ids (UUIDv7) are never checked.
    pub chosen_id: bool,
}

/// What an enqueue did.
#[derive(Debug, Default)]
pub struct Admitted {
    /// One answer per request, in order.
    pub answers: Vec<Enqueued>,
    /// Queues and names that got a ready job.
    pub ready: Vec<Ready>,
    /// New jobs cancelled at once because a dependency had already ended dead or cancelled.
    pub cancelled: Vec<Ended>,
}

/// Which job names a claim may take.
#[derive(Debug, Clone, Copy)]
pub enum Names<'a> {
    /// Only these names (an in-process pool passes the names it has handlers for; an
    /// external worker the names it lists).
    Only(&'a [String]),
    /// Any name but these and but the names hearth reserves for itself (an external
    /// worker that lists none: the names without an in-process handler; see
    /// [`super::reserved`]).
    Except(&'a [String]),
}

impl Names<'_> {
    /// True when a claim with this filter may take a job named `name`.
    pub fn allows(&self, name: &str) -> bool {
        match self {
            Names::Only(list) => list.iter().any(|n| n == name),
            Names::Except(list) => !list.iter().any(|n| n == name) && !super::reserved::is_reserved(name),
        }
    }
}

/// Who holds a claimed job.
#[derive(Debug, Clone, Copy)]
pub enum Holder<'a> {
    /// An in-process worker pool (`worker_id` `in-process`); the lease is the job's timeout.
    InProcess,
    /// An external worker, with a lease of `lease_ms` from `now`.
    Worker {
        /// The worker's id; later calls about the job must carry it.
        id: &'a str,
        /// Lease length in milliseconds.
        lease_ms: i64,
    },
}

/// The worker id recorded for in-process runs.
pub const IN_PROCESS: &str = "in-process";

/// The jobs a claim took.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The jobs, now `running` with `attempts + 1`, best first.
    pub jobs: Vec<Job>,
    /// Delayed jobs that became ready on the way (others may run them).
    pub ready: Vec<Ready>,
    /// More jobs that this claim could have taken are ready (claimed up to `max`). Brokers
    /// that cannot tell cheaply answer false. In-process pools use it to tell a stall from
    /// a long run ([`super::JobQueue::readiness`]).
    pub more: bool,
}

/// How a run ends, as its holder reports it.
#[derive(Debug, Clone)]
pub enum RunOutcome {
    /// The handler succeeded with this result.
    Complete(Option<serde_json::Value>),
    /// The attempt failed; with `retry` false the job is dead at once.
    Fail {
        /// What went wrong (recorded in the job's `errors`).
        error: String,
        /// Retry while attempts remain.
        retry: bool,
    },
}

/// The end of one run, reported by its holder.
#[derive(Debug, Clone)]
pub struct RunEnd {
    /// The job.
    pub id: String,
    /// The worker reporting (`None` for an in-process run or a caller that does not say);
    /// when given it must be the lease holder.
    pub worker_id: Option<String>,
    /// How the run ended.
    pub outcome: RunOutcome,
}

/// A job whose state a finish, a cancel or a tick changed, durably.
#[derive(Debug, Clone)]
pub struct Ended {
    /// The job after the change: `completed`, `failed` (retrying at its `run_at`),
    /// `pending` (an expired lease with attempts left), `dead` or `cancelled`.
    pub job: Box<Job>,
    /// The job was running (a run ended, rather than a waiting job being cancelled).
    pub was_running: bool,
    /// The run failed (an error or an expired lease; the last entry of `job.errors` says
    /// which), even if the job then ended cancelled because a cancel was requested.
    pub failed_run: bool,
}

/// What a finish batch did.
#[derive(Debug, Default)]
pub struct Finished {
    /// One result per end, in order. A failed end (not running, another holder, a store
    /// error) does not affect the others.
    pub results: Vec<Result<Ended, JobError>>,
    /// Dependants cancelled in this call because a job ended dead or cancelled.
    pub cascaded: Vec<Ended>,
    /// Queues and names that got a ready job (released dependants, retries due now).
    pub ready: Vec<Ready>,
    /// Dependants are left to cancel by the following ticks (call [`JobBroker::tick`]
    /// soon: the facade wakes its maintenance loop).
    pub cascading: bool,
}

/// What a cancel did.
#[derive(Debug)]
pub enum Cancelled {
    /// The job is running: `cancel_requested` is recorded (heartbeats report it) and the
    /// run's end will make the job `cancelled`. The job as it is now.
    Requested(Job),
    /// The waiting job ended cancelled (one `Ok` result, plus its cascade).
    Ended(Finished),
}

/// What a first progress report of a job needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum ProgressNote {
    /// The job had no progress record: it now has one under its own id (`progress_id`).
    First {
        /// The job's name.
        name: String,
        /// Its queue.
        queue: String,
    },
    /// The job already reported progress.
    Again,
    /// The job is not running or waiting (final or unknown): nothing to report.
    NotLive,
}

/// What a maintenance pass did.
#[derive(Debug, Default)]
pub struct Tick {
    /// Delayed jobs whose `run_at` came, and jobs made ready by the ends below.
    pub ready: Vec<Ready>,
    /// Expired leases (ready again or dead), and jobs cancelled because a dependency had
    /// ended badly (cascades left by earlier calls, in bounded steps).
    pub ended: Vec<Ended>,
    /// The earliest time something will be due (a delayed job, a lease end, or `now` when
    /// a cascade is still under way), if known.
    pub next_due: Option<DateTime<Utc>>,
}

/// The filters of a listing (validated by the facade).
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    /// Only jobs in this status.
    pub status: Option<JobStatus>,
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs with this name.
    pub name: Option<String>,
    /// Page size (1–1000).
    pub limit: usize,
    /// The `next_cursor` of the previous page, opaque to everyone but the broker.
    pub cursor: Option<String>,
}

/// One queue's state.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct QueueStats {
    /// Queue name.
    pub name: String,
    /// Claims skip it.
    pub paused: bool,
    /// Jobs per status, indexed like [`JobStatus::ALL`] (final statuses count retained jobs).
    pub counts: [u64; 7],
    /// Jobs completed in the 60 seconds up to `now`.
    pub completed_last_minute: u64,
    /// `run_at` of the oldest ready job, if any.
    pub oldest_ready_at: Option<DateTime<Utc>>,
}

impl QueueStats {
    /// The count of jobs in `status`.
    pub fn count(&self, status: JobStatus) -> u64 {
        self.counts[JobStatus::ALL.iter().position(|s| *s == status).expect("every status is in ALL")]
    }
}

/// The job store/broker. See the module doc for the invariants every implementation keeps.
///
/// Methods are native async so that the embedded broker is dispatched statically (no boxed
/// future per job on the hot path); [`super::DynJobBroker`] is the object-safe mirror.
pub trait JobBroker: Send + Sync + 'static {
    /// Stores new jobs, all or none, and makes them claimable (or delayed, or waiting on
    /// their dependencies). A request whose chosen id exists, or whose unique key is held
    /// (a key without `unique_for` is held while its job is not final; with it, for that
    /// many seconds from the job's creation), is answered with the existing job. A
    /// dependency must exist (stored, or earlier or later in the same batch), else
    /// [`JobError::Invalid`] names `[i].depends_on[k]` and nothing is written. `announce`
    /// is called once per new job once it is durable and, where the backend can, before it
    /// can be claimed.
    fn enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> impl Future<Output = Result<Admitted, JobError>> + Send + 'a;

    /// Claims up to `max` ready jobs of `queues` (skipping paused ones) whose names pass
    /// `names`, most urgent first, for `holder`. Delayed jobs that are due are promoted
    /// first.
    fn claim(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claimed, JobError>> + Send;

    /// Extends a worker's lease to `now + lease_ms` (default: the length of the current
    /// lease) and says whether a cancel was requested. The job must be running and, when
    /// `worker_id` is given, held by it. An in-process run's lease is left as it is.
    fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<HeartbeatAck, JobError>> + Send;

    /// Records the ends of runs, in one durable write. A completed run makes the job
    /// `completed` (or `cancelled` when a cancel was requested); a failed one `failed`
    /// with `run_at = now + backoff` while attempts remain and `retry` is set, else `dead`.
    /// Then dependants are released, or cancelled now or by later ticks (see the module
    /// doc).
    fn finish(&self, ends: Vec<RunEnd>, now: DateTime<Utc>) -> impl Future<Output = Finished> + Send;

    /// Cancels a job: a waiting one ends `cancelled` with `reason` (and its dependants with
    /// it); a running one gets `cancel_requested`. A final job (or one being updated) is a
    /// [`JobError::Conflict`]; an unknown one [`JobError::NotFound`].
    fn cancel(&self, id: &str, reason: &str, now: DateTime<Utc>) -> impl Future<Output = Result<Cancelled, JobError>> + Send;

    /// Makes a `failed` job ready now, or revives a `dead` or `cancelled` one with its
    /// attempts reset (`pending`). Returns the job and whether it became ready.
    fn retry(&self, id: &str, now: DateTime<Utc>) -> impl Future<Output = Result<(Job, Option<Ready>), JobError>> + Send;

    /// Records that a live job reports progress (its `progress_id` becomes its id).
    fn note_progress(&self, id: &str) -> impl Future<Output = Result<ProgressNote, JobError>> + Send;

    /// Promotes due delayed jobs, expires leases that ended at or before `now`, and
    /// cancels jobs whose dependency ended badly (cascades left by earlier calls, and
    /// jobs found so at start) — a bounded amount per call, so that one tick stays short.
    /// Called by the maintenance loop, at least once a second and again at once while
    /// `next_due` is `now`.
    fn tick(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Tick, JobError>> + Send;

    /// One job as it is now (a running job shows its lease), or `None`.
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Job>, JobError>> + Send;

    /// Jobs newest first (by enqueue order), filtered, a page at a time. A page may hold
    /// fewer than `limit` jobs and still have a `next_cursor` (a bounded scan).
    fn list(&self, filter: ListFilter) -> impl Future<Output = Result<JobList, JobError>> + Send;

    /// Every queue that has jobs or settings, by name.
    fn queue_stats(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<QueueStats>, JobError>> + Send;

    /// Pauses or resumes a queue, durably.
    fn set_paused(&self, queue: &str, paused: bool) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Deletes final jobs: completed and cancelled ones finished at or before
    /// `completed_before`, dead ones at or before `dead_before`. Returns how many.
    fn delete_finished(
        &self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, JobError>> + Send;

    /// Deletes up to `limit` jobs of `queue` whose status is `status` (a final status:
    /// completed, dead or cancelled; another status deletes nothing) and returns how many.
    /// A job being changed meanwhile (e.g. retried) is skipped, never deleted in its new
    /// state. Backs the bulk purge of a queue (`DELETE /api/queues/{queue}/jobs`), which
    /// bounds `limit`; a count equal to `limit` means more may be left.
    fn delete_jobs(&self, queue: &str, status: JobStatus, limit: usize) -> impl Future<Output = Result<usize, JobError>> + Send;

    /// Every stored schedule, by name.
    fn schedules(&self) -> impl Future<Output = Result<Vec<Schedule>, JobError>> + Send;

    /// Creates or replaces a schedule, durably.
    fn put_schedule(&self, schedule: Schedule) -> impl Future<Output = Result<(), JobError>> + Send;

    /// Deletes a schedule; false when there was none.
    fn delete_schedule(&self, name: &str) -> impl Future<Output = Result<bool, JobError>> + Send;

    /// Stores `next` (a schedule after firing `slot`) unless the stored schedule was
    /// replaced or deleted meanwhile (its `next_run` is no longer `slot` or its `cron`
    /// changed). Returns whether it was stored.
    fn record_fired(&self, next: Schedule, slot: DateTime<Utc>) -> impl Future<Output = Result<bool, JobError>> + Send;

    /// Jobs made ready by the other processes that share this broker, as they happen, so
    /// that this node's pools and long-polling workers wake for them (an empty batch: some
    /// notices may have been missed, wake everyone). `None`, the default, for a broker no
    /// other process uses. Called once, by [`super::JobQueue::start`]; the relay stops
    /// with `shutdown`.
    fn remote_ready(&self, shutdown: CancellationToken) -> Option<mpsc::UnboundedReceiver<Vec<Ready>>> {
        let _ = shutdown;
        None
    }
}
