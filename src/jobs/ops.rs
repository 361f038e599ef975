//! The queue's operations shared by the Rust API and the HTTP adapter: enqueue, reads,
//! cancellation, retry, queue control, and the worker protocol (claim, heartbeat,
//! complete, fail). Every state change is durable before it is acknowledged.

use super::error::JobError;
use super::finish::{Outcome, check_holder};
use super::index::{Holder, NameFilter, Slot};
use super::metrics::{self, Step};
use super::model::{EnqueueRequest, Enqueued, Job, JobStatus};
use super::store::{self, Encoded, QueueMeta};
use super::{JobQueue, Shared};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::Ordering;
use utoipa::ToSchema;

/// Longest accepted name (job, queue, id, unique key).
const MAX_NAME: usize = 200;
/// Most jobs one claim or one batch may hold.
pub const MAX_CLAIM: usize = 1000;
/// Most jobs in one batch enqueue.
pub const MAX_BATCH: usize = 10_000;
/// Rows a listing examines at most per request before returning a cursor to continue.
const MAX_SCAN: usize = 50_000;
/// Default lease of an external claim, seconds.
pub const DEFAULT_LEASE_SECONDS: u64 = 60;

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

fn check_name(field: &str, v: &str) -> Result<(), JobError> {
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
pub(crate) fn check_queue(field: &str, v: &str) -> Result<(), JobError> {
    check_name(field, v)?;
    if !v.chars().all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)) {
        return Err(JobError::invalid(field, "may contain only letters, digits, '-', '_', '.' and ':'"));
    }
    Ok(())
}

