//! Background upkeep: rebuilding the index at start, promoting delayed jobs, expiring
//! external leases, firing schedules, applying retention and refreshing depth gauges.
//!
//! The loop sleeps until the earliest due time (delayed job, lease end, schedule slot),
//! at most one second, and is woken early whenever an earlier deadline appears.

use super::JobQueue;
use super::error::JobError;
use super::finish::Outcome;
use super::metrics;
use super::model::{Job, JobStatus};
use super::store;
use crate::runtime::Background;
use chrono::{DateTime, Duration, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;

/// How often retention runs.
const RETENTION_EVERY: std::time::Duration = std::time::Duration::from_secs(60);
/// Rows deleted per retention write.
const RETENTION_CHUNK: usize = 1000;

impl JobQueue {
    /// Rebuilds the in-memory index from redb. Jobs that were running are ready again.
    pub(super) fn load(&self) -> Result<(), JobError> {
        let now = self.shared.clock.now();
        let (jobs, queues, schedules) = self
            .shared
            .store
            .read_now(|txn| -> Result<_, JobError> { Ok((store::all(txn)?, store::queues(txn)?, super::schedule::load(txn)?)) })?;
        let mut idx = self.shared.index.lock();
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
                let exp = job.unique_for.map(|s| job.created_at.timestamp_millis() + s as i64 * 1000);
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
                let c = idx.finals.entry(job.queue.clone()).or_default();
                match job.status {
                    JobStatus::Completed => c[0] += 1,
                    JobStatus::Dead => c[1] += 1,
                    _ => c[2] += 1,
                }
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
        self.shared.seq.store(max_seq + 1, Ordering::SeqCst);
        let mut all = self.shared.schedules.lock();
        for s in schedules {
            all.insert(s.name.clone(), s);
        }
        drop(all);
        *self.shared.startup_doomed.lock() = doomed;
        Ok(())
    }

    /// Deletes final jobs past retention; returns how many were deleted.
    pub(super) async fn apply_retention(&self) -> Result<usize, JobError> {
        let now = self.shared.clock.now();
        let r = &self.shared.config.retention;
        let done_cutoff = now - Duration::hours(r.completed_hours as i64);
        let dead_cutoff = now - Duration::days(r.dead_days as i64);
        let expired: Vec<Job> = self
            .shared
            .store
            .read(move |txn| -> Result<Vec<Job>, JobError> {
                let mut out = Vec::new();
                store::scan_newest(txn, None, usize::MAX, |j| {
                    let cutoff: Option<DateTime<Utc>> = match j.status {
                        JobStatus::Completed | JobStatus::Cancelled => Some(done_cutoff),
                        JobStatus::Dead => Some(dead_cutoff),
                        _ => None,
                    };
                    if let (Some(c), Some(f)) = (cutoff, j.finished_at)
                        && f <= c
                    {
                        out.push(j);
                    }
                    true
                })?;
                Ok(out)
            })
            .await?;
        let n = expired.len();
        {
            // Unique keys held for a fixed time are forgotten once that time has passed.
            let now_ms = now.timestamp_millis();
            self.shared.index.lock().unique.retain(|_, (_, exp)| exp.is_none_or(|e| e > now_ms));
        }
        for chunk in expired.chunks(RETENTION_CHUNK) {
            let keys: Vec<(String, u64)> = chunk.iter().map(|j| (j.id.clone(), j.seq)).collect();
            self.shared.store.write(move |txn| store::delete(txn, &keys).map_err(JobError::from)).await?;
            let mut idx = self.shared.index.lock();
            for j in chunk {
                let c = idx.finals.entry(j.queue.clone()).or_default();
                let slot = match j.status {
                    JobStatus::Completed => 0,
                    JobStatus::Dead => 1,
                    _ => 2,
                };
                c[slot] = c[slot].saturating_sub(1);
            }
        }
        Ok(n)
    }
}

/// One maintenance pass; returns the earliest next deadline.
pub(super) async fn tick(q: &JobQueue) {
    pass(q).await;
    if let Err(e) = q.apply_retention().await {
        tracing::warn!(error = %e, "job retention failed");
    }
    gauges(q);
}

/// Promotes due jobs, expires leases, fires schedules; returns the next deadline.
async fn pass(q: &JobQueue) -> Option<DateTime<Utc>> {
    let now = q.shared.clock.now();
    let (ready, expired) = {
        let mut idx = q.shared.index.lock();
        (idx.promote_due(now), idx.expired_leases(now))
    };
    q.shared.notify_ready(&ready);
    for id in expired {
        if let Err(e) = q.finish(&id, Outcome::Expired, None).await {
            tracing::debug!(job = %id, error = %e, "lease expiry skipped");
        }
    }
    let next_schedule = if q.shared.config.scheduler.enabled { q.fire_due_schedules().await } else { None };
    let next_job = q.shared.index.lock().next_deadline().and_then(DateTime::<Utc>::from_timestamp_millis);
    match (next_schedule, next_job) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

fn gauges(q: &JobQueue) {
    let counts = q.shared.index.lock().live_counts();
    for (queue, (by_status, _)) in counts {
        for s in [JobStatus::Pending, JobStatus::Scheduled, JobStatus::Running, JobStatus::Failed] {
            metrics::depth(&queue, s.as_str(), by_status.get(&s).copied().unwrap_or(0));
        }
    }
}

/// Starts the maintenance loop.
pub(super) fn start(q: &JobQueue, bg: &Background) {
    let q = q.clone();
    let shutdown = bg.shutdown.clone();
    bg.spawn(async move {
        let doomed = std::mem::take(&mut *q.shared.startup_doomed.lock());
        for (id, reason) in doomed {
            let _ = q.finish(&id, Outcome::Cancel(reason), None).await;
        }
        q.apply_config_schedules().await;
        let mut last_retention = tokio::time::Instant::now() - RETENTION_EVERY;
        loop {
            let next = pass(&q).await;
            if last_retention.elapsed() >= RETENTION_EVERY {
                last_retention = tokio::time::Instant::now();
                if let Err(e) = q.apply_retention().await {
                    tracing::warn!(error = %e, "job retention failed");
                }
            }
            gauges(&q);
            let now = q.shared.clock.now();
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
    });
}
