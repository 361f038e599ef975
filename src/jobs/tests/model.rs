//! The in-memory model of the queue as an external worker sees it: which jobs are ready,
//! running (under a lease), or final, with their attempts. The property test
//! (`the_queue_behaves_like_its_model`) and the fault simulation (`sim.rs`) drive the real
//! queue and this model side by side and compare them after every step.
//!
//! The model is the queue's contract in a few lines: ready jobs are claimed most urgent
//! first (priority, then run_at, then enqueue order); a claim is a lease; a complete or
//! fail is acknowledged only when durable (an error changes nothing); a failed run retries
//! at once (the tests use a zero backoff) until `max_attempts`; a cancel of a running job
//! takes effect at its end; an expired lease counts the attempt; a restart forgets claims
//! (a job that was running is ready again with the attempts of its last durable state).
//!
//! A job is claimable once it was *due* when the queue looked: at its enqueue or end, at a
//! claim or tick, or at a restart, its `run_at` had come. (So a clock that jumps back does
//! not hide a job that was already claimable, and a due delayed job shows `scheduled` until
//! something looks.)

use super::*;

/// A job's state in the model.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum M {
    /// Waiting for a claim from `run_at` on.
    Ready,
    /// Claimed; the lease ends at `lease` (ms); `cancel` was requested.
    Running {
        cancel: bool,
        lease: i64,
    },
    Completed,
    Dead,
    Cancelled,
}

/// One job of the model.
#[derive(Debug, Clone)]
pub(super) struct MJob {
    pub id: String,
    pub prio: u8,
    pub seq: usize,
    pub run_at: i64,
    /// Claimable (when `Ready`): its run_at had come when the queue last placed it.
    pub due: bool,
    /// Its last durable end was a failed run that retries (until due it shows `failed`).
    pub failed: bool,
    pub state: M,
    pub attempts: u32,
    pub durable_attempts: u32,
}

/// The model: every acknowledged job.
#[derive(Debug, Default)]
pub(super) struct Model {
    pub jobs: Vec<MJob>,
    pub max_attempts: u32,
}

/// Lease of the model's claims.
pub(super) const LEASE_MS: i64 = 60_000;

impl Model {
    /// A model of jobs with `max_attempts` attempts each.
    pub fn new(max_attempts: u32) -> Model {
        Model { jobs: Vec::new(), max_attempts }
    }

    /// An enqueue of `id` was acknowledged.
    pub fn enqueued(&mut self, id: String, prio: u8, run_at: i64, now: i64) {
        let seq = self.jobs.len();
        self.jobs.push(MJob {
            id,
            prio,
            seq,
            run_at,
            due: run_at <= now,
            failed: false,
            state: M::Ready,
            attempts: 0,
            durable_attempts: 0,
        });
    }

    /// The queue looked at `now` (a claim or a tick): ready jobs whose run_at came are due.
    pub fn promote(&mut self, now: i64) {
        for j in self.jobs.iter_mut().filter(|j| j.state == M::Ready && j.run_at <= now) {
            j.due = true;
        }
    }

    /// The ids a claim of `n` at `now` must return, most urgent first; they are running
    /// from now on.
    pub fn claim(&mut self, n: usize, now: i64) -> Vec<String> {
        self.promote(now);
        let mut ready: Vec<&mut MJob> = self.jobs.iter_mut().filter(|j| j.state == M::Ready && j.due).collect();
        ready.sort_by_key(|j| (9 - j.prio, j.run_at, j.seq));
        ready
            .into_iter()
            .take(n)
            .map(|j| {
                j.state = M::Running { cancel: false, lease: now + LEASE_MS };
                j.attempts += 1;
                j.id.clone()
            })
            .collect()
    }

    /// The end of the run of job `i` (`Some(retry)`: a fail) was answered `r`. With
    /// `faulty` storage an error is allowed, and changes nothing.
    pub fn end(&mut self, i: usize, fail: Option<bool>, now: i64, r: &Result<Job, JobError>, faulty: bool) {
        let max = self.max_attempts;
        let j = &mut self.jobs[i];
        match (j.state, r) {
            (_, Err(JobError::Store(_))) if faulty => {}
            (M::Running { cancel, .. }, Ok(_)) => {
                j.durable_attempts = j.attempts;
                j.state = match fail {
                    _ if cancel => M::Cancelled,
                    None => M::Completed,
                    Some(retry) if !retry || j.attempts >= max => M::Dead,
                    Some(_) => {
                        j.run_at = now;
                        j.due = true;
                        j.failed = true;
                        M::Ready
                    }
                };
            }
            (M::Running { .. }, Err(e)) => panic!("the end of a running job must succeed: {e} ({j:?})"),
            (_, Err(JobError::Conflict(_))) => {}
            (_, r) => panic!("the end of a job that is not running must be a conflict, got {r:?} ({j:?})"),
        }
    }

