//! Request validation: names, limits and the building of new [`Job`] records from
//! [`EnqueueRequest`]s (ids, defaults). Every check names the offending field.

use super::broker::ListFilter;
use super::config::JobQueueConfig;
use super::error::JobError;
use super::limits;
use super::model::{Backoff, ClaimRequest, EnqueueRequest, Job, JobStatus, ListQuery};
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};

/// Longest accepted name (job, queue, id, unique key).
const MAX_NAME: usize = 200;
/// Most jobs one claim or one batch may hold.
pub const MAX_CLAIM: usize = 1000;
/// Most jobs in one batch enqueue.
pub const MAX_BATCH: usize = 10_000;
/// Default lease of an external claim, seconds.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

pub fn check_name(field: &str, v: &str) -> Result<(), JobError> {
    if v.trim().is_empty() {
        return Err(JobError::invalid(field, "must not be empty"));
    }
    if v.len() > MAX_NAME {
        return Err(JobError::invalid(field, format!("must be at most {MAX_NAME} bytes")));
    }
    if v.chars().any(|c| c.is_control()) {
        return Err(JobError::invalid(field, "must not contain control characters"));
    }
    Ok(())
}

/// Validates a queue name (also used for pause/resume paths).
pub fn check_queue(field: &str, v: &str) -> Result<(), JobError> {
    check_name(field, v)?;
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        return Err(JobError::invalid(field, "may contain only letters, digits, '-', '_', '.' and ':'"));
    }
    Ok(())
}

/// The size in bytes of `v`'s JSON text, counted without building the text.
pub fn json_size(v: &serde_json::Value) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    match serde_json::to_writer(&mut c, v) {
        Ok(()) => c.0,
        Err(_) => usize::MAX,
    }
}

/// Validates a request into a new job record (no id or unique checks yet).
pub fn build(cfg: &JobQueueConfig, req: EnqueueRequest, now: DateTime<Utc>) -> Result<Job, JobError> {
    check_name("name", &req.name)?;
    let queue = req.queue.unwrap_or_else(|| "default".into());
    check_queue("queue", &queue)?;
    let priority = req.priority.unwrap_or(5);
    if priority > 9 {
        return Err(JobError::invalid("priority", "must be an integer from 0 to 9 (9 is the most urgent)"));
    }
    let run_at = match (req.run_at, req.delay) {
        (Some(at), _) => {
            let horizon = limits::MAX_HORIZON_SECONDS;
            if at > limits::after_secs(now, horizon) || at < limits::before_secs(now, horizon) {
                return Err(JobError::invalid("run_at", "must be within ten years of now"));
            }
            at
        }
        (None, Some(d)) => {
            if !d.is_finite() || d < 0.0 {
                return Err(JobError::invalid("delay", "must be a number of seconds >= 0"));
            }
            if d > limits::MAX_HORIZON_SECONDS as f64 {
                return Err(JobError::invalid("delay", "must be at most ten years"));
            }
            limits::after_ms(now, (d * 1000.0).round() as u64)
        }
        (None, None) => now,
    };
    let max_attempts = req.max_attempts.unwrap_or(cfg.defaults.max_attempts);
    if !(1..=1000).contains(&max_attempts) {
        return Err(JobError::invalid("max_attempts", "must be from 1 to 1000"));
    }
    let backoff = match req.backoff {
        Some(b) => {
            for (field, v) in [("backoff.base_ms", b.base_ms), ("backoff.max_ms", b.max_ms)] {
                if v > limits::MAX_BACKOFF_MS {
                    return Err(JobError::invalid(field, format!("must be at most {} (30 days)", limits::MAX_BACKOFF_MS)));
                }
            }
            if b.max_ms < b.base_ms {
                return Err(JobError::invalid("backoff.max_ms", "must be >= backoff.base_ms"));
            }
            b
        }
        None => Backoff { kind: cfg.default_backoff_kind(), ..Default::default() },
    };
    let timeout = req.timeout.unwrap_or(cfg.defaults.timeout);
    if !(1..=limits::MAX_TIMEOUT_SECONDS).contains(&timeout) {
        return Err(JobError::invalid("timeout", format!("must be from 1 to {} seconds", limits::MAX_TIMEOUT_SECONDS)));
    }
    if let Some(k) = &req.unique_key {
        check_name("unique_key", k)?;
    }
    if req.unique_for.is_some() && req.unique_key.is_none() {
        return Err(JobError::invalid("unique_for", "requires unique_key"));
    }
    if req.unique_for.is_some_and(|s| !(1..=limits::MAX_UNIQUE_FOR_SECONDS).contains(&s)) {
        return Err(JobError::invalid("unique_for", format!("must be from 1 to {} seconds", limits::MAX_UNIQUE_FOR_SECONDS)));
    }
    let id = match req.id {
        Some(id) => {
            check_name("id", &id)?;
            if id.contains('/') {
                return Err(JobError::invalid("id", "must not contain '/'"));
            }
            id
        }
        None => uuid::Uuid::now_v7().to_string(),
    };
    let mut seen = HashSet::new();
    for (i, d) in req.depends_on.iter().enumerate() {
        check_name(&format!("depends_on[{i}]"), d)?;
        if *d == id {
            return Err(JobError::invalid(format!("depends_on[{i}]"), "a job cannot depend on itself"));
        }
        if !seen.insert(d) {
            return Err(JobError::invalid(format!("depends_on[{i}]"), "duplicate dependency"));
        }
    }
    let size = json_size(&req.payload);
    if size > cfg.max_payload_bytes {
        return Err(JobError::PayloadTooLarge { size, limit: cfg.max_payload_bytes });
    }
    let status = if run_at > now { JobStatus::Scheduled } else { JobStatus::Pending };
    Ok(Job {
        id,
        name: req.name,
        queue,
        payload: req.payload,
        priority,
        status,
        attempts: 0,
        max_attempts,
        run_at,
        created_at: now,
        started_at: None,
        finished_at: None,
        result: None,
        errors: Vec::new(),
        progress_id: None,
        depends_on: req.depends_on,
        backoff,
        timeout,
        unique_key: req.unique_key,
        unique_for: req.unique_for,
        reason: None,
        worker_id: None,
        lease_until: None,
        seq: 0,
    })
}

