//! A panic while recording the end of a run costs only the job that caused it: the
//! completer records the batch again end by end, and the end that panics on its own is
//! recorded as a fatal failure (a poison job, dead with the reason).
//!
//! The panic is injected through the broker seam: [`Panicky`] is the embedded broker,
//! except that recording a successful end of a job named `poison` panics.

use super::*;
use crate::jobs::broker::{
    Admitted, Cancelled, Claimed, Finished, Holder, JobBroker, ListFilter, Names, NewJob, ProgressNote, QueueStats, Ready, RunEnd,
    RunOutcome, Tick,
};

struct Panicky(EmbeddedBroker);

impl JobBroker for Panicky {
    async fn enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: chrono::DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> Result<Admitted, JobError> {
        self.0.enqueue(jobs, now, announce).await
    }
    async fn claim(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
        now: chrono::DateTime<Utc>,
    ) -> Result<Claimed, JobError> {
        self.0.claim(queues, names, holder, max, now).await
    }
    async fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_ms: Option<i64>,
        now: chrono::DateTime<Utc>,
    ) -> Result<HeartbeatAck, JobError> {
        self.0.heartbeat(id, worker_id, lease_ms, now).await
    }
    async fn finish(&self, ends: Vec<RunEnd>, now: chrono::DateTime<Utc>) -> Finished {
        for e in &ends {
            let poisoned = matches!(self.0.get(&e.id).await, Ok(Some(j)) if j.name == "poison");
            if poisoned && matches!(e.outcome, RunOutcome::Complete(_)) {
                panic!("cannot record job {}", e.id);
            }
        }
        self.0.finish(ends, now).await
    }
    async fn cancel(&self, id: &str, reason: &str, now: chrono::DateTime<Utc>) -> Result<Cancelled, JobError> {
        self.0.cancel(id, reason, now).await
    }
    async fn retry(&self, id: &str, now: chrono::DateTime<Utc>) -> Result<(Job, Option<Ready>), JobError> {
        self.0.retry(id, now).await
    }
    async fn note_progress(&self, id: &str) -> Result<ProgressNote, JobError> {
        self.0.note_progress(id).await
    }
    async fn tick(&self, now: chrono::DateTime<Utc>) -> Result<Tick, JobError> {
        self.0.tick(now).await
    }
    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        self.0.get(id).await
    }
    async fn list(&self, filter: ListFilter) -> Result<JobList, JobError> {
        self.0.list(filter).await
    }
    async fn queue_stats(&self, now: chrono::DateTime<Utc>) -> Result<Vec<QueueStats>, JobError> {
        self.0.queue_stats(now).await
    }
    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), JobError> {
        self.0.set_paused(queue, paused).await
    }
    async fn delete_finished(
        &self,
        completed_before: chrono::DateTime<Utc>,
        dead_before: chrono::DateTime<Utc>,
        now: chrono::DateTime<Utc>,
    ) -> Result<usize, JobError> {
        self.0.delete_finished(completed_before, dead_before, now).await
    }
    async fn delete_jobs(&self, queue: &str, status: JobStatus, limit: usize) -> Result<usize, JobError> {
        self.0.delete_jobs(queue, status, limit).await
    }
    async fn schedules(&self) -> Result<Vec<Schedule>, JobError> {
        self.0.schedules().await
    }
    async fn put_schedule(&self, schedule: Schedule) -> Result<(), JobError> {
        self.0.put_schedule(schedule).await
    }
    async fn delete_schedule(&self, name: &str) -> Result<bool, JobError> {
        self.0.delete_schedule(name).await
    }
    async fn record_fired(&self, next: Schedule, slot: chrono::DateTime<Utc>) -> Result<bool, JobError> {
        self.0.record_fired(next, slot).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_whose_end_cannot_be_recorded_ends_dead_and_its_batch_neighbours_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let clock: SharedClock = Arc::new(crate::clock::SystemClock);
    let events = EventBus::default();
    let progress = ProgressTracker::new(store.clone(), events.clone(), clock.clone(), ProgressConfig::default());
    let (embedded, loaded) = EmbeddedBroker::open(store, clock.now());
    loaded.unwrap();
    let q = JobQueue::with_broker(Broker::custom(Panicky(embedded)), events, clock, progress, JobQueueConfig::default());
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    for name in ["poison", "ok"] {
        let gate = gate.clone();
        // Every run waits at the gate, so that their ends reach the completer together.
        q.handler(name, move |_ctx: JobContext, p| {
            let gate = gate.clone();
            async move {
                let _permit = gate.acquire().await.map_err(|e| JobFailure::retry(e.to_string()))?;
                Ok(p)
            }
        });
    }
    let bg = crate::runtime::Background::default();
    q.start(&bg);
    let poison = q.enqueue(EnqueueRequest { max_attempts: Some(5), ..EnqueueRequest::new("poison", json!({})) }).await.unwrap().job_id;
    let mut ok = Vec::new();
    for i in 0..3 {
        ok.push(q.enqueue(EnqueueRequest::new("ok", json!({ "i": i }))).await.unwrap().job_id);
    }
    gate.add_permits(100);
    let wait_final = |id: String| {
        let q = q.clone();
        async move {
            for _ in 0..1000 {
                let j = q.get_status(&id).await.unwrap();
                if j.status.is_final() {
                    return j;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("job {id} never ended");
        }
    };
    for id in ok {
        assert_eq!(wait_final(id).await.status, JobStatus::Completed, "the neighbours of a poison job complete");
    }
    let j = wait_final(poison).await;
    assert_eq!((j.status, j.attempts), (JobStatus::Dead, 1), "a poison job is not retried: {j:?}");
    assert!(j.reason.as_deref().unwrap_or_default().contains("cannot record job"), "the reason names the panic: {j:?}");
    // The completer goes on.
    let later = q.enqueue(EnqueueRequest::new("ok", json!({}))).await.unwrap().job_id;
    assert_eq!(wait_final(later).await.status, JobStatus::Completed);
    bg.shutdown.cancel();
}
