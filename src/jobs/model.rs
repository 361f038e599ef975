//! The job queue's data model: what callers send ([`EnqueueRequest`]), what they get back
//! ([`Enqueued`], [`Job`]) and the retry policy ([`Backoff`]); the worker protocol's and
//! the reads' request/response types ([`api`]); recurring schedules ([`schedule`]).
//!
//! [`Job`] is both the public JSON form and the stored record: its JSON-valued fields
//! use [`crate::store::codec::json`], which writes them as JSON values for human-readable formats
//! (the API) and as JSON text for postcard (redb), so one struct serves both without a
//! hand-written twin. Its timestamps use [`crate::store::codec::time`] likewise (RFC 3339 in
//! JSON, integers in redb).

mod api;
mod schedule;

pub use api::{ClaimRequest, HeartbeatAck, JobList, ListQuery, QueueInfo};
pub use schedule::{Schedule, ScheduleJob, ScheduleRequest};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The life cycle of a job.
///
/// `pending` → `running` → `completed`; a failed run with attempts left is `failed`
/// (it will retry at its `run_at`), without attempts left `dead`. `scheduled` is a job
/// whose `run_at` is in the future. `cancelled` is final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    /// Ready to run (or waiting on its dependencies).
    Pending,
    /// Waiting for its `run_at`.
    Scheduled,
    /// Claimed by a worker that holds its lease.
    Running,
    /// Finished successfully (final).
    Completed,
    /// The last attempt failed; it will run again at `run_at`.
    Failed,
    /// Failed with no attempts left, or fatally (final; the dead-letter view).
    Dead,
    /// Cancelled by a caller or because a dependency ended dead or cancelled (final).
    Cancelled,
}

impl JobStatus {
    /// Every status, in display order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Pending,
        JobStatus::Scheduled,
        JobStatus::Running,
        JobStatus::Completed,
        JobStatus::Failed,
        JobStatus::Dead,
        JobStatus::Cancelled,
    ];

    /// True for the states a job never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Dead | JobStatus::Cancelled)
    }

    /// The snake_case name used in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Scheduled => "scheduled",
            JobStatus::Running => "running",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
            JobStatus::Dead => "dead",
            JobStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the snake_case name.
    pub fn parse(s: &str) -> Option<JobStatus> {
        JobStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }
}

/// How the delay between attempts grows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackoffKind {
    /// `base_ms * 2^(attempt-1)`.
    #[default]
    Exponential,
    /// `base_ms * attempt`.
    Linear,
    /// Always `base_ms`.
    Fixed,
}

/// Retry delay policy. The delay after attempt `n` is capped at `max_ms`; with `jitter`
/// it is drawn uniformly from `[delay/2, delay]` so that a burst of failures does not
/// retry in lockstep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Backoff {
    /// `exponential`, `linear` or `fixed`.
    #[serde(rename = "type", default)]
    pub kind: BackoffKind,
    /// Base delay in milliseconds.
    #[serde(default = "default_base_ms")]
    pub base_ms: u64,
    /// Upper bound of the delay in milliseconds.
    #[serde(default = "default_max_ms")]
    pub max_ms: u64,
    /// Randomise the delay to spread retries.
    #[serde(default = "default_jitter")]
    pub jitter: bool,
}

fn default_base_ms() -> u64 {
    1000
}
fn default_max_ms() -> u64 {
    3_600_000
}
fn default_jitter() -> bool {
    true
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { kind: BackoffKind::Exponential, base_ms: default_base_ms(), max_ms: default_max_ms(), jitter: default_jitter() }
    }
}

impl Backoff {
    /// The delay before the attempt following failed attempt number `attempt` (1-based),
    /// never more than [`super::limits::MAX_BACKOFF_MS`] whatever the stored policy says.
    pub fn delay_ms(&self, attempt: u32) -> u64 {
        let n = attempt.max(1) as u64;
        let raw = match self.kind {
            BackoffKind::Exponential => self.base_ms.saturating_mul(1u64.checked_shl((n - 1).min(62) as u32).unwrap_or(u64::MAX)),
            BackoffKind::Linear => self.base_ms.saturating_mul(n),
            BackoffKind::Fixed => self.base_ms,
        };
        let capped = raw.min(self.max_ms).min(super::limits::MAX_BACKOFF_MS);
        if self.jitter && capped > 1 {
            use rand::Rng;
            rand::rng().random_range(capped / 2..=capped)
        } else {
            capped
        }
    }
}

