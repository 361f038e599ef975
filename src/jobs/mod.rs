//! The durable job queue (seed "3. Job Queue Module", issue #3).
//!
//! Jobs live in redb (`store.rs`); an in-memory index (`index.rs`) over the non-final
//! jobs is rebuilt from redb at start and serves claims without touching the disk.
//!
//! - **Durability.** An enqueue, a complete, a fail and a cancel are each one operation
//!   queued to the store's group-commit writer and acknowledged only once that commit is
//!   durable, so thousands of jobs share one fsync.
//! - **Claims are leases in memory** (at-least-once). A claim marks the job running in the
//!   index only; if hearth dies, the job's last durable record is still `pending` (or
//!   `failed` with a run_at) and it is ready again after restart — it may run twice, never
//!   zero times. An external worker's lease that runs out returns the job to its queue with
//!   its attempt counted (durably); an in-process run is bounded by the job's `timeout`.
//! - **No polling.** In-process worker pools sleep on a `Notify` woken by every job that
//!   becomes ready; the maintenance loop sleeps until the next delayed job or lease end.
//! - **In-process handlers** (`queue.handler(name, f)`) run in the pools configured under
//!   `job_queue.workers`; external workers claim over HTTP (`/api/jobs/claim`). An external
//!   claim takes only names that have no in-process handler, unless it lists names.
//! - **Recurring schedules** (`schedule.rs`): cron with timezone; each run's job id is
//!   derived from the schedule and the slot time, so a run is never enqueued twice, even
//!   across a crash. Missed-run policy: runs missed while hearth was down are coalesced
//!   into ONE catch-up run at start; later slots follow the cron expression.

pub mod config;
mod context;
pub mod error;
mod finish;
mod index;
mod maintenance;
mod metrics;
pub mod model;
mod ops;
mod runner;
pub mod schedule;
mod store;
#[cfg(test)]
mod tests;

pub use context::JobContext;
pub use error::JobError;
pub use model::{Backoff, BackoffKind, EnqueueRequest, Enqueued, Job, JobAttemptError, JobFailure, JobStatus};
pub use ops::{ClaimRequest, HeartbeatAck, JobList, ListQuery, MAX_CLAIM, QueueInfo};
pub use schedule::{Schedule, ScheduleRequest};

use crate::{clock::SharedClock, events::EventBus, progress::ProgressTracker, store::Store};
use config::JobQueueConfig;
use futures::future::BoxFuture;
use index::Index;
use parking_lot::{Mutex, RwLock};
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use tokio::sync::Notify;

/// Observers of job life-cycle steps (middleware). Each method runs after the step is
/// durable, on the task that performed it: keep them quick and non-blocking.
pub trait JobHooks: Send + Sync + 'static {
    /// A job was enqueued.
    fn on_enqueue(&self, _job: &Job) {}
    /// A run started (claimed in-process or by a worker).
    fn on_start(&self, _job: &Job) {}
    /// A job completed.
    fn on_complete(&self, _job: &Job) {}
    /// A run failed (the job is `failed` and will retry, or `dead`).
    fn on_fail(&self, _job: &Job, _error: &str) {}
}

/// A registered in-process handler.
type Handler = Arc<dyn Fn(JobContext, serde_json::Value) -> BoxFuture<'static, Result<serde_json::Value, JobFailure>> + Send + Sync>;

/// One in-process worker pool from `job_queue.workers`.
pub(crate) struct Pool {
    pub name: String,
    pub queues: Vec<String>,
    pub count: usize,
    pub notify: Notify,
}