    /// A cancel of job `i` at `now` was answered `r`.
    pub fn cancel(&mut self, i: usize, now: i64, r: &Result<Job, JobError>, faulty: bool) {
        let j = &mut self.jobs[i];
        match (j.state, r) {
            // The cancel was not recorded: the job was placed again, as of now.
            (M::Ready, Err(JobError::Store(_))) if faulty => j.due = j.run_at <= now,
            (_, Err(JobError::Store(_))) if faulty => {}
            (M::Ready | M::Cancelled, Ok(_)) => j.state = M::Cancelled,
            (M::Running { lease, .. }, Ok(_)) => j.state = M::Running { cancel: true, lease },
            (M::Completed | M::Dead, Err(JobError::Conflict(_))) => {}
            (_, r) => panic!("unexpected cancel answer {r:?} for {j:?}"),
        }
    }

    /// A heartbeat of job `i` at `now` was answered `r`: a running job's lease is renewed.
    pub fn heartbeat(&mut self, i: usize, now: i64, ok: bool) {
        let j = &mut self.jobs[i];
        match j.state {
            M::Running { cancel, .. } => {
                assert!(ok, "a heartbeat of a running job must succeed ({j:?})");
                j.state = M::Running { cancel, lease: now + LEASE_MS };
            }
            _ => assert!(!ok, "a heartbeat of a job that is not running must fail ({j:?})"),
        }
    }

    /// What job `i` becomes when its lease expires at `now` (a tick).
    fn expired(j: &MJob, max: u32, now: i64) -> (M, i64) {
        match j.state {
            M::Running { cancel: true, .. } => (M::Cancelled, j.run_at),
            M::Running { .. } if j.attempts >= max => (M::Dead, j.run_at),
            M::Running { .. } => (M::Ready, now),
            s => (s, j.run_at),
        }
    }

    /// A tick ran at `now`: running jobs whose lease ended expire. `observed(id)` is the
    /// real status afterwards; with `faulty` storage an expiry may not have been recorded
    /// (the job is still running, to be expired by a later tick).
    pub fn tick(&mut self, now: i64, faulty: bool, observed: &dyn Fn(&str) -> Option<JobStatus>) {
        let max = self.max_attempts;
        for j in self.jobs.iter_mut() {
            let M::Running { lease, .. } = j.state else { continue };
            if lease > now {
                continue;
            }
            if faulty && observed(&j.id) == Some(JobStatus::Running) {
                continue;
            }
            let (state, run_at) = Model::expired(j, max, now);
            j.durable_attempts = j.attempts;
            j.state = state;
            j.run_at = run_at;
            j.due = true;
            j.failed = false;
        }
        self.promote(now);
    }

    /// The process restarted at `now`: claims are forgotten, and ready jobs are placed
    /// again.
    pub fn restart(&mut self, now: i64) {
        for j in self.jobs.iter_mut() {
            if let M::Running { .. } = j.state {
                j.state = M::Ready;
                j.attempts = j.durable_attempts;
            }
            if j.state == M::Ready {
                j.due = j.run_at <= now;
            }
        }
    }

    /// The status the queue must show for job `j`.
    pub fn status(j: &MJob) -> JobStatus {
        match j.state {
            M::Ready if j.due => JobStatus::Pending,
            M::Ready if j.failed => JobStatus::Failed,
            M::Ready => JobStatus::Scheduled,
            M::Running { .. } => JobStatus::Running,
            M::Completed => JobStatus::Completed,
            M::Dead => JobStatus::Dead,
            M::Cancelled => JobStatus::Cancelled,
        }
    }

    /// Checks every job of the model against the queue: it exists (nothing acknowledged
    /// is lost), in the model's status, with the model's attempts.
    pub async fn check(&self, q: &JobQueue, context: &str) {
        for j in &self.jobs {
            let got = q.get_status(&j.id).await.unwrap_or_else(|e| panic!("{context}: acknowledged job {} lost: {e}", j.id));
            assert!(
                Model::status(j) == got.status && got.attempts == j.attempts,
                "{context}: job {} is {:?} with {} attempts; the model has {j:?}",
                j.id,
                got.status,
                got.attempts
            );
        }
    }
}
