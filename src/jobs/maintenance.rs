//! Background upkeep: the broker's tick (promoting delayed jobs, expiring leases),
//! firing schedules, applying retention and refreshing depth gauges.
//!
//! The loop sleeps until the earliest due time (delayed job, lease end, schedule slot),
//! at most one second, and is woken early whenever an earlier deadline appears.

use super::JobQueue;
use super::broker::JobBroker;
use super::error::JobError;
use super::limits;
use super::metrics;
use super::model::JobStatus;
use crate::runtime::Background;
use chrono::{DateTime, Utc};

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl JobQueue {
    /// Deletes final jobs past retention; returns how many were deleted.
    pub(super) async fn apply_retention(&self) -> Result<usize, JobError> {
        let now = self.now();
        let r = &self.shared.config.retention;
        let completed_before = limits::before_secs(now, r.completed_hours.saturating_mul(3600));
        let dead_before = limits::before_secs(now, r.dead_days.saturating_mul(86_400));
        self.shared.broker.delete_finished(completed_before, dead_before, now).await
    }
}

/// One maintenance pass.
pub(super) async fn tick(q: &JobQueue) {
    pass(q).await;
    if let Err(e) = q.apply_retention().await {
        tracing::warn!(error = %e, "job retention failed");
    }
    gauges(q).await;
}

/// Runs the broker's tick, reports what it changed, fires schedules; returns the next
/// deadline.
async fn pass(q: &JobQueue) -> Option<DateTime<Utc>> {
    let now = q.now();
    q.drop_stale_signals(limits::before_secs(now, 60));
    let next_job = match q.shared.broker.tick(now).await {
        Ok(t) => {
            q.shared.notify_ready(&t.ready);
            q.report_ended(t.ended.iter(), now).await;
            t.next_due
        }
        Err(e) => {
            tracing::warn!(error = %e, "job broker tick failed");
            None
        }
    };
    let next_schedule = if q.shared.config.scheduler.enabled {
        q.fire_due_schedules().await.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "schedules not fired");
            None
        })
    } else {
        None
    };
    match (next_schedule, next_job) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

async fn gauges(q: &JobQueue) {
    let Ok(stats) = q.shared.broker.queue_stats(q.now()).await else { return };
    for s in stats {
        for st in [JobStatus::Pending, JobStatus::Scheduled, JobStatus::Running, JobStatus::Failed] {
            metrics::depth(&s.name, st.as_str(), s.count(st));
        }
    }
}

/// Starts the maintenance loop, supervised (restarted after a panic). The schedules of
/// the configuration are applied once, before its first pass.
pub(super) fn start(q: &JobQueue, bg: &Background) {
    let (q, shutdown) = (q.clone(), bg.shutdown.clone());
    let applied = std::sync::Arc::new(tokio::sync::OnceCell::new());
    bg.supervise("jobs.maintenance", move || run(q.clone(), shutdown.clone(), applied.clone()));
}

/// The maintenance loop, until shutdown.
async fn run(q: JobQueue, shutdown: tokio_util::sync::CancellationToken, applied: std::sync::Arc<tokio::sync::OnceCell<()>>) {
    applied.get_or_init(|| q.apply_config_schedules()).await;
    let mut last_retention: Option<tokio::time::Instant> = None;
    loop {
        let next = pass(&q).await;
        if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
            last_retention = Some(tokio::time::Instant::now());
            if let Err(e) = q.apply_retention().await {
                tracing::warn!(error = %e, "job retention failed");
            }
        }
        gauges(&q).await;
        let now = q.now();
        let wait = next
            .map(|t| (t - now).to_std().unwrap_or(std::time::Duration::ZERO))
            .unwrap_or(std::time::Duration::from_secs(1))
            .min(std::time::Duration::from_secs(1));
        let wake = q.shared.wake.notified();
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake => {}
            _ = shutdown.cancelled() => break,
        }
    }
}
