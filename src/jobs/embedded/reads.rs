//! Reads and retention in the embedded broker: live jobs come from the index, final ones
//! from redb; listings scan redb newest first and overlay the live state.

use super::EmbeddedBroker;
use super::store;
use crate::jobs::broker::{ListFilter, QueueStats};
use crate::jobs::error::JobError;
use crate::jobs::model::{Job, JobList, JobStatus};
use chrono::{DateTime, Utc};

/// Rows a listing examines at most per request before returning a cursor to continue.
const MAX_SCAN: usize = 50_000;
/// Rows deleted per retention write.
const RETENTION_CHUNK: usize = 1000;

/// The slot of a final status in the per-queue final counts.
fn final_slot(status: JobStatus) -> usize {
    match status {
        JobStatus::Completed => 0,
        JobStatus::Dead => 1,
        _ => 2,
    }
}

impl EmbeddedBroker {
    /// See [`crate::jobs::JobBroker::get`].
    pub(super) async fn get_job(&self, id: &str) -> Result<Option<Job>, JobError> {
        if let Some(l) = self.inner.index.lock().live.get(id) {
            return Ok(Some(l.job.clone()));
        }
        let id = id.to_string();
        self.inner.store.read(move |txn| store::get(txn, &id).map_err(JobError::from)).await
    }

    /// Why a job that is not live cannot be ended: not found, or already final.
    pub(super) fn not_live(&self, id: &str) -> JobError {
        match self.inner.store.read_now(|txn| store::get(txn, id)) {
            Ok(Some(j)) => JobError::Conflict(format!("job {id} is {}, not running", j.status.as_str())),
            Ok(None) => JobError::job_not_found(id),
            Err(e) => e.into(),
        }
    }

    /// Jobs newest first; the cursor is the enqueue sequence of the last job returned, or
    /// of the last row examined when the scan budget ran out.
    pub(super) async fn list_jobs(&self, f: ListFilter) -> Result<JobList, JobError> {
        let cursor = match f.cursor.as_deref() {
            Some(c) => Some(c.parse::<u64>().map_err(|_| JobError::invalid("cursor", "not a cursor returned by this API"))?),
            None => None,
        };
        let inner = self.inner.clone();
        self.inner
            .store
            .read(move |txn| -> Result<JobList, JobError> {
                let mut jobs = Vec::new();
                let mut scanned = 0usize;
                let last = store::scan_newest(txn, cursor, MAX_SCAN, |mut job| {
                    scanned += 1;
                    if let Some(l) = inner.index.lock().live.get(&job.id) {
                        job = l.job.clone();
                    }
                    let keep = f.status.is_none_or(|s| s == job.status)
                        && f.queue.as_ref().is_none_or(|q| *q == job.queue)
                        && f.name.as_ref().is_none_or(|n| *n == job.name);
                    if keep {
                        jobs.push(job);
                    }
                    jobs.len() < f.limit
                })?;
                let next_cursor = if jobs.len() == f.limit || scanned >= MAX_SCAN { last.map(|s| s.to_string()) } else { None };
                Ok(JobList { jobs, next_cursor })
            })
            .await
    }

    /// Every known queue with counts per status, recent throughput and oldest wait.
    pub(super) fn stats(&self, now: DateTime<Utc>) -> Vec<QueueStats> {
        let mut idx = self.inner.index.lock();
        let mut live = idx.live_counts();
        let names: Vec<String> = idx.queues.iter().cloned().collect();
        names
            .into_iter()
            .map(|name| {
                let mut counts = [0u64; 7];
                let (by_status, oldest) = live.remove(&name).unwrap_or_default();
                for (i, s) in JobStatus::ALL.iter().enumerate() {
                    counts[i] = by_status.get(s).copied().unwrap_or(0);
                }
                let f = idx.finals.get(&name).copied().unwrap_or_default();
                for (s, n) in [(JobStatus::Completed, f[0]), (JobStatus::Dead, f[1]), (JobStatus::Cancelled, f[2])] {
                    counts[JobStatus::ALL.iter().position(|x| *x == s).expect("in ALL")] = n;
                }
                let completed_last_minute = idx.throughput.get_mut(&name).map(|r| r.sum(now.timestamp())).unwrap_or(0);
                QueueStats {
                    paused: idx.paused.contains(&name),
                    counts,
                    completed_last_minute,
                    oldest_ready_at: oldest.and_then(DateTime::<Utc>::from_timestamp_millis),
                    name,
                }
            })
            .collect()
    }

    /// See [`crate::jobs::JobBroker::delete_finished`].
    pub(super) async fn retention(
        &self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<usize, JobError> {
        let expired: Vec<Job> = self
            .inner
            .store
            .read(move |txn| -> Result<Vec<Job>, JobError> {
                let mut out = Vec::new();
                store::scan_newest(txn, None, usize::MAX, |j| {
                    let cutoff = match j.status {
                        JobStatus::Completed | JobStatus::Cancelled => Some(completed_before),
                        JobStatus::Dead => Some(dead_before),
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
        {
            // Unique keys held for a fixed time are forgotten once that time has passed.
            let now_ms = now.timestamp_millis();
            self.inner.index.lock().unique.retain(|_, (_, exp)| exp.is_none_or(|e| e > now_ms));
        }
        self.delete_final_rows(&expired).await?;
        Ok(expired.len())
    }

    /// See [`crate::jobs::JobBroker::delete_jobs`]. Candidates are reserved (as a retry
    /// reserves the job it revives) while they are deleted, so a job retried meanwhile is
    /// either skipped here or answered "being updated" there.
    pub(super) async fn purge(&self, queue: &str, status: JobStatus, limit: usize) -> Result<usize, JobError> {
        if !status.is_final() || limit == 0 {
            return Ok(0);
        }
        let q = queue.to_string();
        let found: Vec<Job> = self
            .inner
            .store
            .read(move |txn| -> Result<Vec<Job>, JobError> {
                let mut out = Vec::new();
                store::scan_newest(txn, None, usize::MAX, |j| {
                    if j.queue == q && j.status == status {
                        out.push(j);
                    }
                    out.len() < limit
                })?;
                Ok(out)
            })
            .await?;
        let taken: Vec<Job> = {
            let mut idx = self.inner.index.lock();
            found.into_iter().filter(|j| !idx.live.contains_key(&j.id) && idx.reserved.insert(j.id.clone())).collect()
        };
        let deleted = self.delete_final_rows(&taken).await;
        let mut idx = self.inner.index.lock();
        for j in &taken {
            idx.reserved.remove(&j.id);
        }
        deleted.map(|()| taken.len())
    }

    /// Deletes the rows of final jobs in chunks and takes them out of the final counts.
    async fn delete_final_rows(&self, jobs: &[Job]) -> Result<(), JobError> {
        for chunk in jobs.chunks(RETENTION_CHUNK) {
            let keys: Vec<(String, u64)> = chunk.iter().map(|j| (j.id.clone(), j.seq)).collect();
            self.inner.store.write(move |txn| store::delete(txn, &keys).map_err(JobError::from)).await?;
            let mut idx = self.inner.index.lock();
            for j in chunk {
                let c = idx.finals.entry(j.queue.clone()).or_default();
                let slot = final_slot(j.status);
                c[slot] = c[slot].saturating_sub(1);
            }
        }
        Ok(())
    }
}
