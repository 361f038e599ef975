//! Dispatch over brokers: [`DynJobBroker`], the object-safe mirror of [`JobBroker`]
//! (one boxed future per call) blanket-implemented for every broker, and [`Broker`], the
//! handle the facade holds: the embedded broker dispatched statically, any other through
//! one virtual call per operation (per batch for enqueue and finish).

use super::broker::{
    Admitted, Cancelled, Claimed, Finished, Holder, JobBroker, ListFilter, Names, NewJob, ProgressNote, QueueStats, Ready, RunEnd, Tick,
};
use super::embedded::EmbeddedBroker;
use super::error::JobError;
use super::model::{HeartbeatAck, Job, JobList, JobStatus, Schedule};
use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// [`JobBroker`] with boxed futures, so that a broker can live behind `Arc<dyn _>`.
/// Implemented for every [`JobBroker`]; see that trait for each method's contract.
pub trait DynJobBroker: Send + Sync + 'static {
    /// See [`JobBroker::enqueue`].
    fn dyn_enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> BoxFuture<'a, Result<Admitted, JobError>>;
    /// See [`JobBroker::claim`].
    fn dyn_claim<'a>(
        &'a self,
        queues: &'a [String],
        names: Names<'a>,
        holder: Holder<'a>,
        max: usize,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Claimed, JobError>>;
    /// See [`JobBroker::heartbeat`].
    fn dyn_heartbeat<'a>(
        &'a self,
        id: &'a str,
        worker_id: Option<&'a str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<HeartbeatAck, JobError>>;
    /// See [`JobBroker::finish`].
    fn dyn_finish<'a>(&'a self, ends: Vec<RunEnd>, now: DateTime<Utc>) -> BoxFuture<'a, Finished>;
    /// See [`JobBroker::cancel`].
    fn dyn_cancel<'a>(&'a self, id: &'a str, reason: &'a str, now: DateTime<Utc>) -> BoxFuture<'a, Result<Cancelled, JobError>>;
    /// See [`JobBroker::retry`].
    fn dyn_retry<'a>(&'a self, id: &'a str, now: DateTime<Utc>) -> BoxFuture<'a, Result<(Job, Option<Ready>), JobError>>;
    /// See [`JobBroker::note_progress`].
    fn dyn_note_progress<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ProgressNote, JobError>>;
    /// See [`JobBroker::tick`].
    fn dyn_tick<'a>(&'a self, now: DateTime<Utc>) -> BoxFuture<'a, Result<Tick, JobError>>;
    /// See [`JobBroker::get`].
    fn dyn_get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Job>, JobError>>;
    /// See [`JobBroker::list`].
    fn dyn_list<'a>(&'a self, filter: ListFilter) -> BoxFuture<'a, Result<JobList, JobError>>;
    /// See [`JobBroker::queue_stats`].
    fn dyn_queue_stats<'a>(&'a self, now: DateTime<Utc>) -> BoxFuture<'a, Result<Vec<QueueStats>, JobError>>;
    /// See [`JobBroker::set_paused`].
    fn dyn_set_paused<'a>(&'a self, queue: &'a str, paused: bool) -> BoxFuture<'a, Result<(), JobError>>;
    /// See [`JobBroker::delete_finished`].
    fn dyn_delete_finished<'a>(
        &'a self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<usize, JobError>>;
    /// See [`JobBroker::delete_jobs`].
    fn dyn_delete_jobs<'a>(&'a self, queue: &'a str, status: JobStatus, limit: usize) -> BoxFuture<'a, Result<usize, JobError>>;
    /// See [`JobBroker::schedules`].
    fn dyn_schedules<'a>(&'a self) -> BoxFuture<'a, Result<Vec<Schedule>, JobError>>;
    /// See [`JobBroker::put_schedule`].
    fn dyn_put_schedule<'a>(&'a self, schedule: Schedule) -> BoxFuture<'a, Result<(), JobError>>;
    /// See [`JobBroker::delete_schedule`].
    fn dyn_delete_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, JobError>>;
    /// See [`JobBroker::record_fired`].
    fn dyn_record_fired<'a>(&'a self, next: Schedule, slot: DateTime<Utc>) -> BoxFuture<'a, Result<bool, JobError>>;
    /// See [`JobBroker::remote_ready`].
    fn dyn_remote_ready(&self, shutdown: CancellationToken) -> Option<mpsc::UnboundedReceiver<Vec<Ready>>>;
}

