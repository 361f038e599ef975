//! Request and response types of the worker protocol and of the reads: claims,
//! heartbeats, listings and queue states.

use super::Job;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// `POST /api/jobs/claim`: take ready jobs for an external worker.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRequest {
    /// Queues to take from, in no particular order (the most urgent job across them wins).
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    /// Identifies the worker; later calls about a claimed job must carry the same id.
    pub worker_id: String,
    /// Job names this worker handles. Absent: any name without an in-process handler.
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Most jobs to take (1–1000, default 1).
    #[serde(default)]
    pub max: Option<usize>,
    /// Lease length in seconds (default 60); heartbeats extend it.
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// Long-poll: when nothing is ready, wait up to this many milliseconds (max 30000)
    /// for a job, woken by the enqueue itself (no polling). Default 0: answer at once.
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

fn default_queues() -> Vec<String> {
    vec!["default".into()]
}

/// `POST /api/jobs/{id}/heartbeat` answer.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct HeartbeatAck {
    /// The job.
    pub job_id: String,
    /// The new lease end.
    pub lease_until: Option<DateTime<Utc>>,
    /// True when the job was cancelled: the worker should stop and report (it ends cancelled).
    pub cancel_requested: bool,
}

/// `GET /api/jobs` filters.
#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    /// Only jobs in this status.
    pub status: Option<String>,
    /// Only jobs of this queue.
    pub queue: Option<String>,
    /// Only jobs with this name.
    pub name: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<usize>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of jobs, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JobList {
    /// The jobs.
    pub jobs: Vec<Job>,
    /// Opaque cursor of the next page (also sent as the `X-Next-Cursor` header); absent
    /// on the last page.
    pub next_cursor: Option<String>,
}

/// One queue's state (`GET /api/queues`).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct QueueInfo {
    /// Queue name.
    pub name: String,
    /// Claims skip a paused queue.
    pub paused: bool,
    /// Jobs per status (final statuses count jobs still retained).
    pub counts: BTreeMap<String, u64>,
    /// Jobs completed in the last 60 seconds.
    pub completed_last_minute: u64,
    /// Age in seconds of the oldest ready job (since its run_at), if any.
    pub oldest_waiting_seconds: Option<f64>,
    /// In-process worker pools serving this queue.
    pub pools: Vec<String>,
}
