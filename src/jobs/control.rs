//! Control of jobs and queues: cancel, retry, pause and resume.

use super::JobQueue;
use super::broker::{Cancelled, JobBroker};
use super::error::JobError;
use super::model::{Job, JobStatus, QueueInfo};
use super::validate::check_queue;

impl JobQueue {
    /// Cancels a job. A waiting job becomes `cancelled` at once (durably) and is never
    /// claimed; a running job gets its cancellation signal and ends `cancelled` when its
    /// run ends (cooperatively, or forcibly at its timeout / lease end). Cancelling a
    /// cancelled job is a no-op; a completed or dead job is a conflict.
    pub async fn cancel(&self, id: &str) -> Result<Job, JobError> {
        let now = self.now();
        let ended = match self.shared.broker.cancel(id, "cancelled by request", now).await {
            Ok(Cancelled::Requested(job)) => {
                self.signal_run(&job);
                return Ok(job);
            }
            Ok(Cancelled::Ended(f)) => self.report_finished(f, now).await.pop().expect("one result per cancel"),
            Err(e) => Err(e),
        };
        match ended {
            Ok(e) => Ok(*e.job),
            Err(JobError::Conflict(_)) => {
                let job = self.get_status(id).await?;
                match job.status {
                    JobStatus::Cancelled => Ok(job),
                    s if s.is_final() => Err(JobError::Conflict(format!("job {id} is already {}", s.as_str()))),
                    _ => Err(JobError::Conflict(format!("job {id} is being updated; try again"))),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Runs a `failed` job now, or revives a `dead` (or cancelled) job with its attempts
    /// reset. Durable when this returns; reported as `job.retried`.
    pub async fn retry(&self, id: &str) -> Result<Job, JobError> {
        let (job, ready) = self.shared.broker.retry(id, self.now()).await?;
        self.emit("job.retried", &job);
        self.shared.notify_ready(&ready.into_iter().collect::<Vec<_>>());
        Ok(job)
    }

    /// Pauses (`true`) or resumes a queue, durably. Claims skip a paused queue; running
    /// jobs are not affected.
    pub async fn set_paused(&self, queue: &str, paused: bool) -> Result<QueueInfo, JobError> {
        check_queue("queue", queue)?;
        self.shared.broker.set_paused(queue, paused).await?;
        if !paused {
            for p in &self.shared.pools {
                if p.queues.iter().any(|q| q == queue) {
                    p.notify.notify_waiters();
                    for _ in 0..p.count {
                        p.notify.notify_one();
                    }
                }
            }
            self.shared.external.notify_waiters();
        }
        self.queues()
            .await?
            .into_iter()
            .find(|q| q.name == queue)
            .ok_or_else(|| JobError::Conflict(format!("queue {queue} was not recorded")))
    }
}
