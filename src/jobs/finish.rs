//! The end of a run or of a job — complete, fail, lease expiry, cancellation — recorded
//! durably, several at a time.
//!
//! Every end goes through [`JobQueue::finish_many`] in three phases:
//! 1. under the index lock, each end is checked and decided (the next state of the job);
//!    the job leaves every claimable set and is marked busy;
//! 2. all decided states are written in ONE store write (one closure in the group-commit
//!    writer, however many jobs), durable before anything is acknowledged;
//! 3. under the lock again, each job is settled (removed when final, placed again when it
//!    will retry) — or rolled back when the write failed — then workers are woken and
//!    metrics, events, hooks and progress are reported.
//!
//! Jobs that waited on a job that ended dead or cancelled are cancelled in turn, one
//! batch per level of the dependency graph.

use super::JobQueue;
use super::error::JobError;
use super::index::{Index, Slot};
use super::metrics::{self, Step};
use super::model::{Job, JobAttemptError, JobStatus};
use super::ops::MAX_CLAIM;
use super::store::{self, Encoded};
use chrono::{DateTime, Duration, Utc};

/// How a run (or a job) ends.
#[derive(Debug, Clone)]
pub(crate) enum Outcome {
    Complete(Option<serde_json::Value>),
    Fail {
        error: String,
        retry: bool,
    },
    /// An external lease ran out.
    Expired,
    Cancel(String),
}

/// One end to record.
pub(crate) struct End {
    /// The job.
    pub id: String,
    /// How it ends.
    pub outcome: Outcome,
    /// `Some` when the caller ends a run (the job must be running), holding the worker id
    /// that must match the lease when given; `None` to cancel a waiting job or to expire
    /// a lease (decided by the outcome).
    pub running: Option<Option<String>>,
}

impl End {
    /// The end of a run by its worker (`None` for an in-process handler).
    pub fn of_run(id: &str, outcome: Outcome, worker_id: Option<&str>) -> End {
        End { id: id.to_string(), outcome, running: Some(worker_id.map(str::to_string)) }
    }
}

/// An end decided under the lock, waiting for its durable write. The job's live record
/// keeps its state from before the end until the write is settled, so a failed write
/// has nothing to restore. `next` is boxed: batches move these around by the thousand.
struct Decided {
    /// Position in the caller's list.
    at: usize,
    next: Box<Job>,
    outcome: Outcome,
    was_slot: Slot,
}

/// Jobs to cancel because a dependency ended badly: (job id, reason).
type Cascade = Vec<(String, String)>;

/// The job after its end, or why it could not end.
pub(crate) type Ended = Result<Box<Job>, JobError>;

impl JobQueue {
    /// Completes a running job with its result; durable when this returns.
    pub async fn complete(&self, id: &str, worker_id: Option<&str>, result: Option<serde_json::Value>) -> Result<Job, JobError> {
        self.check_result(&result)?;
        self.finish(id, Outcome::Complete(result), Some(worker_id)).await
    }

    /// Completes several running jobs of one worker in one durable write (the batch form
    /// of [`JobQueue::complete`]). The batch holds 1 to [`MAX_CLAIM`] distinct ids (else
    /// an error naming `jobs` or `jobs[i].id`). Each job then gets its own result: one
    /// job that is not running, or leased by another worker, does not affect the others.
    pub async fn complete_many(
        &self,
        worker_id: Option<&str>,
        results: Vec<(String, Option<serde_json::Value>)>,
    ) -> Result<Vec<Result<Job, JobError>>, JobError> {
        if results.is_empty() || results.len() > MAX_CLAIM {
            return Err(JobError::invalid("jobs", format!("must hold 1 to {MAX_CLAIM} jobs")));
        }
        let mut seen = std::collections::HashSet::with_capacity(results.len());
        for (i, (id, _)) in results.iter().enumerate() {
            if id.is_empty() {
                return Err(JobError::invalid(format!("jobs[{i}].id"), "must not be empty"));
            }
            if !seen.insert(id.as_str()) {
                return Err(JobError::invalid(format!("jobs[{i}].id"), "duplicate job id"));
            }
        }
        let mut out: Vec<Option<Result<Job, JobError>>> = Vec::with_capacity(results.len());
        let mut ends = Vec::with_capacity(results.len());
        let mut positions = Vec::with_capacity(results.len());
        for (i, (id, result)) in results.into_iter().enumerate() {
            match self.check_result(&result) {
                Ok(()) => {
                    positions.push(i);
                    ends.push(End::of_run(&id, Outcome::Complete(result), worker_id));
                    out.push(None);
                }
                Err(e) => out.push(Some(Err(e))),
            }
        }
        for (r, i) in self.finish_many(ends).await.into_iter().zip(positions) {
            out[i] = Some(r.map(|j| *j));
        }
        Ok(out.into_iter().map(|r| r.expect("every position answered")).collect())
    }

