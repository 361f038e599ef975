//! Enqueue in the embedded broker: decide under the index lock which requests create jobs
//! (reserving their ids and unique keys), write the new jobs in one durable write, then
//! announce them and put them into the index.

use super::EmbeddedBroker;
use super::finish::End;
use super::index::Index;
use super::store::{self, Encoded};
use crate::jobs::broker::{Admitted, NewJob};
use crate::jobs::error::JobError;
use crate::jobs::lifecycle::Outcome;
use crate::jobs::model::{Enqueued, Job, JobStatus};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;

impl EmbeddedBroker {
    /// See [`crate::jobs::JobBroker::enqueue`].
    pub(super) async fn enqueue_jobs(
        &self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &(dyn Fn(&Job) + Send + Sync),
    ) -> Result<Admitted, JobError> {
        let stored = self.probe(&jobs)?;
        // Decide, under the lock, which requests create jobs and reserve their ids/keys.
        let mut answers: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        let mut fresh: Vec<Job> = Vec::new();
        {
            let mut idx = self.inner.index.lock();
            let batch_ids: HashSet<&str> = if jobs.iter().any(|n| !n.job.depends_on.is_empty()) {
                jobs.iter().map(|n| n.job.id.as_str()).collect()
            } else {
                HashSet::new()
            };
            for (i, n) in jobs.iter().enumerate() {
                for (k, d) in n.job.depends_on.iter().enumerate() {
                    if !idx.live.contains_key(d) && !stored.contains_key(d) && !batch_ids.contains(d.as_str()) {
                        return Err(JobError::invalid(format!("[{i}].depends_on[{k}]"), format!("no job with id '{d}'")));
                    }
                }
            }
            drop(batch_ids);
            for (i, NewJob { mut job, chosen_id }) in jobs.into_iter().enumerate() {
                if chosen_id {
                    let existing = match (idx.live.get(&job.id), stored.get(&job.id)) {
                        (Some(l), _) => Some(l.job.status),
                        (None, Some(s)) => Some(s.status),
                        (None, None) if idx.reserved.contains(&job.id) => Some(job.status),
                        _ => None,
                    };
                    if let Some(status) = existing {
                        answers[i] = Some(Enqueued { job_id: job.id, status, existing: true });
                        continue;
                    }
                }
                if let Some(key) = &job.unique_key {
                    let now_ms = now.timestamp_millis();
                    let held = idx.unique.get(key).and_then(|(holder, exp)| match exp {
                        Some(e) if *e > now_ms => Some(holder.clone()),
                        None => Some(holder.clone()),
                        _ => None,
                    });
                    if let Some(holder) = held {
                        let status = idx.live.get(&holder).map(|l| l.job.status).unwrap_or(JobStatus::Pending);
                        answers[i] = Some(Enqueued { job_id: holder, status, existing: true });
                        continue;
                    }
                    let exp = job.unique_for.map(|s| crate::jobs::limits::ms_plus_secs(now_ms, s));
                    idx.unique.insert(key.clone(), (job.id.clone(), exp));
                }
                idx.reserved.insert(job.id.clone());
                job.seq = self.inner.seq.fetch_add(1, Ordering::Relaxed);
                fresh.push(job);
            }
        }
        if !fresh.is_empty() {
            let encoded: Result<Vec<Encoded>, _> = fresh.iter().map(Encoded::of).collect();
            let written = match encoded {
                Ok(enc) => self.inner.store.write(move |txn| store::insert_new(txn, &enc).map_err(JobError::from)).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = written {
                release(&mut self.inner.index.lock(), &fresh);
                return Err(e);
            }
        }
        let mut fresh_iter = fresh.iter();
        let answers = answers
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    let j = fresh_iter.next().expect("a fresh job per unanswered request");
                    Enqueued { job_id: j.id.clone(), status: j.status, existing: false }
                })
            })
            .collect();
        let mut admitted = Admitted { answers, ..Default::default() };
        if !fresh.is_empty() {
            for job in &fresh {
                announce(job);
            }
            let doomed = self.admit(fresh, &stored, now, &mut admitted.ready);
            if !doomed.is_empty() {
                let ends = doomed.into_iter().map(|(id, reason)| End { id, outcome: Outcome::Cancel(reason), running: None }).collect();
                let f = self.finish_ends(ends, now).await;
                admitted.cancelled.extend(f.results.into_iter().filter_map(Result::ok).chain(f.cascaded));
                admitted.ready.extend(f.ready);
            }
        }
        Ok(admitted)
    }

    /// Point reads of caller-chosen ids and of dependencies that are not live (final jobs).
    fn probe(&self, jobs: &[NewJob]) -> Result<BTreeMap<String, Job>, JobError> {
        let mut probe: Vec<String> = Vec::new();
        {
            let idx = self.inner.index.lock();
            for n in jobs {
                if n.chosen_id && !idx.live.contains_key(&n.job.id) {
                    probe.push(n.job.id.clone());
                }
                probe.extend(n.job.depends_on.iter().filter(|d| !idx.live.contains_key(*d)).cloned());
            }
        }
        if probe.is_empty() {
            return Ok(BTreeMap::new());
        }
        let found = self.inner.store.read_now(|txn| -> Result<Vec<Job>, JobError> {
            let mut v = Vec::new();
            for id in &probe {
                if let Some(j) = store::get(txn, id)? {
                    v.push(j);
                }
            }
            Ok(v)
        })?;
        Ok(found.into_iter().map(|j| (j.id.clone(), j)).collect())
    }

    /// Puts freshly written jobs into the index. Returns the jobs to cancel at once because
    /// a dependency already ended dead or cancelled.
    fn admit(
        &self,
        fresh: Vec<Job>,
        stored: &BTreeMap<String, Job>,
        now: DateTime<Utc>,
        ready: &mut Vec<(String, String)>,
    ) -> Vec<(String, String)> {
        let mut doomed = Vec::new();
        // Ids of this batch, for dependencies inside it (rare: built only when needed).
        let fresh_ids: HashSet<String> =
            if fresh.iter().any(|j| !j.depends_on.is_empty()) { fresh.iter().map(|j| j.id.clone()).collect() } else { HashSet::new() };
        let mut idx = self.inner.index.lock();
        for job in fresh {
            idx.reserved.remove(&job.id);
            let mut blocked = HashSet::new();
            for d in &job.depends_on {
                // A dependency in the same batch may be admitted after this job.
                if idx.live.contains_key(d) || fresh_ids.contains(d) {
                    blocked.insert(d.clone());
                    continue;
                }
                // A dependency that is not live is final (or gone by retention: satisfied).
                let st = match stored.get(d) {
                    Some(j) if j.status.is_final() => Some(j.status),
                    _ => self.inner.store.read_now(|txn| store::get(txn, d)).ok().flatten().map(|j| j.status),
                };
                if let Some(s @ (JobStatus::Dead | JobStatus::Cancelled)) = st {
                    doomed.push((job.id.clone(), format!("dependency {d} ended {}", s.as_str())));
                }
            }
            ready.extend(idx.insert(job, blocked, now));
        }
        doomed
    }
}

/// Releases the reservations taken for `fresh` when their write failed.
fn release(idx: &mut Index, fresh: &[Job]) {
    for j in fresh {
        idx.reserved.remove(&j.id);
        if let Some(k) = &j.unique_key
            && idx.unique.get(k).is_some_and(|(h, _)| *h == j.id)
        {
            idx.unique.remove(k);
        }
    }
}
