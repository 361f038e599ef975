//! The job life cycle as pure functions: what a job becomes when a run or the job ends.
//! Brokers decide every end with [`next_state`], so that retries, backoff and dead-lettering
//! mean the same whatever holds the jobs.

use super::broker::RunOutcome;
use super::error::JobError;
use super::model::{Job, JobAttemptError, JobStatus};
use chrono::{DateTime, Utc};

/// How a run (or a job) ends.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// The run succeeded with this result.
    Complete(Option<serde_json::Value>),
    /// The run failed; with `retry` false the job is dead at once.
    Fail {
        /// What went wrong.
        error: String,
        /// Retry while attempts remain.
        retry: bool,
    },
    /// A lease ran out.
    Expired,
    /// The job is cancelled (by a caller, or because a dependency ended badly).
    Cancel(String),
}

impl From<RunOutcome> for Outcome {
    fn from(o: RunOutcome) -> Outcome {
        match o {
            RunOutcome::Complete(r) => Outcome::Complete(r),
            RunOutcome::Fail { error, retry } => Outcome::Fail { error, retry },
        }
    }
}

impl Outcome {
    /// True when the outcome is a failed run (an error or an expired lease).
    pub fn is_failed_run(&self) -> bool {
        matches!(self, Outcome::Fail { .. } | Outcome::Expired)
    }
}

/// A conflict when `holder` is set and differs from the caller's worker id.
pub fn check_holder(id: &str, holder: Option<&str>, caller: Option<&str>) -> Result<(), JobError> {
    match (holder, caller) {
        (Some(h), Some(c)) if h != c => Err(JobError::Conflict(format!("job {id} is leased by another worker"))),
        _ => Ok(()),
    }
}

/// The job after `outcome`, before it is written.
pub fn next_state(before: &Job, outcome: &Outcome, cancel_requested: bool, now: DateTime<Utc>) -> Job {
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
                j.run_at = super::limits::after_ms(now, j.backoff.delay_ms(j.attempts));
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
