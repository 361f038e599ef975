//! The durable job queue (seed "3. Job Queue Module", issue #3).
//!
//! [`JobQueue`] is the facade: it validates requests and builds job records
//! (`validate.rs`), runs in-process handlers in worker pools (`runner.rs`), wakes pools
//! and long-polling workers when jobs become ready, fires cron schedules (`schedule.rs`),
//! runs the maintenance loop (`maintenance.rs`) and reports every step (events, hooks,
//! metrics, progress: `report.rs`). The jobs themselves live behind the [`JobBroker`]
//! seam (`broker.rs`): the embedded broker (`embedded/`: redb and an in-memory ready
//! index) by default, or any other through [`JobQueue::with_broker`].
//!
//! - **Durability.** An enqueue, a complete, a fail and a cancel are each acknowledged only
//!   once the broker made them durable; the embedded broker batches them into group
//!   commits, so thousands of jobs share one fsync.
//! - **Claims are leases** (at-least-once): a job may run twice, never zero times. An
//!   external worker's lease that runs out returns the job to its queue with its attempt
//!   counted; an in-process run is bounded by the job's `timeout`.
//! - **No polling.** In-process worker pools sleep on a `Notify` woken by every job that
//!   becomes ready; the maintenance loop sleeps until the next delayed job or lease end.
//! - **In-process handlers** (`queue.handler(name, f)`) run in the pools configured under
//!   `job_queue.workers`; external workers claim over HTTP (`/api/jobs/claim`). An external
//!   claim takes only names that have no in-process handler, unless it lists names.
//! - **Cancellation** of a running job is recorded by the broker (`cancel_requested`,
//!   reported to external workers by heartbeats); the facade signals the cancellation token
//!   of its own in-process runs.
//! - **Recurring schedules** (`schedule.rs`): cron with timezone; each run's job id is
//!   derived from the schedule and the slot time, so a run is never enqueued twice, even
//!   across a crash or with several nodes. Missed-run policy: runs missed while hearth was
//!   down are coalesced into ONE catch-up run at start; later slots follow the cron
//!   expression.

pub mod broker;
pub mod bulk;
mod claimer;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod context;
mod control;
pub mod cron;
mod dispatch;
mod embedded;
mod enqueue;
pub mod error;
mod finish;
pub mod lifecycle;
pub mod limits;
mod maintenance;
mod metrics;
pub mod model;
mod reads;
mod redis;
mod report;
pub mod reserved;
mod runner;
pub mod schedule;
mod stall;
#[cfg(test)]
mod tests;
pub(crate) mod validate;
mod worker;

pub use self::redis::RedisBroker;
pub use broker::JobBroker;
pub use bulk::{BulkOutcome, MAX_BULK};
pub use context::JobContext;
pub use dispatch::{Broker, DynJobBroker};
pub use embedded::EmbeddedBroker;
pub use error::JobError;
pub use finish::MAX_ERROR_BYTES;
pub use model::{
    Backoff, BackoffKind, ClaimRequest, EnqueueRequest, Enqueued, HeartbeatAck, Job, JobAttemptError, JobFailure, JobList, JobStatus,
    ListQuery, QueueInfo, Schedule, ScheduleRequest,
};
pub use validate::MAX_CLAIM;
pub use worker::StandingClaim;

use crate::{clock::SharedClock, events::EventBus, progress::ProgressTracker, store::Store};
use config::JobQueueConfig;
use futures::future::BoxFuture;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

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
    /// When it last made progress and since when its work is ready (`stall.rs`).
    pub activity: Mutex<stall::Activity>,
}

/// The registered in-process handlers, with their names as a list that claims borrow.
#[derive(Default)]
pub(crate) struct Handlers {
    pub by_name: HashMap<String, Handler>,
    pub names: Arc<[String]>,
}

/// The cancellation signal of one in-process run of this process. A cancel may arrive
/// between the claim and the run's registration: the run then takes the signal already
/// given, if it is for the same run (attempt and start).
pub(crate) struct RunSignal {
    pub attempt: u32,
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    pub token: CancellationToken,
}

/// The signals of this process's in-process runs, by job id.
type Runs = HashMap<String, RunSignal, foldhash::fast::RandomState>;

/// State shared by every clone of the queue.
pub(crate) struct Shared {
    pub broker: Broker,
    pub events: EventBus,
    pub clock: SharedClock,
    pub progress: ProgressTracker,
    pub config: JobQueueConfig,
    pub handlers: RwLock<Handlers>,
    pub hooks: RwLock<Vec<Arc<dyn JobHooks>>>,
    pub pools: Vec<Pool>,
    /// Woken whenever a job becomes ready for external workers (long-poll claims).
    pub external: Notify,
    /// Wakes the maintenance loop when an earlier deadline appears.
    pub wake: Notify,
    pub started: AtomicBool,
    pub runs: Mutex<Runs>,
}

/// The job queue. Cheap to clone; every clone is the same queue.
#[derive(Clone)]
pub struct JobQueue {
    pub(crate) shared: Arc<Shared>,
}

impl JobQueue {
    /// Builds the queue on the embedded broker over the shared store, rebuilding its
    /// index from redb (jobs that were running when hearth stopped are ready again).
    /// Enqueues work at once; nothing runs until [`JobQueue::start`].
    pub fn new(store: Store, events: EventBus, clock: SharedClock, progress: ProgressTracker, config: JobQueueConfig) -> Self {
        let (broker, loaded) = EmbeddedBroker::open(store, clock.now());
        if let Err(e) = loaded {
            tracing::error!(error = %e, "job queue: cannot rebuild the index from the store");
        }
        JobQueue::with_broker(Broker::Embedded(broker), events, clock, progress, config)
    }

    /// Builds the queue on any broker (see [`Broker::custom`]).
    pub fn with_broker(broker: Broker, events: EventBus, clock: SharedClock, progress: ProgressTracker, config: JobQueueConfig) -> Self {
        metrics::describe();
        let pools = config
            .workers
            .iter()
            .filter(|(_, p)| p.count > 0)
            .map(|(name, p)| Pool {
                name: name.clone(),
                queues: p.queues.clone(),
                count: p.count,
                notify: Notify::new(),
                activity: Mutex::new(stall::Activity::default()),
            })
            .collect();
        let shared = Arc::new(Shared {
            broker,
            events,
            clock,
            progress,
            config,
            handlers: RwLock::new(Handlers::default()),
            hooks: RwLock::new(Vec::new()),
            pools,
            external: Notify::new(),
            wake: Notify::new(),
            started: AtomicBool::new(false),
            runs: Mutex::new(Runs::default()),
        });
        JobQueue { shared }
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
        {
            let mut hs = self.shared.handlers.write();
            hs.by_name.insert(name.to_string(), h);
            hs.names = hs.by_name.keys().cloned().collect();
        }
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
        *self.shared.handlers.write() = Handlers::default();
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
        if let Some(mut remote) = self.shared.broker.remote_ready(bg.shutdown.clone()) {
            // Jobs other nodes made ready wake this node's pools and waiting workers; a
            // gap in the notices wakes every pool.
            let shared = self.shared.clone();
            tokio::spawn(async move {
                while let Some(ready) = remote.recv().await {
                    if ready.is_empty() {
                        shared.wake_all();
                    } else {
                        shared.notify_ready(&ready);
                    }
                }
            });
        }
    }

    /// Runs one maintenance pass now (promote due jobs, expire leases, fire due schedules,
    /// apply retention, refresh gauges). The background loop does this on its own; tests
    /// that drive a manual clock call it after advancing the clock.
    pub async fn tick(&self) {
        maintenance::tick(self).await;
    }
}
