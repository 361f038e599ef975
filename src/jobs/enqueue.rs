//! Enqueue: requests are validated and built into job records here, stored by the
//! broker in one durable write per call, then announced and handed to whoever can run them.

use super::JobQueue;
use super::broker::{JobBroker, NewJob};
use super::error::JobError;
use super::model::{EnqueueRequest, Enqueued, JobStatus};
use super::validate::{self, MAX_BATCH};

impl JobQueue {
    /// Enqueues one job; durable when this returns. An existing caller-chosen `id` or a
    /// held `unique_key` returns the existing job with `existing: true`.
    pub async fn enqueue(&self, req: EnqueueRequest) -> Result<Enqueued, JobError> {
        let mut out = self.enqueue_many(vec![req], false).await?;
        Ok(out.pop().expect("one result per request"))
    }

    /// Enqueues several jobs in one durable write (all or none). Validation errors name
    /// the field with the request's index (`[3].priority`).
    pub async fn enqueue_batch(&self, reqs: Vec<EnqueueRequest>) -> Result<Vec<Enqueued>, JobError> {
        if reqs.len() > MAX_BATCH {
            return Err(JobError::invalid("jobs", format!("at most {MAX_BATCH} jobs per batch")));
        }
        self.enqueue_many(reqs, true).await
    }

    async fn enqueue_many(&self, reqs: Vec<EnqueueRequest>, indexed: bool) -> Result<Vec<Enqueued>, JobError> {
        let now = self.now();
        let mut jobs = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.into_iter().enumerate() {
            let chosen_id = r.id.is_some();
            let job = validate::build(&self.shared.config, r, now).map_err(|e| match e {
                JobError::Invalid { field, message } if indexed => JobError::Invalid { field: format!("[{i}].{field}"), message },
                e => e,
            })?;
            jobs.push(NewJob { job, chosen_id });
        }
        // A cycle needs chosen ids, so it can only be inside one batch.
        let built: Vec<&super::Job> = jobs.iter().map(|n| &n.job).collect();
        validate::no_cycles(&built)?;
        let hooks = self.shared.hooks.read().clone();
        let announce = |job: &super::Job| self.announce(job, &hooks);
        let admitted = self.shared.broker.enqueue(jobs, now, &announce).await.map_err(|e| match e {
            // The broker names a request's field `[i].field`; a single enqueue names it bare.
            JobError::Invalid { field, message } if !indexed => {
                JobError::Invalid { field: field.strip_prefix("[0].").map(str::to_string).unwrap_or(field), message }
            }
            e => e,
        })?;
        self.shared.notify_ready(&admitted.ready);
        // A delayed job, or a job cancelled at once whose dependants are left to the ticks.
        if !admitted.cancelled.is_empty() || admitted.answers.iter().any(|a| !a.existing && a.status == JobStatus::Scheduled) {
            self.shared.wake.notify_one();
        }
        if !admitted.cancelled.is_empty() {
            self.report_ended(admitted.cancelled.iter(), now).await;
        }
        Ok(admitted.answers)
    }
}
