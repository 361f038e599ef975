//! The embedded broker: jobs live in redb ([`store`]), and an in-memory index ([`index`])
//! over the non-final jobs, rebuilt from redb when the broker opens, serves claims without
//! touching the disk.
//!
//! - **Durability.** An enqueue (or batch), a batch of ends and a retry are each one
//!   closure queued to the store's group-commit writer and acknowledged only once that
//!   commit is durable, so thousands of jobs share one fsync.
//! - **Claims are leases in memory** (at-least-once). A claim marks the job running in the
//!   index only; if hearth dies, the job's last durable record is still `pending` (or
//!   `failed` with a run_at) with the attempts of that record, and it is ready again when
//!   the broker reopens — it may run twice, never zero times. A worker's lease that runs
//!   out returns the job to its queue with its attempt counted (durably). In-process runs
//!   are not reaped here: their holder is this process, which bounds them by their timeout
//!   and whose crash loses them anyway.
//! - **A live record in flight keeps its previous state**: it is `busy` and in no claimable
//!   set until its write settles, so a failed write restores nothing.

mod control;
mod enqueue;
mod finish;
mod index;
mod reads;
mod store;

use crate::jobs::broker::{
    Admitted, Cancelled, Claimed, Finished, Holder, JobBroker, ListFilter, Names, NewJob, ProgressNote, QueueStats, Ready, RunEnd, Tick,
};
use crate::jobs::error::JobError;
use crate::jobs::model::{HeartbeatAck, Job, JobList, JobStatus, Schedule};
use crate::store::Store;
use chrono::{DateTime, Utc};
#[cfg(test)]
pub(crate) use finish::CASCADE_STEP;
use finish::End;
use index::Index;
use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The embedded broker. Cheap to clone; every clone is the same broker.
#[derive(Clone)]
pub struct EmbeddedBroker {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    index: Mutex<Index>,
    /// The next enqueue sequence number.
    seq: AtomicU64,
    /// Every schedule, mirrored from redb.
    schedules: Mutex<BTreeMap<String, Schedule>>,
    /// Serialises schedule writes, so a fired slot never overwrites a newer version.
    schedule_writes: tokio::sync::Mutex<()>,
    /// Jobs to cancel because a dependency ended dead or cancelled, with the reason: found
    /// so at open, or left by an end whose dependants are cancelled in the background
    /// (by [`JobBroker::tick`], a bounded step at a time).
    cascade: Mutex<Vec<(String, String)>>,
}

impl EmbeddedBroker {
    /// Opens the broker on `store`, rebuilding the index from redb as of `now`: jobs that
    /// were running are ready again. A store that cannot be read gives an empty broker
    /// and the error.
    pub fn open(store: Store, now: DateTime<Utc>) -> (EmbeddedBroker, Result<(), JobError>) {
        let b = EmbeddedBroker {
            inner: Arc::new(Inner {
                store,
                index: Mutex::new(Index::default()),
                seq: AtomicU64::new(1),
                schedules: Mutex::new(BTreeMap::new()),
                schedule_writes: tokio::sync::Mutex::new(()),
                cascade: Mutex::new(Vec::new()),
            }),
        };
        let loaded = b.load(now);
        (b, loaded)
    }

    /// Rebuilds the in-memory index from redb.
    fn load(&self, now: DateTime<Utc>) -> Result<(), JobError> {
        let (jobs, queues, schedules) = self
            .inner
            .store
            .read_now(|txn| -> Result<_, JobError> { Ok((store::all(txn)?, store::queues(txn)?, store::schedules(txn)?)) })?;
        let mut idx = self.inner.index.lock();
        for (name, meta) in queues {
            if meta.paused {
                idx.paused.insert(name.clone());
            }
            idx.queues.insert(name);
        }
        let mut max_seq = 0;
        let status: HashMap<&str, JobStatus> = jobs.iter().map(|j| (j.id.as_str(), j.status)).collect();
        let mut doomed = Vec::new();
        let now_ms = now.timestamp_millis();
        for job in &jobs {
            max_seq = max_seq.max(job.seq);
            if let Some(k) = &job.unique_key {
                let exp = job.unique_for.map(|s| crate::jobs::limits::ms_plus_secs(job.created_at.timestamp_millis(), s));
                let held = match exp {
                    Some(e) => e > now_ms,
                    None => !job.status.is_final(),
                };
                if held {
                    idx.unique.insert(k.clone(), (job.id.clone(), exp));
                }
            }
            if job.status.is_final() {
                idx.queues.insert(job.queue.clone());
                idx.count_final(&job.queue, job.status);
                continue;
            }
            let mut blocked = HashSet::new();
            for d in &job.depends_on {
                match status.get(d.as_str()) {
                    Some(JobStatus::Completed) | None => {}
                    Some(s @ (JobStatus::Dead | JobStatus::Cancelled)) => {
                        doomed.push((job.id.clone(), format!("dependency {d} ended {}", s.as_str())))
                    }
                    Some(_) => {
                        blocked.insert(d.clone());
                    }
                }
            }
            let mut j = job.clone();
            j.worker_id = None;
            j.lease_until = None;
            idx.insert(j, blocked, now);
        }
        drop(idx);
        self.inner.seq.store(max_seq + 1, Ordering::SeqCst);
        self.inner.schedules.lock().extend(schedules.into_iter().map(|s| (s.name.clone(), s)));
        *self.inner.cascade.lock() = doomed;
        Ok(())
    }