/// A request to enqueue one job (`POST /api/jobs`, [`crate::jobs::JobQueue::enqueue`]).
#[derive(Default, Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EnqueueRequest {
    /// The job type; selects the handler (in-process) or is matched by external workers.
    pub name: String,
    /// Arbitrary JSON handed to the handler.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Queue name (default `default`).
    #[serde(default)]
    pub queue: Option<String>,
    /// 0–9, 9 most urgent (default 5). Equal priorities run first in, first out.
    #[serde(default)]
    pub priority: Option<u8>,
    /// Seconds to wait before the job may run (>= 0).
    #[serde(default)]
    pub delay: Option<f64>,
    /// Earliest time the job may run (overrides `delay`).
    #[serde(default)]
    pub run_at: Option<DateTime<Utc>>,
    /// Attempts before the job is dead (default from config, 3).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Retry policy (default exponential, base 1 s, with jitter).
    #[serde(default)]
    pub backoff: Option<Backoff>,
    /// Seconds one attempt may run before it is failed (default from config, 300).
    #[serde(default)]
    pub timeout: Option<u64>,
    /// Deduplication key: an enqueue with the key of a job created less than
    /// `unique_for` seconds ago returns that job instead.
    #[serde(default)]
    pub unique_key: Option<String>,
    /// Seconds the `unique_key` is held (default: while the job is not final).
    #[serde(default)]
    pub unique_for: Option<u64>,
    /// Ids of jobs that must complete before this one runs.
    #[serde(default)]
    pub depends_on: Vec<String>,
    /// Caller-chosen id (e.g. an export id); must be unique; generated (UUIDv7) when None.
    #[serde(default)]
    pub id: Option<String>,
}

impl EnqueueRequest {
    /// A request with every option at its default.
    pub fn new(name: impl Into<String>, payload: serde_json::Value) -> Self {
        EnqueueRequest { name: name.into(), payload, ..Default::default() }
    }
}

/// The answer to an enqueue.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct Enqueued {
    /// The job's id.
    pub job_id: String,
    /// Its status right after the enqueue (`pending` or `scheduled`, or the status of the
    /// existing job when `existing`).
    pub status: JobStatus,
    /// True when a unique key or a caller-chosen id matched an existing job, which is
    /// returned instead of creating a new one.
    pub existing: bool,
}

/// One failed attempt.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct JobAttemptError {
    /// The attempt number (1-based).
    pub attempt: u32,
    /// What went wrong.
    pub error: String,
    /// When.
    #[serde(with = "crate::store::codec::time")]
    pub at: DateTime<Utc>,
}