/// State shared by every clone of the queue.
pub(crate) struct Shared {
    pub store: Store,
    pub events: EventBus,
    pub clock: SharedClock,
    pub progress: ProgressTracker,
    pub config: JobQueueConfig,
    pub index: Mutex<Index>,
    pub handlers: RwLock<HashMap<String, Handler>>,
    pub hooks: RwLock<Vec<Arc<dyn JobHooks>>>,
    pub seq: AtomicU64,
    pub pools: Vec<Pool>,
    /// Woken whenever a job becomes ready for external workers (long-poll claims).
    pub external: Notify,
    /// Wakes the maintenance loop when an earlier deadline appears.
    pub wake: Notify,
    pub schedules: Mutex<BTreeMap<String, Schedule>>,
    pub started: AtomicBool,
    /// Jobs found at start whose dependency ended dead or cancelled: cancelled by the
    /// maintenance loop once it starts.
    pub startup_doomed: Mutex<Vec<(String, String)>>,
}

/// The job queue. Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct JobQueue {
    pub(crate) shared: Arc<Shared>,
}

impl JobQueue {
    /// Builds the queue on the shared store, event bus and progress tracker, and rebuilds
    /// the in-memory index from redb (jobs that were running when hearth stopped are ready
    /// again). Enqueues work at once; nothing runs until [`JobQueue::start`].
    pub fn new(store: Store, events: EventBus, clock: SharedClock, progress: ProgressTracker, config: JobQueueConfig) -> Self {
        metrics::describe();
        let pools = config
            .workers
            .iter()
            .filter(|(_, p)| p.count > 0)
            .map(|(name, p)| Pool { name: name.clone(), queues: p.queues.clone(), count: p.count, notify: Notify::new() })
            .collect();
        let shared = Arc::new(Shared {
            store,
            events,
            clock,
            progress,
            config,
            index: Mutex::new(Index::default()),
            handlers: RwLock::new(HashMap::new()),
            hooks: RwLock::new(Vec::new()),
            seq: AtomicU64::new(1),
            pools,
            external: Notify::new(),
            wake: Notify::new(),
            schedules: Mutex::new(BTreeMap::new()),
            started: AtomicBool::new(false),
            startup_doomed: Mutex::new(Vec::new()),
        });
        let q = JobQueue { shared };
        if let Err(e) = q.load() {
            tracing::error!(error = %e, "job queue: cannot rebuild the index from the store");
        }
        q
    }

    /// Registers an in-process handler for jobs named `name` (replacing any previous one).
    /// Callable before [`JobQueue::start`]; jobs of that name are then run by the worker
    /// pools serving their queue and are no longer offered to external workers.
    pub fn handler<F, Fut>(&self, name: &str, f: F)
    where
        F: Fn(JobContext, serde_json::Value) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = Result<serde_json::Value, JobFailure>> + Send + 'static,
    {
        let h: Handler = Arc::new(move |ctx, payload| Box::pin(f(ctx, payload)));
        self.shared.handlers.write().insert(name.to_string(), h);
        self.shared.index.lock().handlers.insert(name.to_string());
        for p in &self.shared.pools {
            p.notify.notify_waiters();
        }
    }

    /// Registers life-cycle hooks.
    pub fn register_hooks(&self, hooks: Arc<dyn JobHooks>) {
        self.shared.hooks.write().push(hooks);
    }

    /// Drops every registered handler and hook. Handlers usually capture the service that
    /// registered them, which holds this queue: a reference cycle that would keep the store
    /// (and the database lock) alive after shutdown. [`crate::App::shutdown`] calls this
    /// once the workers have stopped.
    pub fn release_plugins(&self) {
        self.shared.handlers.write().clear();
        self.shared.hooks.write().clear();
    }

    /// Starts the in-process worker pools, the maintenance loop (delayed jobs, lease
    /// reaper, retention, gauges) and the scheduler. Idempotent.
    pub fn start(&self, bg: &crate::runtime::Background) {
        if self.shared.started.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return;
        }
        runner::start(self, bg);
        maintenance::start(self, bg);
    }

    /// Runs one maintenance pass now (promote due jobs, expire leases, fire due schedules,
    /// apply retention, refresh gauges). The background loop does this on its own; tests
    /// that drive a manual clock call it after advancing the clock.
    pub async fn tick(&self) {
        maintenance::tick(self).await;
    }
}
