//! The end of runs reported by their holders — complete and fail, one at a time or in
//! batches — recorded by the broker in one durable write per batch, then reported.

use super::JobQueue;
use super::broker::{Ended, JobBroker, RunEnd, RunOutcome};
use super::error::JobError;
use super::model::Job;
use super::validate::{self, MAX_CLAIM};

/// Longest error text a failed run may record.
pub const MAX_ERROR_BYTES: usize = 64 * 1024;

impl JobQueue {
    /// Completes a running job with its result; durable when this returns.
    pub async fn complete(&self, id: &str, worker_id: Option<&str>, result: Option<serde_json::Value>) -> Result<Job, JobError> {
        validate::result(&self.shared.config, &result)?;
        self.finish_one(id, worker_id, RunOutcome::Complete(result)).await
    }

    /// Completes several running jobs of one worker in one durable write (the batch form
    /// of [`JobQueue::complete`]). The batch holds 1 to [`MAX_CLAIM`] distinct ids (else
    /// an error naming `jobs` or `jobs[i].id`). Each job then gets its own result: one
    /// job that is not running, or leased by another worker, does not affect the others.
    pub async fn complete_many(
        &self,
        worker_id: Option<&str>,
        results: Vec<(String, Option<serde_json::Value>)>,
    ) -> Result<Vec<Result<Job, JobError>>, JobError> {
        self.finish_many(worker_id, results.into_iter().map(|(id, r)| (id, RunOutcome::Complete(r))).collect()).await
    }

    /// Ends several running jobs of one worker — completes and fails mixed — in one
    /// durable write: what a streaming worker's frames become (`/ws/worker`). The same
    /// rules as [`JobQueue::complete_many`]; each end is checked as [`JobQueue::complete`]
    /// or [`JobQueue::fail`] checks it, and answered on its own, in order.
    pub async fn finish_many(
        &self,
        worker_id: Option<&str>,
        ends: Vec<(String, RunOutcome)>,
    ) -> Result<Vec<Result<Job, JobError>>, JobError> {
        validate::batch_ids(ends.iter().map(|(id, _)| id.as_str()))?;
        let mut out: Vec<Option<Result<Job, JobError>>> = Vec::with_capacity(ends.len());
        let mut runs = Vec::with_capacity(ends.len());
        let mut positions = Vec::with_capacity(ends.len());
        for (i, (id, outcome)) in ends.into_iter().enumerate() {
            match self.check_outcome(&outcome) {
                Ok(()) => {
                    positions.push(i);
                    runs.push(RunEnd { id, worker_id: worker_id.map(str::to_string), outcome });
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        debug_assert!(runs.len() <= MAX_CLAIM);
        for (r, i) in self.finish_runs(runs).await.into_iter().zip(positions) {
            out[i] = Some(r.map(|e| *e.job));
        }
        Ok(out.into_iter().map(|r| r.expect("every position answered")).collect())
    }

    /// Fails a running job's attempt: it retries after its backoff while attempts remain
    /// and `retry` is true, else it is dead. Durable when this returns.
    pub async fn fail(&self, id: &str, worker_id: Option<&str>, error: &str, retry: bool) -> Result<Job, JobError> {
        let outcome = RunOutcome::Fail { error: error.to_string(), retry };
        self.check_outcome(&outcome)?;
        self.finish_one(id, worker_id, outcome).await
    }

    /// A result within the payload limit (413), an error text of at most 64 KiB.
    fn check_outcome(&self, outcome: &RunOutcome) -> Result<(), JobError> {
        match outcome {
            RunOutcome::Complete(result) => validate::result(&self.shared.config, result),
            RunOutcome::Fail { error, .. } if error.len() > MAX_ERROR_BYTES => {
                Err(JobError::invalid("error", format!("must be at most {MAX_ERROR_BYTES} bytes")))
            }
            RunOutcome::Fail { .. } => Ok(()),
        }
    }

    async fn finish_one(&self, id: &str, worker_id: Option<&str>, outcome: RunOutcome) -> Result<Job, JobError> {
        let end = RunEnd { id: id.to_string(), worker_id: worker_id.map(str::to_string), outcome };
        self.finish_runs(vec![end]).await.pop().expect("one result per end").map(|e| *e.job)
    }

    /// Records the ends of runs in one durable write (with the dependency cascade), wakes
    /// workers and reports. One result per end, in order.
    pub(super) async fn finish_runs(&self, ends: Vec<RunEnd>) -> Vec<Result<Ended, JobError>> {
        let now = self.now();
        let finished = self.shared.broker.finish(ends, now).await;
        self.report_finished(finished, now).await
    }
}
