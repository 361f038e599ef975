//! The embedded broker's operations on one job or queue besides enqueue and finish:
//! heartbeats, cancel, retry, pause, progress notes, the maintenance tick, and schedule
//! storage.

use super::EmbeddedBroker;
use super::finish::End;
use super::index::Slot;
use super::store::{self, Encoded, QueueMeta};
use crate::jobs::broker::{Cancelled, ProgressNote, Ready, Tick};
use crate::jobs::error::JobError;
use crate::jobs::lifecycle::{Outcome, check_holder};
use crate::jobs::model::{HeartbeatAck, Job, JobStatus, Schedule};
use crate::store::codec;
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// Lease length when a heartbeat names none and the current one is unknown, ms.
const FALLBACK_LEASE_MS: i64 = 60_000;

impl EmbeddedBroker {
    /// See [`crate::jobs::JobBroker::heartbeat`].
    pub(super) fn beat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<HeartbeatAck, JobError> {
        let mut idx = self.inner.index.lock();
        let Some(l) = idx.live.get(id) else { return Err(self.not_live(id)) };
        if l.slot != Slot::Running {
            return Err(JobError::Conflict(format!("job {id} is {}, not running", l.job.status.as_str())));
        }
        check_holder(id, l.job.worker_id.as_deref(), worker_id)?;
        let cancel_requested = l.cancel_requested;
        let lease_ms = lease_ms.unwrap_or_else(|| {
            let started = l.job.started_at.unwrap_or(now);
            l.job.lease_until.map(|u| (u - started).num_milliseconds()).unwrap_or(FALLBACK_LEASE_MS)
        });
        if !l.local {
            idx.extend_lease(id, crate::jobs::limits::after_ms(now, lease_ms.max(0) as u64));
        }
        let l = idx.live.get_mut(id).expect("checked above");
        // An in-process run has no lease to extend: its timeout bounds it.
        if !l.local {
            l.job.started_at = Some(now);
        }
        Ok(HeartbeatAck { job_id: id.to_string(), lease_until: l.job.lease_until, cancel_requested })
    }

