//! What an in-process handler gets besides its payload: identity, the cancellation
//! signal, progress reporting and heartbeats.

use super::JobQueue;
use tokio_util::sync::CancellationToken;

/// The running job's handle, passed to in-process handlers. Cheap to clone.
#[derive(Clone)]
pub struct JobContext {
    pub(crate) queue: JobQueue,
    pub(crate) id: String,
    pub(crate) attempt: u32,
    pub(crate) cancel: CancellationToken,
}

impl JobContext {
    /// The job's id.
    pub fn job_id(&self) -> &str {
        &self.id
    }

    /// The attempt number of this run (1-based).
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// True once the job was cancelled (by `DELETE /api/jobs/{id}` or shutdown). Handlers
    /// should stop soon; the run is forcibly dropped at the job's timeout anyway.
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Resolves when the job is cancelled (for `tokio::select!`).
    pub async fn cancelled(&self) {
        self.cancel.cancelled().await
    }

    /// Reports progress to the progress module under the job's id (created on the first
    /// call). `percent` is 0–100 within `stage`. Errors are logged, never fatal to the job.
    pub async fn progress(&self, percent: f64, stage: Option<&str>) {
        self.queue.report_progress(&self.id, percent, stage).await;
    }

    /// Marks the job alive. In-process runs are bounded by their timeout, which this
    /// never extends: it exists so handlers written for external workers read the same.
    pub async fn heartbeat(&self) {}
}