/// A job as stored and as returned by the API.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Job {
    /// Unique id (UUIDv7 unless chosen by the caller).
    pub id: String,
    /// Job type.
    pub name: String,
    /// Queue.
    pub queue: String,
    /// The handler's input.
    #[serde(with = "crate::store::codec::json")]
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// 0–9, 9 most urgent.
    pub priority: u8,
    /// Current status.
    pub status: JobStatus,
    /// Runs started so far (including one in progress).
    pub attempts: u32,
    /// Attempts allowed before the job is dead.
    pub max_attempts: u32,
    /// Earliest time of the next run.
    #[serde(with = "crate::store::codec::time")]
    pub run_at: DateTime<Utc>,
    /// When the job was enqueued.
    #[serde(with = "crate::store::codec::time")]
    pub created_at: DateTime<Utc>,
    /// When the latest attempt started.
    #[serde(with = "crate::store::codec::time_opt")]
    pub started_at: Option<DateTime<Utc>>,
    /// When the job reached a final state.
    #[serde(with = "crate::store::codec::time_opt")]
    pub finished_at: Option<DateTime<Utc>>,
    /// The handler's result, once completed.
    #[serde(with = "crate::store::codec::json_opt")]
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
    /// One entry per failed attempt.
    pub errors: Vec<JobAttemptError>,
    /// The progress record of this job (same id as the job), once it reported progress.
    pub progress_id: Option<String>,
    /// Jobs this one waits for.
    pub depends_on: Vec<String>,
    /// Retry policy.
    pub backoff: Backoff,
    /// Seconds one attempt may run.
    pub timeout: u64,
    /// Deduplication key, if any.
    pub unique_key: Option<String>,
    /// Seconds the unique key is held, if bounded.
    pub unique_for: Option<u64>,
    /// Why the job was cancelled or is dead, when it is.
    pub reason: Option<String>,
    /// Worker holding the lease while running (external workers; `in-process` for handlers).
    pub worker_id: Option<String>,
    /// Lease deadline while running.
    #[serde(with = "crate::store::codec::time_opt")]
    pub lease_until: Option<DateTime<Utc>>,
    /// Monotonic enqueue sequence number; orders the listing and FIFO within a priority.
    pub seq: u64,
}

/// Why a handler run failed.
#[derive(Clone, Debug, PartialEq)]
pub struct JobFailure {
    /// What went wrong (recorded in the job's `errors`).
    pub message: String,
    /// False to make the job dead at once regardless of attempts left.
    pub retry: bool,
}

impl JobFailure {
    /// A failure that is retried while attempts remain.
    pub fn retry(msg: impl Into<String>) -> Self {
        JobFailure { message: msg.into(), retry: true }
    }

    /// A failure that makes the job dead immediately.
    pub fn fatal(msg: impl Into<String>) -> Self {
        JobFailure { message: msg.into(), retry: false }
    }
}

impl std::fmt::Display for JobFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error> From<E> for JobFailure {
    fn from(e: E) -> Self {
        JobFailure::retry(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_round_trips_through_the_store_codec_and_json() {
        let now = Utc::now();
        let job = Job {
            id: "j1".into(),
            name: "n".into(),
            queue: "default".into(),
            payload: serde_json::json!({"a": [1, 2, {"b": null}]}),
            priority: 5,
            status: JobStatus::Failed,
            attempts: 1,
            max_attempts: 3,
            run_at: now,
            created_at: now,
            started_at: Some(now),
            finished_at: None,
            result: Some(serde_json::json!("ok")),
            errors: vec![JobAttemptError { attempt: 1, error: "boom".into(), at: now }],
            progress_id: None,
            depends_on: vec!["x".into()],
            backoff: Backoff::default(),
            timeout: 300,
            unique_key: Some("k".into()),
            unique_for: None,
            reason: None,
            worker_id: None,
            lease_until: None,
            seq: 42,
        };
        let bytes = crate::store::codec::encode(&job).unwrap();
        assert_eq!(crate::store::codec::decode::<Job>(&bytes).unwrap(), job);
        let json = serde_json::to_value(&job).unwrap();
        assert_eq!(json["payload"]["a"][0], 1);
        assert_eq!(json["status"], "failed");
        assert_eq!(serde_json::from_value::<Job>(json).unwrap(), job);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let b = Backoff { kind: BackoffKind::Exponential, base_ms: 100, max_ms: 1000, jitter: false };
        assert_eq!([b.delay_ms(1), b.delay_ms(2), b.delay_ms(3), b.delay_ms(5), b.delay_ms(80)], [100, 200, 400, 1000, 1000]);
        let l = Backoff { kind: BackoffKind::Linear, ..b };
        assert_eq!([l.delay_ms(1), l.delay_ms(3)], [100, 300]);
        let f = Backoff { kind: BackoffKind::Fixed, ..b };
        assert_eq!(f.delay_ms(7), 100);
        let j = Backoff { jitter: true, ..b };
        for _ in 0..50 {
            let d = j.delay_ms(3);
            assert!((200..=400).contains(&d), "{d}");
        }
    }
}
