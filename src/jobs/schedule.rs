//! Recurring jobs: cron expressions read in an IANA timezone.
//!
//! The facade computes slots; the broker stores the schedules. A schedule fires by
//! enqueuing a job whose id is `schedule:<name>:<slot unix time>`. Because caller-chosen
//! ids are unique, firing the same slot twice (e.g. after a crash between the enqueue and
//! the schedule's update, or on two nodes at once) returns the existing job instead of a
//! duplicate: a run is never duplicated.
//!
//! Missed-run policy: when hearth was down over one or more slots, the schedule fires
//! ONCE at start for the earliest missed slot (a catch-up run), then resumes at the
//! first slot after the current time. Missed slots are coalesced, never replayed one by one.

pub use super::model::{Schedule, ScheduleJob, ScheduleRequest};

use super::JobQueue;
use super::broker::JobBroker;
use super::error::JobError;
use super::model::EnqueueRequest;
use super::validate::check_queue;
use chrono::{DateTime, Utc};

pub use super::cron::{check_cron, next_after, parse_cron, shortest_gap};

fn validate(
    req: &ScheduleRequest,
    default_tz: &str,
    min_interval: u64,
    now: DateTime<Utc>,
) -> Result<(cron::Schedule, chrono_tz::Tz, String), JobError> {
    if req.name.trim().is_empty() || req.name.len() > 200 || req.name.contains(['/', ':']) {
        return Err(JobError::invalid("name", "must be 1–200 characters without '/' or ':'"));
    }
    let tz_name = req.timezone.clone().unwrap_or_else(|| default_tz.to_string());
    if tz_name.parse::<chrono_tz::Tz>().is_err() {
        return Err(JobError::invalid("timezone", format!("unknown IANA timezone '{tz_name}'")));
    }
    let (cron, tz) = check_cron(&req.cron, &tz_name, min_interval, now).map_err(|why| JobError::invalid("cron", why))?;
    if req.job.name.trim().is_empty() {
        return Err(JobError::invalid("job.name", "must not be empty"));
    }
    if let Some(q) = &req.job.queue {
        check_queue("job.queue", q)?;
    }
    if req.job.priority.is_some_and(|p| p > 9) {
        return Err(JobError::invalid("job.priority", "must be an integer from 0 to 9"));
    }
    // What every slot's enqueue would refuse, refused once here (else the schedule would
    // fail to fire at every pass).
    if req.job.max_attempts.is_some_and(|n| !(1..=1000).contains(&n)) {
        return Err(JobError::invalid("job.max_attempts", "must be from 1 to 1000"));
    }
    if req.job.timeout.is_some_and(|t| !(1..=super::limits::MAX_TIMEOUT_SECONDS).contains(&t)) {
        return Err(JobError::invalid("job.timeout", format!("must be from 1 to {} seconds", super::limits::MAX_TIMEOUT_SECONDS)));
    }
    Ok((cron, tz, tz_name))
}

impl JobQueue {
    /// Creates or replaces a schedule (durable). Its first slot is the first after now.
    pub async fn put_schedule(&self, req: ScheduleRequest) -> Result<Schedule, JobError> {
        self.upsert_schedule(req, "api").await
    }

    async fn upsert_schedule(&self, req: ScheduleRequest, source: &str) -> Result<Schedule, JobError> {
        let now = self.shared.clock.now();
        let sched = &self.shared.config.scheduler;
        let (cron, tz, tz_name) = validate(&req, &sched.timezone, sched.min_interval_seconds, now)?;
        let existing = self.shared.broker.schedules().await?.into_iter().find(|s| s.name == req.name);
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
        self.shared.broker.put_schedule(s.clone()).await?;
        self.shared.wake.notify_one();
        Ok(s)
    }

    /// Every schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<Schedule>, JobError> {
        self.shared.broker.schedules().await
    }

    /// One schedule.
    pub async fn schedule(&self, name: &str) -> Result<Schedule, JobError> {
        self.schedules().await?.into_iter().find(|s| s.name == name).ok_or_else(|| schedule_not_found(name))
    }

    /// Deletes a schedule (durable). Jobs it already enqueued are unaffected.
    pub async fn delete_schedule(&self, name: &str) -> Result<(), JobError> {
        if self.shared.broker.delete_schedule(name).await? { Ok(()) } else { Err(schedule_not_found(name)) }
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
    pub(super) async fn fire_due_schedules(&self) -> Result<Option<DateTime<Utc>>, JobError> {
        let now = self.shared.clock.now();
        let all = self.shared.broker.schedules().await?;
        let mut next_slot = all.iter().filter(|s| s.next_run.is_some_and(|t| t > now)).filter_map(|s| s.next_run).min();
        for s in all.into_iter().filter(|s| s.next_run.is_some_and(|t| t <= now)) {
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
            let next_run = next.next_run;
            // Unless it was replaced or deleted meanwhile (the broker checks).
            match self.shared.broker.record_fired(next, slot).await {
                Ok(_) => next_slot = [next_slot, next_run].into_iter().flatten().min(),
                Err(e) => tracing::warn!(error = %e, "fired schedule not recorded; the slot fires again (same job id)"),
            }
        }
        Ok(next_slot)
    }
}

fn schedule_not_found(name: &str) -> JobError {
    JobError::NotFound { kind: "schedule", id: name.to_string() }
}