impl<T: JobBroker> DynJobBroker for T {
    fn dyn_enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> BoxFuture<'a, Result<Admitted, JobError>> {
        Box::pin(JobBroker::enqueue(self, jobs, now, announce))
    }
    fn dyn_claim<'a>(
        &'a self,
        queues: &'a [String],
        names: Names<'a>,
        holder: Holder<'a>,
        max: usize,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<Claimed, JobError>> {
        Box::pin(JobBroker::claim(self, queues, names, holder, max, now))
    }
    fn dyn_heartbeat<'a>(
        &'a self,
        id: &'a str,
        worker_id: Option<&'a str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<HeartbeatAck, JobError>> {
        Box::pin(JobBroker::heartbeat(self, id, worker_id, lease_ms, now))
    }
    fn dyn_finish<'a>(&'a self, ends: Vec<RunEnd>, now: DateTime<Utc>) -> BoxFuture<'a, Finished> {
        Box::pin(JobBroker::finish(self, ends, now))
    }
    fn dyn_cancel<'a>(&'a self, id: &'a str, reason: &'a str, now: DateTime<Utc>) -> BoxFuture<'a, Result<Cancelled, JobError>> {
        Box::pin(JobBroker::cancel(self, id, reason, now))
    }
    fn dyn_retry<'a>(&'a self, id: &'a str, now: DateTime<Utc>) -> BoxFuture<'a, Result<(Job, Option<Ready>), JobError>> {
        Box::pin(JobBroker::retry(self, id, now))
    }
    fn dyn_note_progress<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<ProgressNote, JobError>> {
        Box::pin(JobBroker::note_progress(self, id))
    }
    fn dyn_tick<'a>(&'a self, now: DateTime<Utc>) -> BoxFuture<'a, Result<Tick, JobError>> {
        Box::pin(JobBroker::tick(self, now))
    }
    fn dyn_get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Job>, JobError>> {
        Box::pin(JobBroker::get(self, id))
    }
    fn dyn_list<'a>(&'a self, filter: ListFilter) -> BoxFuture<'a, Result<JobList, JobError>> {
        Box::pin(JobBroker::list(self, filter))
    }
    fn dyn_queue_stats<'a>(&'a self, now: DateTime<Utc>) -> BoxFuture<'a, Result<Vec<QueueStats>, JobError>> {
        Box::pin(JobBroker::queue_stats(self, now))
    }
    fn dyn_set_paused<'a>(&'a self, queue: &'a str, paused: bool) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(JobBroker::set_paused(self, queue, paused))
    }
    fn dyn_delete_finished<'a>(
        &'a self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> BoxFuture<'a, Result<usize, JobError>> {
        Box::pin(JobBroker::delete_finished(self, completed_before, dead_before, now))
    }
    fn dyn_delete_jobs<'a>(&'a self, queue: &'a str, status: JobStatus, limit: usize) -> BoxFuture<'a, Result<usize, JobError>> {
        Box::pin(JobBroker::delete_jobs(self, queue, status, limit))
    }
    fn dyn_schedules<'a>(&'a self) -> BoxFuture<'a, Result<Vec<Schedule>, JobError>> {
        Box::pin(JobBroker::schedules(self))
    }
    fn dyn_put_schedule<'a>(&'a self, schedule: Schedule) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(JobBroker::put_schedule(self, schedule))
    }
    fn dyn_delete_schedule<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, JobError>> {
        Box::pin(JobBroker::delete_schedule(self, name))
    }
    fn dyn_record_fired<'a>(&'a self, next: Schedule, slot: DateTime<Utc>) -> BoxFuture<'a, Result<bool, JobError>> {
        Box::pin(JobBroker::record_fired(self, next, slot))
    }
    fn dyn_remote_ready(&self, shutdown: CancellationToken) -> Option<mpsc::UnboundedReceiver<Vec<Ready>>> {
        JobBroker::remote_ready(self, shutdown)
    }
}

/// The broker a [`super::JobQueue`] runs on.
#[derive(Clone)]
pub enum Broker {
    /// The embedded broker (redb and an in-memory ready index), dispatched statically.
    Embedded(EmbeddedBroker),
    /// Any other broker.
    Custom(Arc<dyn DynJobBroker>),
}

impl Broker {
    /// A handle on any broker.
    pub fn custom(broker: impl JobBroker) -> Broker {
        Broker::Custom(Arc::new(broker))
    }
}

