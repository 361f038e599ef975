//! The worker side: claims (long-polled for external workers, one job at a time for
//! in-process pools), heartbeats and progress reports of running jobs.

use super::JobQueue;
use super::broker::{Claimed, Holder, JobBroker, Names, ProgressNote};
use super::error::JobError;
use super::model::{ClaimRequest, HeartbeatAck, Job};
use super::validate;

impl JobQueue {
    /// Claims ready jobs for an external worker (see [`ClaimRequest`]). With `wait_ms`,
    /// waits for an enqueue instead of answering empty. An external worker never gets
    /// hearth's own jobs: listing a reserved name is refused ([`super::reserved`]).
    pub async fn claim(&self, req: ClaimRequest) -> Result<Vec<Job>, JobError> {
        let (max, lease_ms, wait) = validate::claim(&req, self.shared.config.max_claim_wait_ms)?;
        for (i, n) in req.names.iter().flatten().enumerate() {
            super::reserved::refuse(&format!("names[{i}]"), n)?;
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait);
        loop {
            let notified = self.shared.external.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let handled = self.shared.handlers.read().names.clone();
            let names = match req.names.as_deref() {
                Some(list) => Names::Only(list),
                None => Names::Except(&handled),
            };
            let holder = Holder::Worker { id: &req.worker_id, lease_ms };
            let jobs = self.claim_with(&req.queues, names, holder, max).await?.jobs;
            if !jobs.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(jobs);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
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