    /// Fails a running job's attempt: it retries after its backoff while attempts remain
    /// and `retry` is true, else it is dead. Durable when this returns.
    pub async fn fail(&self, id: &str, worker_id: Option<&str>, error: &str, retry: bool) -> Result<Job, JobError> {
        if error.len() > 64 * 1024 {
            return Err(JobError::invalid("error", "must be at most 65536 bytes"));
        }
        self.finish(id, Outcome::Fail { error: error.to_string(), retry }, Some(worker_id)).await
    }

    /// A result larger than the payload limit is refused (413).
    fn check_result(&self, result: &Option<serde_json::Value>) -> Result<(), JobError> {
        if let Some(r) = result {
            let size = super::ops::json_size(r);
            if size > self.shared.config.max_payload_bytes {
                return Err(JobError::PayloadTooLarge { size, limit: self.shared.config.max_payload_bytes });
            }
        }
        Ok(())
    }

    /// Ends one run or job (see [`JobQueue::finish_many`]).
    pub(crate) async fn finish(&self, id: &str, outcome: Outcome, running: Option<Option<&str>>) -> Result<Job, JobError> {
        let end = End { id: id.to_string(), outcome, running: running.map(|w| w.map(str::to_string)) };
        self.finish_many(vec![end]).await.pop().expect("one result per end").map(|j| *j)
    }

    /// Ends runs or jobs durably, in one write, then releases their dependants
    /// (cancelling them when a job ended dead or cancelled). Returns one result per end,
    /// in order.
    pub(crate) async fn finish_many(&self, ends: Vec<End>) -> Vec<Ended> {
        let (results, mut cascade) = self.finish_batch(ends).await;
        while !cascade.is_empty() {
            let ends = cascade.drain(..).map(|(id, reason)| End { id, outcome: Outcome::Cancel(reason), running: None }).collect();
            cascade = self.finish_batch(ends).await.1;
        }
        results
    }

    /// The three phases of [`JobQueue::finish_many`] for one batch, without following
    /// the cascade it returns.
    async fn finish_batch(&self, ends: Vec<End>) -> (Vec<Ended>, Cascade) {
        let now = self.now();
        let mut results: Vec<Option<Ended>> = (0..ends.len()).map(|_| None).collect();
        let mut decided = Vec::with_capacity(ends.len());
        let mut not_live = Vec::new();
        {
            let mut idx = self.shared.index.lock();
            for (at, end) in ends.into_iter().enumerate() {
                match decide(&mut idx, &end, now) {
                    Ok((next, was_slot)) => decided.push(Decided { at, next, outcome: end.outcome, was_slot }),
                    Err(Some(e)) => results[at] = Some(Err(e)),
                    Err(None) => not_live.push((at, end.id)),
                }
            }
        }
        for (at, id) in not_live {
            results[at] = Some(Err(self.not_live(&id)));
        }
        let mut cascade = Vec::new();
        if !decided.is_empty() {
            let written = self.write_states(&decided).await;
            let mut ready = Vec::new();
            {
                let mut idx = self.shared.index.lock();
                for d in &decided {
                    settle(&mut idx, d, written.is_ok(), now, &mut ready, &mut cascade);
                }
            }
            self.shared.notify_ready(&ready);
            match written {
                Err(e) => {
                    for d in decided {
                        results[d.at] = Some(Err(e.clone()));
                    }
                }
                Ok(()) => {
                    if decided.iter().any(|d| d.next.status == JobStatus::Failed) {
                        self.shared.wake.notify_one();
                    }
                    for d in decided {
                        self.report(&d.next, &d.outcome, d.was_slot == Slot::Running, now).await;
                        results[d.at] = Some(Ok(d.next));
                    }
                }
            }
        }
        (results.into_iter().map(|r| r.expect("every end answered")).collect(), cascade)
    }

    /// Writes the decided states in one durable store write.
    async fn write_states(&self, decided: &[Decided]) -> Result<(), JobError> {
        let encoded: Vec<Encoded> = decided.iter().map(|d| Encoded::of(&d.next)).collect::<Result<_, _>>()?;
        self.shared.store.write(move |txn| store::update(txn, &encoded).map_err(JobError::from)).await
    }

