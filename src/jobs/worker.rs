//! The worker side: claims (long-polled for external workers, one job at a time for
//! in-process pools), heartbeats and progress reports of running jobs.

use super::JobQueue;
use super::broker::{Claimed, Holder, JobBroker, Names, ProgressNote};
use super::error::JobError;
use super::model::{ClaimRequest, HeartbeatAck, Job};
use super::validate::{self, MAX_CLAIM};

/// A worker's standing claim: the queues, names, holder id and lease length of a
/// [`ClaimRequest`], checked once. The long-poll claim builds one per request; a streaming
/// worker (`/ws/worker`) keeps one for its connection and claims with
/// [`JobQueue::claim_ready`] whenever [`JobQueue::ready_signal`] wakes it.
#[derive(Debug, Clone)]
pub struct StandingClaim {
    queues: Vec<String>,
    names: Option<Vec<String>>,
    worker_id: String,
    lease_ms: i64,
}

impl StandingClaim {
    /// The worker id the jobs are leased to.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The lease length, seconds.
    pub fn lease_seconds(&self) -> u64 {
        (self.lease_ms / 1000) as u64
    }
}

impl JobQueue {
    /// Claims ready jobs for an external worker (see [`ClaimRequest`]). With `wait_ms`,
    /// waits for an enqueue instead of answering empty. An external worker never gets
    /// hearth's own jobs: listing a reserved name is refused ([`super::reserved`]).
    pub async fn claim(&self, req: ClaimRequest) -> Result<Vec<Job>, JobError> {
        let (standing, max, wait) = self.check_claim(req)?;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait);
        loop {
            let notified = self.shared.external.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let jobs = self.claim_ready(&standing, max).await?;
            if !jobs.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(jobs);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// Checks a claim request (every field, `max` and `wait_ms` included) into a
    /// [`StandingClaim`]. Errors name the field.
    pub fn standing_claim(&self, req: ClaimRequest) -> Result<StandingClaim, JobError> {
        Ok(self.check_claim(req)?.0)
    }

    /// Checks a claim request into its standing claim, its `max` and its `wait_ms` (with
    /// their defaults).
    fn check_claim(&self, req: ClaimRequest) -> Result<(StandingClaim, usize, u64), JobError> {
        let (max, lease_ms, wait) = validate::claim(&req, self.shared.config.max_claim_wait_ms)?;
        for (i, n) in req.names.iter().flatten().enumerate() {
            super::reserved::refuse(&format!("names[{i}]"), n)?;
        }
        Ok((StandingClaim { queues: req.queues, names: req.names, worker_id: req.worker_id, lease_ms }, max, wait))
    }

    /// What wakes external claims: notified (to every waiter) whenever a job may have
    /// become ready for external workers — enqueued, retried, promoted, released by a
    /// dependency or an expired lease, made ready on another node. Enable a `Notified`
    /// before claiming, so that nothing that becomes ready meanwhile is missed.
    pub fn ready_signal(&self) -> &tokio::sync::Notify {
        &self.shared.external
    }

    /// Claims up to `max` (at most [`MAX_CLAIM`]) ready jobs for `standing` now, without
    /// waiting: most urgent first, leased to its worker for its lease length.
    pub async fn claim_ready(&self, standing: &StandingClaim, max: usize) -> Result<Vec<Job>, JobError> {
        let handled = self.shared.handlers.read().names.clone();
        let names = match standing.names.as_deref() {
            Some(list) => Names::Only(list),
            None => Names::Except(&handled),
        };
        let holder = Holder::Worker { id: &standing.worker_id, lease_ms: standing.lease_ms };
        Ok(self.claim_with(&standing.queues, names, holder, max.min(MAX_CLAIM)).await?.jobs)
    }

    /// Gives back running jobs that `worker_id` holds but will not finish (its connection
    /// closed): their leases end now, and the maintenance loop, woken at once, expires
    /// them as it expires any lost worker's lease — ready again with the attempt counted,
    /// or dead when none is left. A job the worker no longer holds is left alone. Returns
    /// how many leases ended.
    pub async fn release(&self, worker_id: &str, ids: &[String]) -> usize {
        let now = self.now();
        let mut released = 0;
        for id in ids {
            match self.shared.broker.heartbeat(id, Some(worker_id), Some(0), now).await {
                Ok(_) => released += 1,
                Err(e) => tracing::debug!(job = %id, error = %e, "lease not released"),
            }
        }
        if released > 0 {
            self.shared.wake.notify_one();
        }
        released
    }

    /// Claims through the broker, wakes others for delayed jobs it promoted, and reports
    /// the starts.
    pub(super) async fn claim_with(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
    ) -> Result<Claimed, JobError> {
        let now = self.now();
        let claimed = self.shared.broker.claim(queues, names, holder, max, now).await?;
        self.shared.notify_ready(&claimed.ready);
        self.report_started(&claimed.jobs, now);
        Ok(claimed)
    }

    /// Extends an external worker's lease (and reports progress when given).
    pub async fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_seconds: Option<u64>,
        progress: Option<(f64, Option<&str>)>,
    ) -> Result<HeartbeatAck, JobError> {
        if let Some(s) = lease_seconds {
            validate::check_lease(s)?;
        }
        if let Some((p, _)) = progress
            && !(0.0..=100.0).contains(&p)
        {
            return Err(JobError::invalid("progress", "must be from 0 to 100"));
        }
        let lease_ms = lease_seconds.map(|s| s as i64 * 1000);
        let ack = self.shared.broker.heartbeat(id, worker_id, lease_ms, self.now()).await?;
        if let Some((p, stage)) = progress {
            self.report_progress(id, p, stage).await;
        }
        Ok(ack)
    }

    /// Reports a running job's progress to the progress module, creating the job's
    /// progress record (id = job id) on the first report.
    pub(crate) async fn report_progress(&self, id: &str, percent: f64, stage: Option<&str>) {
        let first = match self.shared.broker.note_progress(id).await {
            Ok(ProgressNote::First { name, queue }) => Some((name, queue)),
            Ok(ProgressNote::Again) => None,
            Ok(ProgressNote::NotLive) => return,
            Err(e) => {
                tracing::debug!(job = %id, error = %e, "job progress not noted");
                return;
            }
        };
        let p = &self.shared.progress;
        if let Some((name, queue)) = first {
            let req = crate::progress::NewProgress {
                id: Some(id.to_string()),
                stages: Vec::new(),
                metadata: serde_json::json!({"job_id": id, "job_name": name, "queue": queue}),
            };
            if let Err(e) = p.create(req).await {
                tracing::debug!(job = %id, error = %e, "job progress not created");
            }
        }
        let mut r = p.update(id, percent, stage).await;
        if stage.is_some() && matches!(&r, Err(crate::progress::ProgressError::Invalid { field, .. }) if field == "stage") {
            // The job's progress has no declared stages: keep the percent, drop the stage.
            r = p.update(id, percent, None).await;
        }
        if let Err(e) = r {
            tracing::debug!(job = %id, error = %e, "job progress not updated");
        }
    }
}