/// The size in bytes of `v`'s JSON text, counted without building the text.
pub(super) fn json_size(v: &serde_json::Value) -> usize {
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

impl Shared {
    /// Wakes whoever can run jobs that just became ready in `(queue, name)`.
    pub(crate) fn notify_ready(&self, ready: &[(String, String)]) {
        if ready.is_empty() {
            return;
        }
        {
            let handled = self.handlers.read();
            for (q, n) in ready {
                if handled.contains_key(n) {
                    for p in &self.pools {
                        if p.queues.iter().any(|pq| pq == q) {
                            p.notify.notify_one();
                        }
                    }
                }
            }
        }
        // External claims may name handled jobs explicitly, so they are always woken.
        self.external.notify_waiters();
    }
}

impl JobQueue {
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Emits `topic` with the job's JSON, skipping the serialisation when nobody listens.
    pub(super) fn emit(&self, topic: &str, job: &Job) {
        let events = &self.shared.events;
        if events.subscriber_count() > 0 {
            events.emit(topic, &job.id, None, serde_json::to_value(job).unwrap_or_default());
        }
    }

    /// Validates a request into a new job record (no id or unique checks yet).
    fn build(&self, req: EnqueueRequest, now: DateTime<Utc>) -> Result<Job, JobError> {
        let cfg = &self.shared.config;
        check_name("name", &req.name)?;
        let queue = req.queue.unwrap_or_else(|| "default".into());
        check_queue("queue", &queue)?;
        let priority = req.priority.unwrap_or(5);
        if priority > 9 {
            return Err(JobError::invalid("priority", "must be an integer from 0 to 9 (9 is the most urgent)"));
        }
        let run_at = match (req.run_at, req.delay) {
            (Some(at), _) => at,
            (None, Some(d)) => {
                if !d.is_finite() || d < 0.0 {
                    return Err(JobError::invalid("delay", "must be a number of seconds >= 0"));
                }
                if d > 10.0 * 365.0 * 86400.0 {
                    return Err(JobError::invalid("delay", "must be at most ten years"));
                }
                now + Duration::milliseconds((d * 1000.0).round() as i64)
            }
            (None, None) => now,
        };
        let max_attempts = req.max_attempts.unwrap_or(cfg.defaults.max_attempts);
        if !(1..=1000).contains(&max_attempts) {
            return Err(JobError::invalid("max_attempts", "must be from 1 to 1000"));
        }
        let backoff = match req.backoff {
            Some(b) => {
                if b.max_ms < b.base_ms {
                    return Err(JobError::invalid("backoff.max_ms", "must be >= backoff.base_ms"));
                }
                b
            }
            None => super::model::Backoff { kind: cfg.default_backoff_kind(), ..Default::default() },
        };
        let timeout = req.timeout.unwrap_or(cfg.defaults.timeout);
        if !(1..=7 * 86400).contains(&timeout) {
            return Err(JobError::invalid("timeout", "must be from 1 to 604800 seconds"));
        }
        if let Some(k) = &req.unique_key {
            check_name("unique_key", k)?;
        }
        if req.unique_for.is_some() && req.unique_key.is_none() {
            return Err(JobError::invalid("unique_for", "requires unique_key"));
        }
        if req.unique_for == Some(0) {
            return Err(JobError::invalid("unique_for", "must be at least 1 second"));
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

    /// Enqueues one job; durable when this returns. An existing caller-chosen `id` or a
    /// held `unique_key` returns the existing job with `existing: true`.
    pub async fn enqueue(&self, req: EnqueueRequest) -> Result<Enqueued, JobError> {
        let mut out = self.enqueue_many(vec![req], false).await?;
        Ok(out.pop().expect("one result per request"))
    }

    /// Enqueues several jobs in one durable write (all or none). Validation errors name
    /// the field with the request's index (`[3].priority`).
    pub async fn enqueue_batch(&self, reqs: Vec<EnqueueRequest>) -> Result<Vec<Enqueued>, JobError> {
        if reqs.len() > MAX_BATCH {
            return Err(JobError::invalid("jobs", format!("at most {MAX_BATCH} jobs per batch")));
        }
        self.enqueue_many(reqs, true).await
    }

    async fn enqueue_many(&self, reqs: Vec<EnqueueRequest>, indexed: bool) -> Result<Vec<Enqueued>, JobError> {
        let now = self.now();
        let mut jobs = Vec::with_capacity(reqs.len());
        for (i, r) in reqs.into_iter().enumerate() {
            let chosen_id = r.id.is_some();
            let job = self.build(r, now).map_err(|e| match e {
                JobError::Invalid { field, message } if indexed => JobError::Invalid { field: format!("[{i}].{field}"), message },
                e => e,
            })?;
            jobs.push((job, chosen_id));
        }
        // Point reads of caller-chosen ids and dependencies that are not live (final jobs).
        let mut stored: BTreeMap<String, Job> = BTreeMap::new();
        {
            let mut probe: Vec<String> = Vec::new();
            {
                let idx = self.shared.index.lock();
                for (j, chosen) in &jobs {
                    if *chosen && !idx.live.contains_key(&j.id) {
                        probe.push(j.id.clone());
                    }
                    probe.extend(j.depends_on.iter().filter(|d| !idx.live.contains_key(*d)).cloned());
                }
            }
            if !probe.is_empty() {
                let found = self.shared.store.read_now(|txn| -> Result<Vec<Job>, JobError> {
                    let mut v = Vec::new();
                    for id in &probe {
                        if let Some(j) = store::get(txn, id)? {
                            v.push(j);
                        }
                    }
                    Ok(v)
                })?;
                stored.extend(found.into_iter().map(|j| (j.id.clone(), j)));
            }
        }
        // Decide, under the lock, which requests create jobs and reserve their ids/keys.
        let mut results: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        let mut fresh: Vec<Job> = Vec::new();
        {
            let mut idx = self.shared.index.lock();
            let batch_ids: HashSet<&str> = if jobs.iter().any(|(j, _)| !j.depends_on.is_empty()) {
                jobs.iter().map(|(j, _)| j.id.as_str()).collect()
            } else {
                HashSet::new()
            };
            for (i, (job, _)) in jobs.iter().enumerate() {
                for (k, d) in job.depends_on.iter().enumerate() {
                    if !idx.live.contains_key(d) && !stored.contains_key(d) && !batch_ids.contains(d.as_str()) {
                        let field = if indexed { format!("[{i}].depends_on[{k}]") } else { format!("depends_on[{k}]") };
                        // Nothing was reserved yet for this batch's earlier requests beyond
                        // the ones released below.
                        release(&mut idx, &fresh);
                        return Err(JobError::invalid(field, format!("no job with id '{d}'")));
                    }
                }
            }
            for (i, (mut job, chosen)) in jobs.into_iter().enumerate() {
                if chosen {
                    if let Some(l) = idx.live.get(&job.id) {
                        results[i] = Some(Enqueued { job_id: job.id.clone(), status: l.job.status, existing: true });
                        continue;
                    }
                    if let Some(s) = stored.get(&job.id) {
                        results[i] = Some(Enqueued { job_id: job.id.clone(), status: s.status, existing: true });
                        continue;
                    }
                    if idx.reserved.contains(&job.id) {
                        results[i] = Some(Enqueued { job_id: job.id.clone(), status: job.status, existing: true });
                        continue;
                    }
                }
                if let Some(key) = &job.unique_key {
                    let now_ms = now.timestamp_millis();
                    let held = idx.unique.get(key).and_then(|(holder, exp)| match exp {
                        Some(e) if *e > now_ms => Some(holder.clone()),
                        None => Some(holder.clone()),
                        _ => None,
                    });
                    if let Some(holder) = held {
                        let status = idx.live.get(&holder).map(|l| l.job.status).unwrap_or(JobStatus::Pending);
                        results[i] = Some(Enqueued { job_id: holder, status, existing: true });
                        continue;
                    }
                    let exp = job.unique_for.map(|s| now_ms + s as i64 * 1000);
                    idx.unique.insert(key.clone(), (job.id.clone(), exp));
                }
                idx.reserved.insert(job.id.clone());
                job.seq = self.shared.seq.fetch_add(1, Ordering::Relaxed);
                fresh.push(job);
            }
        }
        if !fresh.is_empty() {
            let encoded: Result<Vec<Encoded>, _> = fresh.iter().map(Encoded::of).collect();
            let written = match encoded {
                Ok(enc) => self.shared.store.write(move |txn| store::insert_new(txn, &enc).map_err(JobError::from)).await,
                Err(e) => Err(e.into()),
            };
            if let Err(e) = written {
                release(&mut self.shared.index.lock(), &fresh);
                return Err(e);
            }
        }
        let mut fresh_iter = fresh.iter();
        let answers = results
            .into_iter()
            .map(|r| {
                r.unwrap_or_else(|| {
                    let j = fresh_iter.next().expect("a fresh job per unanswered request");
                    Enqueued { job_id: j.id.clone(), status: j.status, existing: false }
                })
            })
            .collect();
        if !fresh.is_empty() {
            self.admit(fresh, now);
        }
        Ok(answers)
    }

    /// Announces freshly written jobs (events, hooks, metrics), then puts them into the
    /// index and wakes workers — in that order, so `job.enqueued` precedes `job.started`.
    fn admit(&self, fresh: Vec<Job>, now: DateTime<Utc>) {
        let hooks = self.shared.hooks.read().clone();
        for job in &fresh {
            metrics::count(Step::Enqueued, &job.queue, &job.name);
            self.emit("job.enqueued", job);
            for h in &hooks {
                h.on_enqueue(job);
            }
        }
        let mut ready = Vec::new();
        let mut doomed: Vec<(String, String)> = Vec::new();
        let mut any_scheduled = false;
        {
            // Ids of this batch, for dependencies inside it (rare: built only when needed).
            let fresh_ids: HashSet<String> =
                if fresh.iter().any(|j| !j.depends_on.is_empty()) { fresh.iter().map(|j| j.id.clone()).collect() } else { HashSet::new() };
            let mut idx = self.shared.index.lock();
            for job in fresh {
                idx.reserved.remove(&job.id);
                let mut blocked = HashSet::new();
                for d in &job.depends_on {
                    // A dependency in the same batch may be admitted after this job.
                    if idx.live.contains_key(d) || fresh_ids.contains(d) {
                        blocked.insert(d.clone());
                        continue;
                    }
                    // A dependency that is not live is final (or gone by retention: satisfied).
                    let st = self.shared.store.read_now(|txn| store::get(txn, d)).ok().flatten().map(|j| j.status);
                    if let Some(s @ (JobStatus::Dead | JobStatus::Cancelled)) = st {
                        doomed.push((job.id.clone(), format!("dependency {d} ended {}", s.as_str())));
                    }
                }
                let scheduled = job.status == JobStatus::Scheduled;
                match idx.insert(job, blocked, now) {
                    Some(r) => ready.push(r),
                    None => any_scheduled |= scheduled,
                }
            }
        }
        self.shared.notify_ready(&ready);
        if any_scheduled {
            self.shared.wake.notify_one();
        }
        if !doomed.is_empty() {
            let q = self.clone();
            tokio::spawn(async move {
                for (id, reason) in doomed {
                    let _ = q.finish(&id, Outcome::Cancel(reason), None).await;
                }
            });
        }
    }

    /// The job's current state (memory for live jobs, redb otherwise).
    pub async fn get_status(&self, id: &str) -> Result<Job, JobError> {
        if let Some(l) = self.shared.index.lock().live.get(id) {
            return Ok(l.job.clone());
        }
        let id2 = id.to_string();
        self.shared.store.read(move |txn| store::get(txn, &id2).map_err(JobError::from)).await?.ok_or_else(|| JobError::job_not_found(id))
    }

    /// Jobs newest first, filtered, with a cursor (the enqueue sequence of the last job
    /// returned, or of the last row examined when the scan budget ran out).
    pub async fn list(&self, q: ListQuery) -> Result<JobList, JobError> {
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
        let cursor = match q.cursor.as_deref() {
            Some(c) => Some(c.parse::<u64>().map_err(|_| JobError::invalid("cursor", "not a cursor returned by this API"))?),
            None => None,
        };
        let shared = self.shared.clone();
        let (queue, name) = (q.queue, q.name);
        self.shared
            .store
            .read(move |txn| -> Result<JobList, JobError> {
                let mut jobs = Vec::new();
                let mut scanned = 0usize;
                let last = store::scan_newest(txn, cursor, MAX_SCAN, |mut job| {
                    scanned += 1;
                    if let Some(l) = shared.index.lock().live.get(&job.id) {
                        job = l.job.clone();
                    }
                    let keep = status.is_none_or(|s| s == job.status)
                        && queue.as_ref().is_none_or(|q| *q == job.queue)
                        && name.as_ref().is_none_or(|n| *n == job.name);
                    if keep {
                        jobs.push(job);
                    }
                    jobs.len() < limit
                })?;
                let next_cursor = if jobs.len() == limit || scanned >= MAX_SCAN { last.map(|s| s.to_string()) } else { None };
                Ok(JobList { jobs, next_cursor })
            })
            .await
    }

    /// Cancels a job. A waiting job becomes `cancelled` at once (durably) and is never
    /// claimed; a running job gets its cancellation signal and ends `cancelled` when its
    /// run ends (cooperatively, or forcibly at its timeout / lease end). Cancelling a
    /// cancelled job is a no-op; a completed or dead job is a conflict.
    pub async fn cancel(&self, id: &str) -> Result<Job, JobError> {
        {
            let mut idx = self.shared.index.lock();
            if let Some(l) = idx.live.get_mut(id) {
                if l.slot == Slot::Running {
                    l.cancel_requested = true;
                    l.cancel.cancel();
                    return Ok(l.job.clone());
                }
            }
        }
        match self.finish(id, Outcome::Cancel("cancelled by request".into()), None).await {
            Err(JobError::Conflict(_)) => {
                let job = self.get_status(id).await?;
                match job.status {
                    JobStatus::Cancelled => Ok(job),
                    s if s.is_final() => Err(JobError::Conflict(format!("job {id} is already {}", s.as_str()))),
                    _ => Err(JobError::Conflict(format!("job {id} is being updated; try again"))),
                }
            }
            r => r,
        }
    }

    /// Runs a `failed` job now, or revives a `dead` (or cancelled) job with its attempts
    /// reset. Durable when this returns.
    pub async fn retry(&self, id: &str) -> Result<Job, JobError> {
        let now = self.now();
        let (job, revive, was) = {
            let mut idx = self.shared.index.lock();
            match idx.live.get(id) {
                Some(l) if l.busy => return Err(JobError::Conflict(format!("job {id} is being updated; try again"))),
                Some(l) if l.job.status == JobStatus::Failed => {
                    let mut job = l.job.clone();
                    job.run_at = now;
                    idx.detach(id);
                    if let Some(l) = idx.live.get_mut(id) {
                        l.busy = true;
                    }
                    (job, false, None)
                }
                Some(l) => {
                    return Err(JobError::Conflict(format!(
                        "job {id} is {}, only failed or dead jobs can be retried",
                        l.job.status.as_str()
                    )));
                }
                None => {
                    if !idx.reserved.insert(id.to_string()) {
                        return Err(JobError::Conflict(format!("job {id} is being updated; try again")));
                    }
                    drop(idx);
                    let found = self.shared.store.read_now(|txn| store::get(txn, id));
                    let mut job = match found {
                        Ok(Some(j)) if matches!(j.status, JobStatus::Dead | JobStatus::Cancelled) => j,
                        other => {
                            self.shared.index.lock().reserved.remove(id);
                            return match other {
                                Ok(Some(j)) => Err(JobError::Conflict(format!(
                                    "job {id} is {}, only failed or dead jobs can be retried",
                                    j.status.as_str()
                                ))),
                                Ok(None) => Err(JobError::job_not_found(id)),
                                Err(e) => Err(e.into()),
                            };
                        }
                    };
                    let was = Some(job.status);
                    job.status = JobStatus::Pending;
                    job.attempts = 0;
                    job.run_at = now;
                    job.finished_at = None;
                    job.reason = None;
                    job.result = None;
                    job.lease_until = None;
                    (job, true, was)
                }
            }
        };
        let enc = Encoded::of(&job);
        let written = match enc {
            Ok(enc) => self.shared.store.write(move |txn| store::update(txn, std::slice::from_ref(&enc)).map_err(JobError::from)).await,
            Err(e) => Err(e.into()),
        };
        let ready = {
            let mut idx = self.shared.index.lock();
            if revive {
                idx.reserved.remove(id);
                if written.is_ok() {
                    // It leaves the final count it was in (dead or cancelled).
                    let q = idx.finals.entry(job.queue.clone()).or_default();
                    let slot = if was == Some(JobStatus::Dead) { 1 } else { 2 };
                    q[slot] = q[slot].saturating_sub(1);
                    idx.insert(job.clone(), HashSet::new(), now)
                } else {
                    None
                }
            } else {
                if written.is_ok()
                    && let Some(l) = idx.live.get_mut(id)
                {
                    l.job.run_at = now;
                }
                idx.place(id, now)
            }
        };
        written?;
        self.shared.notify_ready(&ready.into_iter().collect::<Vec<_>>());
        self.get_status(id).await
    }

    /// Every known queue with counts per status, recent throughput and oldest wait.
    pub fn queues(&self) -> Vec<QueueInfo> {
        let now = self.now();
        let mut idx = self.shared.index.lock();
        let live = idx.live_counts();
        let mut names: Vec<String> = idx.queues.iter().cloned().collect();
        for p in &self.shared.pools {
            names.extend(p.queues.iter().cloned());
        }
        names.sort();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                let mut counts: BTreeMap<String, u64> = JobStatus::ALL.iter().map(|s| (s.as_str().to_string(), 0)).collect();
                let (by_status, oldest) = live.get(&name).cloned().unwrap_or_default();
                for (s, n) in by_status {
                    counts.insert(s.as_str().to_string(), n);
                }
                let f = idx.finals.get(&name).copied().unwrap_or_default();
                counts.insert("completed".into(), f[0]);
                counts.insert("dead".into(), f[1]);
                counts.insert("cancelled".into(), f[2]);
                let completed_last_minute = idx.throughput.get_mut(&name).map(|r| r.sum(now.timestamp())).unwrap_or(0);
                QueueInfo {
                    paused: idx.paused.contains(&name),
                    counts,
                    completed_last_minute,
                    oldest_waiting_seconds: oldest.map(|at| ((now.timestamp_millis() - at).max(0)) as f64 / 1000.0),
                    pools: self.shared.pools.iter().filter(|p| p.queues.contains(&name)).map(|p| p.name.clone()).collect(),
                    name,
                }
            })
            .collect()
    }

    /// Pauses (`true`) or resumes a queue, durably. Claims skip a paused queue; running
    /// jobs are not affected.
    pub async fn set_paused(&self, queue: &str, paused: bool) -> Result<QueueInfo, JobError> {
        check_queue("queue", queue)?;
        let meta = crate::store::codec::encode(&QueueMeta { paused })?;
        let name = queue.to_string();
        self.shared.store.write(move |txn| store::put_queue(txn, &name, &meta).map_err(JobError::from)).await?;
        {
            let mut idx = self.shared.index.lock();
            idx.queues.insert(queue.to_string());
            if paused {
                idx.paused.insert(queue.to_string());
            } else {
                idx.paused.remove(queue);
            }
        }
        if !paused {
            for p in &self.shared.pools {
                if p.queues.iter().any(|q| q == queue) {
                    p.notify.notify_waiters();
                    for _ in 0..p.count {
                        p.notify.notify_one();
                    }
                }
            }
            self.shared.external.notify_waiters();
        }
        Ok(self.queues().into_iter().find(|q| q.name == queue).expect("the queue was just recorded"))
    }

    /// Claims ready jobs for an external worker (see [`ClaimRequest`]). With `wait_ms`,
    /// waits for an enqueue instead of answering empty.
    pub async fn claim(&self, req: ClaimRequest) -> Result<Vec<Job>, JobError> {
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
        if !(1..=86400).contains(&lease) {
            return Err(JobError::invalid("lease_seconds", "must be from 1 to 86400"));
        }
        let wait = req.wait_ms.unwrap_or(0);
        if wait > 30_000 {
            return Err(JobError::invalid("wait_ms", "must be at most 30000"));
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_millis(wait);
        loop {
            let notified = self.shared.external.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let holder = Holder::Worker { id: &req.worker_id, lease_ms: lease as i64 * 1000 };
            let jobs = self.claim_with(&req.queues, NameFilter::External(req.names.as_deref()), holder, max);
            if !jobs.is_empty() || tokio::time::Instant::now() >= deadline {
                return Ok(jobs);
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Ok(Vec::new());
            }
        }
    }

    /// Claims under the lock (promoting due delayed jobs first) and reports the starts.
    pub(crate) fn claim_with(&self, queues: &[String], names: NameFilter<'_>, holder: Holder<'_>, max: usize) -> Vec<Job> {
        let now = self.now();
        let (jobs, promoted) = {
            let mut idx = self.shared.index.lock();
            let promoted = idx.promote_due(now);
            (idx.claim(queues, names, holder, max, now), promoted)
        };
        self.shared.notify_ready(&promoted);
        if !jobs.is_empty() {
            let hooks = self.shared.hooks.read().clone();
            for job in &jobs {
                metrics::count(Step::Started, &job.queue, &job.name);
                metrics::waited(&job.queue, (now - job.run_at).num_milliseconds() as f64 / 1000.0);
                self.emit("job.started", job);
                for h in &hooks {
                    h.on_start(job);
                }
            }
        }
        jobs
    }

    /// Extends an external worker's lease (and reports progress when given).
    pub async fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_seconds: Option<u64>,
        progress: Option<(f64, Option<&str>)>,
    ) -> Result<HeartbeatAck, JobError> {
        if let Some(s) = lease_seconds
            && !(1..=86400).contains(&s)
        {
            return Err(JobError::invalid("lease_seconds", "must be from 1 to 86400"));
        }
        if let Some((p, _)) = progress
            && !(0.0..=100.0).contains(&p)
        {
            return Err(JobError::invalid("progress", "must be from 0 to 100"));
        }
        let now = self.now();
        let ack = {
            let mut idx = self.shared.index.lock();
            let Some(l) = idx.live.get(id) else { return Err(self.not_live(id)) };
            if l.slot != Slot::Running {
                return Err(JobError::Conflict(format!("job {id} is {}, not running", l.job.status.as_str())));
            }
            check_holder(id, l.job.worker_id.as_deref(), worker_id)?;
            let cancel_requested = l.cancel_requested;
            let lease_ms = lease_seconds.map(|s| s as i64 * 1000).unwrap_or_else(|| {
                let started = l.job.started_at.unwrap_or(now);
                l.job.lease_until.map(|u| (u - started).num_milliseconds()).unwrap_or(DEFAULT_LEASE_SECONDS as i64 * 1000)
            });
            if !l.local {
                idx.extend_lease(id, now + Duration::milliseconds(lease_ms));
            }
            let l = idx.live.get_mut(id).expect("checked above");
            if l.local {
                // Not a lease: in-process runs are bounded by their timeout.
            } else {
                l.job.started_at = Some(now);
            }
            HeartbeatAck { job_id: id.to_string(), lease_until: l.job.lease_until, cancel_requested }
        };
        if let Some((p, stage)) = progress {
            self.report_progress(id, p, stage).await;
        }
        Ok(ack)
    }

    /// Why a job that is not live cannot be ended: not found, or already final.
    pub(super) fn not_live(&self, id: &str) -> JobError {
        match self.shared.store.read_now(|txn| store::get(txn, id)) {
            Ok(Some(j)) => JobError::Conflict(format!("job {id} is {}, not running", j.status.as_str())),
            Ok(None) => JobError::job_not_found(id),
            Err(e) => e.into(),
        }
    }

    /// Reports a running job's progress to the progress module, creating the job's
    /// progress record (id = job id) on the first report.
    pub(crate) async fn report_progress(&self, id: &str, percent: f64, stage: Option<&str>) {
        let first = {
            let mut idx = self.shared.index.lock();
            match idx.live.get_mut(id) {
                Some(l) if l.job.progress_id.is_none() => {
                    l.job.progress_id = Some(id.to_string());
                    Some((l.job.name.clone(), l.job.queue.clone()))
                }
                Some(_) => None,
                None => return,
            }
        };
        let p = &self.shared.progress;
        if let Some((name, queue)) = first {
            let req = crate::progress::NewProgress {
                id: Some(id.to_string()),
                stages: Vec::new(),
                metadata: serde_json::json!({"job_id": id, "job_name": name, "queue": queue}),
            };
            if let Err(e) = p.create(req).await {
                tracing::debug!(job = %id, error = %e, "job progress not created");
            }
        }
        let mut r = p.update(id, percent, stage).await;
        if stage.is_some() && matches!(&r, Err(crate::progress::ProgressError::Invalid { field, .. }) if field == "stage") {
            // The job's progress has no declared stages: keep the percent, drop the stage.
            r = p.update(id, percent, None).await;
        }
        if let Err(e) = r {
            tracing::debug!(job = %id, error = %e, "job progress not updated");
        }
    }

    /// Liveness touch of an in-process run (no lease to extend; see [`super::JobContext::heartbeat`]).
    pub(crate) fn touch(&self, id: &str) {
        let _ = self.shared.index.lock().live.contains_key(id);
    }
}

/// Releases the reservations taken for `fresh` when their write failed.
fn release(idx: &mut super::index::Index, fresh: &[Job]) {
    for j in fresh {
        idx.reserved.remove(&j.id);
        if let Some(k) = &j.unique_key
            && idx.unique.get(k).is_some_and(|(h, _)| *h == j.id)
        {
            idx.unique.remove(k);
        }
    }
}