/// Refuses a dependency cycle among the jobs of one batch (its jobs would wait on each
/// other forever), naming the dependency that closes it: `[i].depends_on[k]`. An
/// iterative depth-first walk, so a long chain cannot overflow the stack.
pub fn no_cycles(jobs: &[&Job]) -> Result<(), JobError> {
    if jobs.iter().all(|j| j.depends_on.is_empty()) {
        return Ok(());
    }
    let pos: HashMap<&str, usize> = jobs.iter().enumerate().map(|(i, j)| (j.id.as_str(), i)).collect();
    #[derive(Clone, Copy, PartialEq)]
    enum Mark {
        New,
        OnPath,
        Done,
    }
    let mut mark = vec![Mark::New; jobs.len()];
    for start in 0..jobs.len() {
        if mark[start] != Mark::New {
            continue;
        }
        mark[start] = Mark::OnPath;
        // (job, index of its next dependency to look at)
        let mut path = vec![(start, 0usize)];
        while let Some(top) = path.last_mut() {
            let (i, k) = *top;
            let Some(d) = jobs[i].depends_on.get(k) else {
                mark[i] = Mark::Done;
                path.pop();
                continue;
            };
            top.1 += 1;
            let Some(&j) = pos.get(d.as_str()) else { continue };
            match mark[j] {
                Mark::OnPath => {
                    return Err(JobError::invalid(
                        format!("[{i}].depends_on[{k}]"),
                        format!("dependency cycle within the batch: '{d}' waits, directly or not, on '{}'", jobs[i].id),
                    ));
                }
                Mark::New => {
                    mark[j] = Mark::OnPath;
                    path.push((j, 0));
                }
                Mark::Done => {}
            }
        }
    }
    Ok(())
}

/// Longest claim long-poll, and the default of `job_queue.max_claim_wait_ms`.
pub const MAX_CLAIM_WAIT_MS: u64 = 30_000;

/// Checks a claim request whose long-poll may last `max_wait_ms`; returns `(max,
/// lease_ms, wait_ms)`.
pub fn claim(req: &ClaimRequest, max_wait_ms: u64) -> Result<(usize, i64, u64), JobError> {
    check_name("worker_id", &req.worker_id)?;
    if req.queues.is_empty() {
        return Err(JobError::invalid("queues", "must list at least one queue"));
    }
    for (i, q) in req.queues.iter().enumerate() {
        check_queue(&format!("queues[{i}]"), q)?;
    }
    let max = req.max.unwrap_or(1);
    if !(1..=MAX_CLAIM).contains(&max) {
        return Err(JobError::invalid("max", format!("must be from 1 to {MAX_CLAIM}")));
    }
    let lease = req.lease_seconds.unwrap_or(DEFAULT_LEASE_SECONDS);
    check_lease(lease)?;
    let wait = req.wait_ms.unwrap_or(0);
    if wait > max_wait_ms {
        return Err(JobError::invalid("wait_ms", format!("must be at most {max_wait_ms}")));
    }
    Ok((max, lease as i64 * 1000, wait))
}

/// Checks a lease length in seconds.
pub fn check_lease(seconds: u64) -> Result<(), JobError> {
    if !(1..=86400).contains(&seconds) {
        return Err(JobError::invalid("lease_seconds", "must be from 1 to 86400"));
    }
    Ok(())
}

/// Checks a listing's query into the broker's filter.
pub fn list(q: ListQuery) -> Result<ListFilter, JobError> {
    let status = match q.status.as_deref() {
        Some(s) => Some(JobStatus::parse(s).ok_or_else(|| {
            JobError::invalid("status", "must be one of pending, scheduled, running, completed, failed, dead, cancelled")
        })?),
        None => None,
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=1000).contains(&limit) {
        return Err(JobError::invalid("limit", "must be from 1 to 1000"));
    }
    Ok(ListFilter { status, queue: q.queue, name: q.name, limit, cursor: q.cursor })
}

/// A result larger than the payload limit is refused (413).
pub fn result(cfg: &JobQueueConfig, result: &Option<serde_json::Value>) -> Result<(), JobError> {
    if let Some(r) = result {
        let size = json_size(r);
        if size > cfg.max_payload_bytes {
            return Err(JobError::PayloadTooLarge { size, limit: cfg.max_payload_bytes });
        }
    }
    Ok(())
}

/// Checks the ids of a batch complete: 1 to [`MAX_CLAIM`] distinct, non-empty ids.
pub fn batch_ids<'a>(ids: impl ExactSizeIterator<Item = &'a str>) -> Result<(), JobError> {
    if ids.len() == 0 || ids.len() > MAX_CLAIM {
        return Err(JobError::invalid("jobs", format!("must hold 1 to {MAX_CLAIM} jobs")));
    }
    let mut seen = HashSet::with_capacity(ids.len());
    for (i, id) in ids.enumerate() {
        if id.is_empty() {
            return Err(JobError::invalid(format!("jobs[{i}].id"), "must not be empty"));
        }
        if !seen.insert(id) {
            return Err(JobError::invalid(format!("jobs[{i}].id"), "duplicate job id"));
        }
    }
    Ok(())
}