    /// See [`crate::jobs::JobBroker::cancel`].
    pub(super) async fn cancel_job(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<Cancelled, JobError> {
        {
            let mut idx = self.inner.index.lock();
            if let Some(l) = idx.live.get_mut(id)
                && l.slot == Slot::Running
            {
                l.cancel_requested = true;
                return Ok(Cancelled::Requested(l.job.clone()));
            }
        }
        let end = End { id: id.to_string(), outcome: Outcome::Cancel(reason.to_string()), running: None };
        let mut f = self.finish_ends(vec![end], now).await;
        match f.results.pop().expect("one result per end") {
            Ok(e) => {
                f.results.push(Ok(e));
                Ok(Cancelled::Ended(f))
            }
            Err(e) => Err(e),
        }
    }

    /// See [`crate::jobs::JobBroker::retry`].
    pub(super) async fn retry_job(&self, id: &str, now: DateTime<Utc>) -> Result<(Job, Option<Ready>), JobError> {
        let (job, revive, was) = {
            let mut idx = self.inner.index.lock();
            match idx.live.get(id) {
                Some(l) if l.busy => return Err(JobError::Conflict(format!("job {id} is being updated; try again"))),
                Some(l) if l.job.status == JobStatus::Failed => {
                    let mut job = l.job.clone();
                    job.run_at = now;
                    idx.detach(id);
                    if let Some(l) = idx.live.get_mut(id) {
                        l.busy = true;
                    }
                    (job, false, None)
                }
                Some(l) => {
                    return Err(JobError::Conflict(format!(
                        "job {id} is {}, only failed or dead jobs can be retried",
                        l.job.status.as_str()
                    )));
                }
                None => {
                    if !idx.reserved.insert(id.to_string()) {
                        return Err(JobError::Conflict(format!("job {id} is being updated; try again")));
                    }
                    drop(idx);
                    let found = self.inner.store.read_now(|txn| store::get(txn, id));
                    let mut job = match found {
                        Ok(Some(j)) if matches!(j.status, JobStatus::Dead | JobStatus::Cancelled) => j,
                        other => {
                            self.inner.index.lock().reserved.remove(id);
                            return match other {
                                Ok(Some(j)) => Err(JobError::Conflict(format!(
                                    "job {id} is {}, only failed or dead jobs can be retried",
                                    j.status.as_str()
                                ))),
                                Ok(None) => Err(JobError::job_not_found(id)),
                                Err(e) => Err(e.into()),
                            };
                        }
                    };
                    let was = Some(job.status);
                    job.status = JobStatus::Pending;
                    job.attempts = 0;
                    job.run_at = now;
                    job.finished_at = None;
                    job.reason = None;
                    job.result = None;
                    job.lease_until = None;
                    (job, true, was)
                }
            }
        };
        let written = match Encoded::of(&job) {
            Ok(enc) => self.inner.store.write(move |txn| store::update(txn, std::slice::from_ref(&enc)).map_err(JobError::from)).await,
            Err(e) => Err(e.into()),
        };
        let mut idx = self.inner.index.lock();
        let ready = if revive {
            idx.reserved.remove(id);
            if written.is_ok() {
                // It leaves the final count it was in (dead or cancelled).
                let q = idx.finals.entry(job.queue.clone()).or_default();
                let slot = if was == Some(JobStatus::Dead) { 1 } else { 2 };
                q[slot] = q[slot].saturating_sub(1);
                idx.insert(job, HashSet::new(), now)
            } else {
                None
            }
        } else {
            if written.is_ok()
                && let Some(l) = idx.live.get_mut(id)
            {
                l.job.run_at = now;
            }
            idx.place(id, now)
        };
        written?;
        let job = idx.live.get(id).map(|l| l.job.clone()).ok_or_else(|| JobError::job_not_found(id))?;
        Ok((job, ready))
    }

    /// See [`crate::jobs::JobBroker::set_paused`].
    pub(super) async fn pause(&self, queue: &str, paused: bool) -> Result<(), JobError> {
        let meta = codec::encode(&QueueMeta { paused })?;
        let name = queue.to_string();
        self.inner.store.write(move |txn| store::put_queue(txn, &name, &meta).map_err(JobError::from)).await?;
        let mut idx = self.inner.index.lock();
        idx.queues.insert(queue.to_string());
        if paused {
            idx.paused.insert(queue.to_string());
        } else {
            idx.paused.remove(queue);
        }
        Ok(())
    }

    /// See [`crate::jobs::JobBroker::note_progress`]. The `progress_id` is kept in memory
    /// and written with the job's next durable change.
    pub(super) fn progress_note(&self, id: &str) -> ProgressNote {
        match self.inner.index.lock().live.get_mut(id) {
            Some(l) if l.job.progress_id.is_none() => {
                l.job.progress_id = Some(id.to_string());
                ProgressNote::First { name: l.job.name.clone(), queue: l.job.queue.clone() }
            }
            Some(_) => ProgressNote::Again,
            None => ProgressNote::NotLive,
        }
    }

    /// See [`crate::jobs::JobBroker::tick`].
    pub(super) async fn maintain(&self, now: DateTime<Utc>) -> Tick {
        let (mut ready, expired) = {
            let mut idx = self.inner.index.lock();
            (idx.promote_due(now), idx.expired_leases(now))
        };
        let mut ended = Vec::new();
        let ends: Vec<End> = expired.into_iter().map(|id| End { id, outcome: Outcome::Expired, running: None }).collect();
        if !ends.is_empty() {
            let f = self.finish_ends(ends, now).await;
            for r in f.results {
                match r {
                    Ok(e) => ended.push(e),
                    Err(e) => tracing::debug!(error = %e, "lease expiry skipped"),
                }
            }
            ready.extend(f.ready);
        }
        let (cancelled, released, more) = self.cascade_step(now).await;
        ended.extend(cancelled);
        ready.extend(released);
        let next_due = match more {
            true => Some(now),
            false => self.inner.index.lock().next_deadline().and_then(DateTime::<Utc>::from_timestamp_millis),
        };
        Tick { ready, ended, next_due }
    }

    /// Writes one schedule and mirrors it in memory (under the schedule-write lock).
    async fn store_schedule(&self, s: Schedule) -> Result<(), JobError> {
        let bytes = codec::encode(&s)?;
        let name = s.name.clone();
        self.inner.store.write(move |txn| store::put_schedule(txn, &name, &bytes).map_err(JobError::from)).await?;
        self.inner.schedules.lock().insert(s.name.clone(), s);
        Ok(())
    }

    /// See [`crate::jobs::JobBroker::put_schedule`].
    pub(super) async fn put_sched(&self, s: Schedule) -> Result<(), JobError> {
        let _serial = self.inner.schedule_writes.lock().await;
        self.store_schedule(s).await
    }

    /// See [`crate::jobs::JobBroker::delete_schedule`].
    pub(super) async fn delete_sched(&self, name: &str) -> Result<bool, JobError> {
        let _serial = self.inner.schedule_writes.lock().await;
        if !self.inner.schedules.lock().contains_key(name) {
            return Ok(false);
        }
        let n = name.to_string();
        self.inner.store.write(move |txn| store::delete_schedule(txn, &n).map_err(JobError::from)).await?;
        self.inner.schedules.lock().remove(name);
        Ok(true)
    }

    /// See [`crate::jobs::JobBroker::record_fired`].
    pub(super) async fn fired(&self, next: Schedule, slot: DateTime<Utc>) -> Result<bool, JobError> {
        let _serial = self.inner.schedule_writes.lock().await;
        let current = self.inner.schedules.lock().get(&next.name).is_some_and(|cur| cur.next_run == Some(slot) && cur.cron == next.cron);
        if !current {
            return Ok(false);
        }
        self.store_schedule(next).await.map(|()| true)
    }
}
