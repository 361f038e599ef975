//! The end of a run or of a job in the embedded broker — complete, fail, lease expiry,
//! cancellation — recorded durably, several at a time, in three phases:
//! 1. under the index lock, each end is checked and decided (the next state of the job,
//!    by [`next_state`]); the job leaves every claimable set and is marked busy;
//! 2. all decided states are written in ONE store write (one closure in the group-commit
//!    writer, however many jobs), durable before anything is acknowledged;
//! 3. under the lock again, each job is settled (removed when final, placed again when it
//!    will retry) — or rolled back when the write failed.
//!
//! Jobs that waited on a job that ended dead or cancelled are cancelled in turn, in the
//! background: the end only queues them, and each [`JobBroker::tick`] cancels up to
//! [`CASCADE_STEP`] of them — every level it can reach — in one more write. So ending the
//! head of a chain of thousands answers at once, and the chain follows within ticks.
//!
//! [`JobBroker::tick`]: crate::jobs::JobBroker::tick

use super::EmbeddedBroker;
use super::index::{Index, Slot};
use super::store::{self, Encoded};
use crate::jobs::broker::{Ended, Finished, Ready};
use crate::jobs::error::JobError;
use crate::jobs::lifecycle::{Outcome, check_holder, next_state};
use crate::jobs::model::{Job, JobStatus};
use chrono::{DateTime, Utc};
use std::collections::{HashSet, VecDeque};

/// One end to record.
pub(super) struct End {
    /// The job.
    pub id: String,
    /// How it ends.
    pub outcome: Outcome,
    /// `Some` when the run's holder ends it (the job must be running), holding the worker
    /// id that must match the lease when given; `None` to cancel a waiting job or to expire
    /// a lease (decided by the outcome).
    pub running: Option<Option<String>>,
}

/// An end decided under the lock, waiting for its durable write. The job's live record
/// keeps its state from before the end until the write is settled, so a failed write
/// has nothing to restore. `next` is boxed: batches move these around by the thousand.
struct Decided {
    /// Position in the caller's list.
    at: usize,
    next: Box<Job>,
    failed_run: bool,
    was_slot: Slot,
}

/// Jobs to cancel because a dependency ended badly: (job id, reason).
type Cascade = Vec<(String, String)>;

/// Most dependants one cascade step cancels (in one durable write).
pub(crate) const CASCADE_STEP: usize = 4096;

impl EmbeddedBroker {
    /// Ends runs or jobs durably in one write, then releases their dependants; those to
    /// cancel (a job ended dead or cancelled) are queued for the cascade steps of the
    /// following ticks. One result per end, in order.
    pub(super) async fn finish_ends(&self, ends: Vec<End>, now: DateTime<Utc>) -> Finished {
        let (results, cascade, ready) = self.finish_batch(ends, now).await;
        let cascading = !cascade.is_empty();
        self.inner.cascade.lock().extend(cascade);
        Finished { results, cascaded: Vec::new(), ready, cascading }
    }

    /// Cancels up to [`CASCADE_STEP`] queued dependants and, transitively, the jobs that
    /// wait on them, in one write. Returns the jobs it ended, the jobs it made ready, and
    /// whether more are queued.
    pub(super) async fn cascade_step(&self, now: DateTime<Utc>) -> (Vec<Ended>, Vec<Ready>, bool) {
        let mut queue: VecDeque<(String, String)> = std::mem::take(&mut *self.inner.cascade.lock()).into();
        if queue.is_empty() {
            return (Vec::new(), Vec::new(), false);
        }
        let mut ends = Vec::new();
        {
            let idx = self.inner.index.lock();
            let mut seen = HashSet::new();
            while ends.len() < CASCADE_STEP
                && let Some((id, reason)) = queue.pop_front()
            {
                if !seen.insert(id.clone()) {
                    continue;
                }
                for w in idx.waiters_of(&id) {
                    queue.push_back((w.clone(), format!("dependency {id} ended cancelled")));
                }
                ends.push(End { id, outcome: Outcome::Cancel(reason), running: None });
            }
        }
        let (results, cascade, ready) = self.finish_batch(ends, now).await;
        let mut pending = self.inner.cascade.lock();
        pending.extend(queue);
        pending.extend(cascade);
        let ended = results
            .into_iter()
            .filter_map(|r| r.map_err(|e| tracing::debug!(error = %e, "cascade: dependant not cancelled")).ok())
            .collect();
        (ended, ready, !pending.is_empty())
    }

