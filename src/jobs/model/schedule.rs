//! Recurring schedules as stored and as sent over the API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The job a schedule enqueues.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleJob {
    /// Job name.
    pub name: String,
    /// Payload.
    #[serde(default, with = "crate::store::codec::json")]
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    /// Queue (default `default`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Priority 0–9 (default 5).
    #[serde(default)]
    pub priority: Option<u8>,
    /// Attempts (default from config).
    #[serde(default)]
    pub max_attempts: Option<u32>,
    /// Timeout seconds (default from config).
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// `POST /api/schedules`: create or replace a schedule.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleRequest {
    /// Unique schedule name.
    pub name: String,
    /// Cron expression: 5 fields (`min hour dom month dow`) or 6–7 (with seconds first, year last).
    pub cron: String,
    /// IANA timezone (default `job_queue.scheduler.timezone`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The job to enqueue at each slot.
    pub job: ScheduleJob,
}

/// A stored schedule.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq)]
pub struct Schedule {
    /// Unique name.
    pub name: String,
    /// Cron expression as given.
    pub cron: String,
    /// IANA timezone.
    pub timezone: String,
    /// What it enqueues.
    pub job: ScheduleJob,
    /// The next slot to fire (None when the expression has no future slot).
    pub next_run: Option<DateTime<Utc>>,
    /// The last slot fired.
    pub last_run: Option<DateTime<Utc>>,
    /// The job enqueued for the last slot.
    pub last_job_id: Option<String>,
    /// `api` or `config`.
    pub source: String,
    /// When the schedule was created.
    pub created_at: DateTime<Utc>,
}