    /// Claims under the lock, promoting due delayed jobs first.
    fn take(&self, queues: &[String], names: Names<'_>, holder: Holder<'_>, max: usize, now: DateTime<Utc>) -> Claimed {
        let mut idx = self.inner.index.lock();
        let ready = idx.promote_due(now);
        let jobs = idx.claim(queues, names, holder, max, now);
        let more = idx.any_ready(queues, names);
        Claimed { jobs, ready, more }
    }
}

impl JobBroker for EmbeddedBroker {
    async fn enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> Result<Admitted, JobError> {
        self.enqueue_jobs(jobs, now, announce).await
    }

    async fn claim(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Claimed, JobError> {
        Ok(self.take(queues, names, holder, max, now))
    }

    async fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<HeartbeatAck, JobError> {
        self.beat(id, worker_id, lease_ms, now)
    }

    async fn finish(&self, ends: Vec<RunEnd>, now: DateTime<Utc>) -> Finished {
        let ends = ends.into_iter().map(|e| End { id: e.id, outcome: e.outcome.into(), running: Some(e.worker_id) }).collect();
        self.finish_ends(ends, now).await
    }

    async fn cancel(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<Cancelled, JobError> {
        self.cancel_job(id, reason, now).await
    }

    async fn retry(&self, id: &str, now: DateTime<Utc>) -> Result<(Job, Option<Ready>), JobError> {
        self.retry_job(id, now).await
    }

    async fn note_progress(&self, id: &str) -> Result<ProgressNote, JobError> {
        Ok(self.progress_note(id))
    }

    async fn tick(&self, now: DateTime<Utc>) -> Result<Tick, JobError> {
        Ok(self.maintain(now).await)
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        self.get_job(id).await
    }

    async fn list(&self, filter: ListFilter) -> Result<JobList, JobError> {
        self.list_jobs(filter).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, JobError> {
        Ok(self.stats(now))
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), JobError> {
        self.pause(queue, paused).await
    }

    async fn delete_finished(
        &self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, JobError> {
        self.retention(completed_before, dead_before, now).await
    }

    async fn delete_jobs(&self, queue: &str, status: JobStatus, limit: usize) -> Result<usize, JobError> {
        self.purge(queue, status, limit).await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, JobError> {
        Ok(self.inner.schedules.lock().values().cloned().collect())
    }

    async fn put_schedule(&self, schedule: Schedule) -> Result<(), JobError> {
        self.put_sched(schedule).await
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, JobError> {
        self.delete_sched(name).await
    }

    async fn record_fired(&self, next: Schedule, slot: DateTime<Utc>) -> Result<bool, JobError> {
        self.fired(next, slot).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Broker;
    use crate::jobs::conformance::{self, Harness};

    /// Embedded brokers on real redb stores in temp dirs.
    #[derive(Default)]
    struct Redb {
        dir: Option<tempfile::TempDir>,
    }

    impl Redb {
        fn open(&self, now: DateTime<Utc>) -> EmbeddedBroker {
            let store = Store::open(self.dir.as_ref().expect("a fresh store first").path()).expect("open the store");
            let (b, loaded) = EmbeddedBroker::open(store, now);
            loaded.expect("the index loads");
            b
        }
    }

    impl Harness<EmbeddedBroker> for Redb {
        async fn fresh(&mut self, now: DateTime<Utc>) -> EmbeddedBroker {
            self.dir = Some(tempfile::tempdir().expect("temp dir"));
            self.open(now)
        }

        async fn reopen(&mut self, broker: EmbeddedBroker, now: DateTime<Utc>) -> EmbeddedBroker {
            // The last store handle closes the database (its writer is joined) on drop.
            drop(broker);
            self.open(now)
        }
    }

    /// The same brokers behind `Broker::Custom`, to check the boxed-future dispatch too.
    #[derive(Default)]
    struct Boxed(Redb);

    impl Harness<Broker> for Boxed {
        async fn fresh(&mut self, now: DateTime<Utc>) -> Broker {
            Broker::custom(self.0.fresh(now).await)
        }

        async fn reopen(&mut self, broker: Broker, now: DateTime<Utc>) -> Broker {
            drop(broker);
            Broker::custom(self.0.open(now))
        }
    }

    #[tokio::test]
    async fn the_embedded_broker_passes_the_conformance_suite() {
        conformance::run(Redb::default()).await;
    }

    #[tokio::test]
    async fn a_boxed_broker_passes_the_conformance_suite() {
        conformance::run(Boxed::default()).await;
    }
}
