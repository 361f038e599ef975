//! Recurring jobs: cron expressions read in an IANA timezone.
//!
//! A schedule fires by enqueuing a job whose id is `schedule:<name>:<slot unix time>`.
//! Because caller-chosen ids are unique, firing the same slot twice (e.g. after a crash
//! between the enqueue and the schedule's update) returns the existing job instead of a
//! duplicate: a run is never duplicated across a restart.
//!
//! Missed-run policy: when hearth was down over one or more slots, the schedule fires
//! ONCE at start for the earliest missed slot (a catch-up run), then resumes at the
//! first slot after the current time. Missed slots are coalesced, never replayed one by one.

use super::JobQueue;
use super::error::JobError;
use super::model::EnqueueRequest;
use super::ops::check_queue;
use super::store::SCHEDULES;
use crate::store::{StoreError, codec, open_read};
use chrono::{DateTime, Utc};
use redb::ReadableTable;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
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

/// Parses a cron expression; 5-field expressions get a `0` seconds field.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let n = expr.split_whitespace().count();
    let full = match n {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_string(),
        _ => return Err(format!("expected 5, 6 or 7 fields, got {n}")),
    };
    cron::Schedule::from_str(&full).map_err(|e| e.to_string())
}

/// The first slot strictly after `after`, in `tz`.
pub fn next_after(s: &cron::Schedule, tz: chrono_tz::Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.after(&after.with_timezone(&tz)).next().map(|t| t.with_timezone(&Utc))
}

fn validate(req: &ScheduleRequest, default_tz: &str) -> Result<(cron::Schedule, chrono_tz::Tz, String), JobError> {
    if req.name.trim().is_empty() || req.name.len() > 200 || req.name.contains(['/', ':']) {
        return Err(JobError::invalid("name", "must be 1–200 characters without '/' or ':'"));
    }
    let cron = parse_cron(&req.cron).map_err(|e| JobError::invalid("cron", format!("invalid cron expression: {e}")))?;
    let tz_name = req.timezone.clone().unwrap_or_else(|| default_tz.to_string());
    let tz = tz_name.parse::<chrono_tz::Tz>().map_err(|_| JobError::invalid("timezone", format!("unknown IANA timezone '{tz_name}'")))?;
    if req.job.name.trim().is_empty() {
        return Err(JobError::invalid("job.name", "must not be empty"));
    }
    if let Some(q) = &req.job.queue {
        check_queue("job.queue", q)?;
    }
    if req.job.priority.is_some_and(|p| p > 9) {
        return Err(JobError::invalid("job.priority", "must be an integer from 0 to 9"));
    }
    Ok((cron, tz, tz_name))
}

fn write_schedule(txn: &redb::WriteTransaction, s: &Schedule) -> Result<(), StoreError> {
    let bytes = codec::encode(s)?;
    txn.open_table(SCHEDULES)?.insert(s.name.as_str(), bytes.as_slice())?;
    Ok(())
}

/// Every stored schedule.
pub(super) fn load(txn: &redb::ReadTransaction) -> Result<Vec<Schedule>, StoreError> {
    let Some(t) = open_read(txn, SCHEDULES)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}

impl JobQueue {
    /// Creates or replaces a schedule (durable). Its first slot is the first after now.
    pub async fn put_schedule(&self, req: ScheduleRequest) -> Result<Schedule, JobError> {
        self.upsert_schedule(req, "api").await
    }

    async fn upsert_schedule(&self, req: ScheduleRequest, source: &str) -> Result<Schedule, JobError> {
        let (cron, tz, tz_name) = validate(&req, &self.shared.config.scheduler.timezone)?;
        let now = self.shared.clock.now();
        let existing = self.shared.schedules.lock().get(&req.name).cloned();
        let same = existing.as_ref().is_some_and(|e| e.cron == req.cron && e.timezone == tz_name && e.job == req.job);
        let s = match existing {
            Some(e) if same => Schedule { source: source.to_string(), ..e },
            e => Schedule {
                name: req.name.clone(),
                cron: req.cron.clone(),
                timezone: tz_name,
                job: req.job,
                next_run: next_after(&cron, tz, now),
                last_run: e.as_ref().and_then(|e| e.last_run),
                last_job_id: e.as_ref().and_then(|e| e.last_job_id.clone()),
                source: source.to_string(),
                created_at: e.map(|e| e.created_at).unwrap_or(now),
            },
        };
        let s2 = s.clone();
        self.shared.store.write(move |txn| write_schedule(txn, &s2).map_err(JobError::from)).await?;
        self.shared.schedules.lock().insert(s.name.clone(), s.clone());
        self.shared.wake.notify_one();
        Ok(s)
    }