    /// The three phases for one batch, without following the cascade it returns.
    async fn finish_batch(&self, ends: Vec<End>, now: DateTime<Utc>) -> (Vec<Result<Ended, JobError>>, Cascade, Vec<Ready>) {
        let mut results: Vec<Option<Result<Ended, JobError>>> = (0..ends.len()).map(|_| None).collect();
        let mut decided = Vec::with_capacity(ends.len());
        let mut not_live = Vec::new();
        {
            let mut idx = self.inner.index.lock();
            for (at, end) in ends.into_iter().enumerate() {
                match decide(&mut idx, &end, now) {
                    Ok((next, was_slot)) => decided.push(Decided { at, next, failed_run: end.outcome.is_failed_run(), was_slot }),
                    Err(Some(e)) => results[at] = Some(Err(e)),
                    Err(None) => not_live.push((at, end.id)),
                }
            }
        }
        for (at, id) in not_live {
            results[at] = Some(Err(self.not_live(&id)));
        }
        let mut cascade = Vec::new();
        let mut ready = Vec::new();
        if !decided.is_empty() {
            let written = self.write_states(&decided).await;
            {
                let mut idx = self.inner.index.lock();
                for d in &decided {
                    settle(&mut idx, d, written.is_ok(), now, &mut ready, &mut cascade);
                }
            }
            match written {
                Err(e) => {
                    for d in decided {
                        results[d.at] = Some(Err(e.clone()));
                    }
                }
                Ok(()) => {
                    for d in decided {
                        let was_running = d.was_slot == Slot::Running;
                        results[d.at] = Some(Ok(Ended { job: d.next, was_running, failed_run: d.failed_run }));
                    }
                }
            }
        }
        (results.into_iter().map(|r| r.expect("every end answered")).collect(), cascade, ready)
    }

    /// Writes the decided states in one durable store write.
    async fn write_states(&self, decided: &[Decided]) -> Result<(), JobError> {
        let encoded: Vec<Encoded> = decided.iter().map(|d| Encoded::of(&d.next)).collect::<Result<_, _>>()?;
        self.inner.store.write(move |txn| store::update(txn, &encoded).map_err(JobError::from)).await
    }
}

/// Phase 1 for one end: checks it against the job's live state and decides the next
/// state; the job is detached and marked busy. `Err(None)`: the job is not live (the
/// caller looks it up outside the lock to say why).
fn decide(idx: &mut Index, end: &End, now: DateTime<Utc>) -> Result<(Box<Job>, Slot), Option<JobError>> {
    let id = end.id.as_str();
    let Some(l) = idx.live.get(id) else { return Err(None) };
    if l.busy {
        return Err(Some(JobError::Conflict(format!("job {id} is being updated; try again"))));
    }
    let is_running = l.slot == Slot::Running;
    match (&end.outcome, is_running) {
        (Outcome::Complete(_) | Outcome::Fail { .. } | Outcome::Expired, false) => {
            return Err(Some(JobError::Conflict(format!("job {id} is {}, not running", l.job.status.as_str()))));
        }
        (Outcome::Cancel(_), true) if end.running.is_none() => {
            return Err(Some(JobError::Conflict(format!("job {id} is running; it was signalled to cancel"))));
        }
        _ => {}
    }
    if let Some(Some(w)) = &end.running {
        check_holder(id, l.job.worker_id.as_deref(), Some(w)).map_err(Some)?;
    }
    let next = Box::new(next_state(&l.job, &end.outcome, l.cancel_requested, now));
    let was_slot = l.slot;
    idx.detach(id);
    if let Some(l) = idx.live.get_mut(id) {
        l.busy = true;
    }
    Ok((next, was_slot))
}

/// Phase 3 for one decided end: applies it to the index after a durable write (`ok`), or
/// rolls it back when the write failed. Jobs that became ready go to `ready`; dependants
/// to cancel go to `cascade`.
fn settle(idx: &mut Index, d: &Decided, ok: bool, now: DateTime<Utc>, ready: &mut Vec<Ready>, cascade: &mut Cascade) {
    let id = d.next.id.as_str();
    if !ok {
        if let Some(l) = idx.live.get_mut(id) {
            l.busy = false;
            // An external run keeps its lease (the worker may report again); an in-process
            // run has nobody left to report, so its job is ready again.
            if d.was_slot == Slot::Running && !l.local {
                l.slot = Slot::Running;
                if let Some(u) = l.job.lease_until {
                    idx.extend_lease(id, u);
                }
            } else {
                // A cancelled waiting job that could not be written is put back as
                // ready-when-due; its dependencies are re-checked at restart.
                if l.job.status == JobStatus::Running {
                    l.job.status = JobStatus::Pending;
                }
                ready.extend(idx.place(id, now));
            }
        }
        return;
    }
    if d.next.status.is_final() {
        for w in idx.remove_final(id, d.next.status, now.timestamp()) {
            if d.next.status == JobStatus::Completed {
                if idx.dependency_done(&w, id) {
                    ready.extend(idx.place(&w, now));
                }
            } else {
                cascade.push((w, format!("dependency {id} ended {}", d.next.status.as_str())));
            }
        }
    } else {
        if let Some(l) = idx.live.get_mut(id) {
            l.job = (*d.next).clone();
        }
        ready.extend(idx.place(id, now));
    }
}