impl JobBroker for Broker {
    fn enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> impl Future<Output = Result<Admitted, JobError>> + Send + 'a {
        async move {
            match self {
                Broker::Embedded(b) => b.enqueue(jobs, now, announce).await,
                Broker::Custom(b) => b.dyn_enqueue(jobs, now, announce).await,
            }
        }
    }
    fn claim(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<Claimed, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.claim(queues, names, holder, max, now).await,
                Broker::Custom(b) => b.dyn_claim(queues, names, holder, max, now).await,
            }
        }
    }
    fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<HeartbeatAck, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.heartbeat(id, worker_id, lease_ms, now).await,
                Broker::Custom(b) => b.dyn_heartbeat(id, worker_id, lease_ms, now).await,
            }
        }
    }
    fn finish(&self, ends: Vec<RunEnd>, now: DateTime<Utc>) -> impl Future<Output = Finished> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.finish(ends, now).await,
                Broker::Custom(b) => b.dyn_finish(ends, now).await,
            }
        }
    }
    fn cancel(&self, id: &str, reason: &str, now: DateTime<Utc>) -> impl Future<Output = Result<Cancelled, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.cancel(id, reason, now).await,
                Broker::Custom(b) => b.dyn_cancel(id, reason, now).await,
            }
        }
    }
    fn retry(&self, id: &str, now: DateTime<Utc>) -> impl Future<Output = Result<(Job, Option<Ready>), JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.retry(id, now).await,
                Broker::Custom(b) => b.dyn_retry(id, now).await,
            }
        }
    }
    fn note_progress(&self, id: &str) -> impl Future<Output = Result<ProgressNote, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.note_progress(id).await,
                Broker::Custom(b) => b.dyn_note_progress(id).await,
            }
        }
    }
    fn tick(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Tick, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.tick(now).await,
                Broker::Custom(b) => b.dyn_tick(now).await,
            }
        }
    }
    fn get(&self, id: &str) -> impl Future<Output = Result<Option<Job>, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.get(id).await,
                Broker::Custom(b) => b.dyn_get(id).await,
            }
        }
    }
    fn list(&self, filter: ListFilter) -> impl Future<Output = Result<JobList, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.list(filter).await,
                Broker::Custom(b) => b.dyn_list(filter).await,
            }
        }
    }
    fn queue_stats(&self, now: DateTime<Utc>) -> impl Future<Output = Result<Vec<QueueStats>, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.queue_stats(now).await,
                Broker::Custom(b) => b.dyn_queue_stats(now).await,
            }
        }
    }
    fn set_paused(&self, queue: &str, paused: bool) -> impl Future<Output = Result<(), JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.set_paused(queue, paused).await,
                Broker::Custom(b) => b.dyn_set_paused(queue, paused).await,
            }
        }
    }
    fn delete_finished(
        &self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.delete_finished(completed_before, dead_before, now).await,
                Broker::Custom(b) => b.dyn_delete_finished(completed_before, dead_before, now).await,
            }
        }
    }
    fn delete_jobs(&self, queue: &str, status: JobStatus, limit: usize) -> impl Future<Output = Result<usize, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.delete_jobs(queue, status, limit).await,
                Broker::Custom(b) => b.dyn_delete_jobs(queue, status, limit).await,
            }
        }
    }
    fn schedules(&self) -> impl Future<Output = Result<Vec<Schedule>, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.schedules().await,
                Broker::Custom(b) => b.dyn_schedules().await,
            }
        }
    }
    fn put_schedule(&self, schedule: Schedule) -> impl Future<Output = Result<(), JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.put_schedule(schedule).await,
                Broker::Custom(b) => b.dyn_put_schedule(schedule).await,
            }
        }
    }
    fn delete_schedule(&self, name: &str) -> impl Future<Output = Result<bool, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.delete_schedule(name).await,
                Broker::Custom(b) => b.dyn_delete_schedule(name).await,
            }
        }
    }
    fn record_fired(&self, next: Schedule, slot: DateTime<Utc>) -> impl Future<Output = Result<bool, JobError>> + Send {
        async move {
            match self {
                Broker::Embedded(b) => b.record_fired(next, slot).await,
                Broker::Custom(b) => b.dyn_record_fired(next, slot).await,
            }
        }
    }
    fn remote_ready(&self, shutdown: CancellationToken) -> Option<mpsc::UnboundedReceiver<Vec<Ready>>> {
        match self {
            Broker::Embedded(b) => b.remote_ready(shutdown),
            Broker::Custom(b) => b.dyn_remote_ready(shutdown),
        }
    }
}