    /// Metrics, events, hooks and the progress record after a durable end of a run or job.
    async fn report(&self, next: &Job, outcome: &Outcome, was_running: bool, now: DateTime<Utc>) {
        let (q, n) = (next.queue.as_str(), next.name.as_str());
        if was_running && let Some(s) = next.started_at {
            metrics::ran(q, n, (now - s).num_milliseconds() as f64 / 1000.0);
        }
        let hooks = self.shared.hooks.read().clone();
        let failed_with = match outcome {
            Outcome::Fail { error, .. } => Some(error.as_str()),
            Outcome::Expired => Some("lease expired"),
            _ => None,
        };
        if let Some(err) = failed_with
            && next.status != JobStatus::Cancelled
        {
            metrics::count(Step::Failed, q, n);
            self.emit("job.failed", next);
            for h in &hooks {
                h.on_fail(next, err);
            }
        }
        match next.status {
            JobStatus::Completed => {
                metrics::count(Step::Completed, q, n);
                self.emit("job.completed", next);
                for h in &hooks {
                    h.on_complete(next);
                }
            }
            JobStatus::Dead => {
                metrics::count(Step::Dead, q, n);
                self.emit("job.dead", next);
            }
            JobStatus::Cancelled => {
                metrics::count(Step::Cancelled, q, n);
                self.emit("job.cancelled", next);
            }
            JobStatus::Failed | JobStatus::Pending => {
                metrics::count(Step::Retried, q, n);
                self.emit("job.retrying", next);
            }
            _ => {}
        }
        if next.progress_id.is_some() && next.status.is_final() {
            let p = &self.shared.progress;
            let r = match next.status {
                JobStatus::Completed => p.complete(&next.id, next.result.clone()).await.map(|_| ()),
                JobStatus::Dead => p.fail(&next.id, next.reason.as_deref().unwrap_or("dead")).await.map(|_| ()),
                _ => p.cancel(&next.id).await.map(|_| ()),
            };
            if let Err(e) = r {
                tracing::debug!(job = %next.id, error = %e, "job progress not finalised");
            }
        }
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
fn settle(idx: &mut Index, d: &Decided, ok: bool, now: DateTime<Utc>, ready: &mut Vec<(String, String)>, cascade: &mut Cascade) {
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

/// A conflict when `holder` is set and differs from the caller's worker id.
pub(super) fn check_holder(id: &str, holder: Option<&str>, caller: Option<&str>) -> Result<(), JobError> {
    match (holder, caller) {
        (Some(h), Some(c)) if h != c => Err(JobError::Conflict(format!("job {id} is leased by another worker"))),
        _ => Ok(()),
    }
}

/// The job after `outcome`, before it is written.
fn next_state(before: &Job, outcome: &Outcome, cancel_requested: bool, now: DateTime<Utc>) -> Job {
    let mut j = before.clone();
    j.lease_until = None;
    let attempt_error = |j: &mut Job, e: &str| j.errors.push(JobAttemptError { attempt: j.attempts, error: e.to_string(), at: now });
    match outcome {
        Outcome::Complete(result) => {
            if cancel_requested {
                j.status = JobStatus::Cancelled;
                j.reason = Some("cancelled while running".into());
            } else {
                j.status = JobStatus::Completed;
                j.result = result.clone();
            }
        }
        Outcome::Fail { error, retry } => {
            attempt_error(&mut j, error);
            if cancel_requested {
                j.status = JobStatus::Cancelled;
                j.reason = Some("cancelled while running".into());
            } else if !retry || j.attempts >= j.max_attempts {
                j.status = JobStatus::Dead;
                j.reason = Some(error.clone());
            } else {
                j.status = JobStatus::Failed;
                j.run_at = now + Duration::milliseconds(j.backoff.delay_ms(j.attempts) as i64);
            }
        }
        Outcome::Expired => {
            attempt_error(&mut j, "lease expired");
            if cancel_requested {
                j.status = JobStatus::Cancelled;
                j.reason = Some("cancelled (forced at lease end)".into());
            } else if j.attempts >= j.max_attempts {
                j.status = JobStatus::Dead;
                j.reason = Some("lease expired".into());
            } else {
                j.status = JobStatus::Pending;
                j.run_at = now;
            }
        }
        Outcome::Cancel(reason) => {
            j.status = JobStatus::Cancelled;
            j.reason = Some(reason.clone());
        }
    }
    if j.status.is_final() {
        j.finished_at = Some(now);
    }
    j
}