    /// Every schedule, by name.
    pub fn schedules(&self) -> Vec<Schedule> {
        self.shared.schedules.lock().values().cloned().collect()
    }

    /// One schedule.
    pub fn schedule(&self, name: &str) -> Result<Schedule, JobError> {
        self.shared.schedules.lock().get(name).cloned().ok_or_else(|| JobError::NotFound { kind: "schedule", id: name.to_string() })
    }

    /// Deletes a schedule (durable). Jobs it already enqueued are unaffected.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), JobError> {
        self.schedule(name)?;
        let n = name.to_string();
        self.shared
            .store
            .write(move |txn| -> Result<(), JobError> {
                txn.open_table(SCHEDULES).map_err(StoreError::from)?.remove(n.as_str()).map_err(StoreError::from)?;
                Ok(())
            })
            .await?;
        self.shared.schedules.lock().remove(name);
        Ok(())
    }

    /// Upserts the schedules declared in the configuration.
    pub(super) async fn apply_config_schedules(&self) {
        let cfg = self.shared.config.scheduler.clone();
        for (name, c) in cfg.schedules {
            let req = ScheduleRequest {
                name: name.clone(),
                cron: c.cron,
                timezone: c.timezone,
                job: ScheduleJob {
                    name: c.job,
                    payload: c.payload,
                    queue: c.queue,
                    priority: c.priority,
                    max_attempts: None,
                    timeout: None,
                },
            };
            if let Err(e) = self.upsert_schedule(req, "config").await {
                tracing::error!(schedule = %name, error = %e, "invalid schedule in job_queue.scheduler.schedules");
            }
        }
    }

    /// Fires every schedule whose slot has come (see the module doc for the missed-run
    /// policy). Returns the earliest next slot.
    pub(super) async fn fire_due_schedules(&self) -> Option<DateTime<Utc>> {
        let now = self.shared.clock.now();
        let due: Vec<Schedule> = self.shared.schedules.lock().values().filter(|s| s.next_run.is_some_and(|t| t <= now)).cloned().collect();
        for s in due {
            let Some(slot) = s.next_run else { continue };
            let req = EnqueueRequest {
                id: Some(format!("schedule:{}:{}", s.name, slot.timestamp())),
                queue: s.job.queue.clone(),
                priority: s.job.priority,
                max_attempts: s.job.max_attempts,
                timeout: s.job.timeout,
                ..EnqueueRequest::new(s.job.name.clone(), s.job.payload.clone())
            };
            let job_id = match self.enqueue(req).await {
                Ok(e) => e.job_id,
                Err(e) => {
                    tracing::warn!(schedule = %s.name, error = %e, "scheduled run not enqueued; will retry");
                    continue;
                }
            };
            let (Ok(cron), Ok(tz)) = (parse_cron(&s.cron), s.timezone.parse::<chrono_tz::Tz>()) else { continue };
            let next = Schedule { next_run: next_after(&cron, tz, now.max(slot)), last_run: Some(slot), last_job_id: Some(job_id), ..s };
            let n2 = next.clone();
            if self.shared.store.write(move |txn| write_schedule(txn, &n2).map_err(JobError::from)).await.is_ok() {
                let mut all = self.shared.schedules.lock();
                // Unless it was replaced or deleted meanwhile.
                if all.get(&next.name).is_some_and(|cur| cur.next_run == Some(slot) && cur.cron == next.cron) {
                    all.insert(next.name.clone(), next);
                }
            }
        }
        self.shared.schedules.lock().values().filter_map(|s| s.next_run).min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_field_cron_in_a_timezone() {
        let s = parse_cron("30 9 * * *").unwrap();
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let after = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        // 09:30 Paris in winter is 08:30 UTC, so the next slot is the following day.
        assert_eq!(next_after(&s, tz, after), Some(Utc.with_ymd_and_hms(2026, 1, 11, 8, 30, 0).unwrap()));
        assert!(parse_cron("not a cron").is_err());
        assert!(parse_cron("99 * * * *").is_err());
    }
}
