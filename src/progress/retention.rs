//! The retention sweeper: removes completed records after `retain_completed_hours` and
//! failed or cancelled ones after `retain_failed_hours`, measured on the tracker's clock.

use super::error::ProgressError;
use super::metrics as m;
use super::model::ProgressStatus;
use super::tracker::ProgressTracker;
use std::time::Duration;

/// Records removed per storage batch.
const SWEEP_BATCH: usize = 1000;

impl ProgressTracker {
    /// Removes every finished record past its retention period and returns how many were
    /// removed. The background sweeper calls this every `sweep_interval_seconds`.
    pub async fn sweep_expired(&self) -> Result<usize, ProgressError> {
        let cfg = self.config();
        let now = self.inner.clock.now();
        let mut total = 0;
        for (status, hours) in [
            (ProgressStatus::Completed, cfg.retain_completed_hours),
            (ProgressStatus::Failed, cfg.retain_failed_hours),
            (ProgressStatus::Cancelled, cfg.retain_failed_hours),
        ] {
            // A retention too long to represent keeps everything.
            let Some(cutoff) = chrono::Duration::try_hours(hours.min(i64::MAX as u64) as i64).and_then(|d| now.checked_sub_signed(d))
            else {
                continue;
            };
            loop {
                let removed = self.inner.storage.remove_finished(status, cutoff, SWEEP_BATCH).await?;
                total += removed.len();
                ::metrics::counter!(m::EXPIRED, "status" => status.as_str()).increment(removed.len() as u64);
                if removed.len() < SWEEP_BATCH {
                    break;
                }
            }
        }
        Ok(total)
    }

    /// The sweeper loop: sweeps at once, then every interval, until `shutdown` fires.
    pub(super) async fn sweep_loop(self, shutdown: tokio_util::sync::CancellationToken) {
        let mut tick = tokio::time::interval(Duration::from_secs(self.config().sweep_interval_seconds.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            if let Err(e) = self.sweep_expired().await {
                tracing::warn!(error = %e, "progress retention sweep failed");
            }
        }
    }
}
