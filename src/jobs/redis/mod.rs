//! The Redis broker: the job queue of a hearth cluster, shared by every node through one
//! redis-server (`job_queue.broker.type: redis`, or `REDIS_URL`).
//!
//! - **Every state change is one Lua script** ([`scripts`]), so the ready, delayed and
//!   active sets, the listing indexes and the job hashes change together, whatever the
//!   number of nodes. Claims, heartbeats, promotions and dependency cascades are decided
//!   inside the scripts. Ends of runs, lease expiries, cancels and retries are decided in
//!   Rust by [`next_state`] (one life cycle for every broker): the broker reads the job,
//!   decides, and the `APPLY` script writes the new state only if the job's revision is
//!   the one read — otherwise it reads and decides again (a cancel request or a claim by
//!   another node came in between).
//! - **Leases, not BRPOP**: a claim moves the job to the active set scored by its lease
//!   end (an in-process run's lease is its timeout); any node's tick reaps ended leases, so
//!   the jobs of a node that died run elsewhere once their leases end.
//! - **Durability** is redis-server's: with `appendonly yes` and `appendfsync always` a
//!   script's effects are on disk before the client gets the answer, so an acknowledged
//!   enqueue or complete survives `kill -9` of the node and of redis-server (see README,
//!   "Several nodes on Redis", for `everysec` and failover).
//! - **Cron**: each slot's job id is derived from the schedule and the slot, and an
//!   enqueue with an existing id answers that job, so several nodes firing the same slot
//!   give one run.
//!
//! Every key shares the hash tag `{jobs}` (one Redis Cluster slot, should the cluster mode
//! ever be supported).

mod broker;
mod notices;
mod record;
mod scripts;

use self::record::{RawRow, Row, Write, apply_args, ms};
use crate::cluster::{Redis, RedisError};
use crate::jobs::broker::{Admitted, Cancelled, Claimed, Ended, Finished, Holder, ListFilter, Names, NewJob, QueueStats, Ready, Tick};
use crate::jobs::error::JobError;
use crate::jobs::lifecycle::{Outcome, check_holder, next_state};
use crate::jobs::model::{Enqueued, Job, JobList, JobStatus, Schedule};
use chrono::{DateTime, Utc};

/// Jobs a tick promotes or reaps at most (the next tick follows at once when more are due).
const TICK_LIMIT: usize = 1000;
/// Dependants one cascade step cancels at most.
const CASCADE_STEP: usize = 1000;
/// Rows a listing examines at most before it returns a cursor.
const LIST_SCAN: usize = 2000;
/// Final jobs one retention pass deletes per status and script call.
const RETENTION_STEP: usize = 500;
/// Times an end is decided again when its job changed between the read and the write.
const DECIDE_ROUNDS: usize = 4;

impl From<RedisError> for JobError {
    fn from(e: RedisError) -> Self {
        match e {
            RedisError::Unavailable(m) => JobError::Unavailable(m),
            RedisError::NotConfigured => JobError::Unavailable(e.to_string()),
            RedisError::Command(m) => JobError::Store(crate::store::StoreError::Db(format!("redis: {m}"))),
        }
    }
}

/// The Redis broker. Cheap to clone.
#[derive(Clone)]
pub struct RedisBroker {
    redis: Redis,
    prefix: String,
}

/// One end to decide: the job, how it ends, and who reports it.
struct End {
    id: String,
    outcome: Outcome,
    /// As in the embedded broker: `Some(worker)` when the run's holder ends it.
    running: Option<Option<String>>,
}

impl RedisBroker {
    /// The broker on `redis`, under its key prefix.
    pub fn new(redis: Redis) -> RedisBroker {
        let prefix = redis.key("{jobs}:");
        RedisBroker { redis, prefix }
    }

    async fn run<T: ::redis::FromRedisValue>(&self, script: &::redis::Script, args: &[Vec<u8>]) -> Result<T, JobError> {
        Ok(self.redis.script(script, std::slice::from_ref(&self.prefix), args).await?)
    }

    async fn read(&self, ids: &[String]) -> Result<Vec<Option<Row>>, JobError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let args: Vec<Vec<u8>> = ids.iter().map(|i| i.as_bytes().to_vec()).collect();
        let raw: Vec<RawRow> = self.run(&scripts::READ, &args).await?;
        raw.into_iter().map(Row::decode).collect()
    }

    async fn read_one(&self, id: &str) -> Result<Option<Row>, JobError> {
        Ok(self.read(&[id.to_string()]).await?.pop().flatten())
    }

    async fn read_jobs(&self, ids: &[String]) -> Result<Vec<Job>, JobError> {
        Ok(self.read(ids).await?.into_iter().flatten().map(|r| r.job).collect())
    }

    /// Writes decided states; one code per write (1 written, 0 changed meanwhile, -1 gone),
    /// the jobs made ready, and whether dependants wait to be cancelled.
    async fn apply(&self, writes: &[Write<'_>], now: DateTime<Utc>) -> Result<(Vec<i64>, Vec<Ready>, bool), JobError> {
        let mut args = vec![ms(now).to_string().into_bytes()];
        for w in writes {
            apply_args(w, &mut args)?;
        }
        let (codes, ready, cascade): (Vec<i64>, Vec<String>, i64) = self.run(&scripts::APPLY, &args).await?;
        Ok((codes, self.ready(ready), cascade > 0))
    }

    /// Decides and writes ends, deciding again those whose job changed in between.
    async fn finish_ends(&self, ends: Vec<End>, now: DateTime<Utc>) -> Finished {
        let mut out = Finished { results: ends.iter().map(|_| Err(JobError::Conflict(String::new()))).collect(), ..Default::default() };
        let mut open: Vec<usize> = (0..ends.len()).collect();
        for _ in 0..DECIDE_ROUNDS {
            if open.is_empty() {
                break;
            }
            let ids: Vec<String> = open.iter().map(|&i| ends[i].id.clone()).collect();
            let rows = match self.read(&ids).await {
                Ok(r) => r,
                Err(e) => {
                    for &i in &open {
                        out.results[i] = Err(e.clone());
                    }
                    return out;
                }
            };
            let mut decided: Vec<(usize, Box<Job>, String, &'static str)> = Vec::new();
            for (&i, row) in open.iter().zip(rows) {
                match decide(&ends[i], row, now) {
                    Ok((next, rev)) => {
                        let guard = if matches!(ends[i].outcome, Outcome::Expired) { "expired" } else { "-" };
                        decided.push((i, next, rev, guard));
                    }
                    Err(e) => out.results[i] = Err(e),
                }
            }
            let writes: Vec<Write<'_>> = decided.iter().map(|(_, next, rev, guard)| Write { next, rev, guard: *guard }).collect();
            let applied = if writes.is_empty() { Ok((Vec::new(), Vec::new(), false)) } else { self.apply(&writes, now).await };
            drop(writes);
            let mut again = Vec::new();
            match applied {
                Err(e) => {
                    for (i, ..) in decided {
                        out.results[i] = Err(e.clone());
                    }
                }
                Ok((codes, ready, cascading)) => {
                    out.ready.extend(ready);
                    out.cascading |= cascading;
                    for ((i, next, ..), code) in decided.into_iter().zip(codes) {
                        let end = &ends[i];
                        out.results[i] = match code {
                            1 => Ok(Ended {
                                job: next,
                                was_running: end.running.is_some() || matches!(end.outcome, Outcome::Expired),
                                failed_run: end.outcome.is_failed_run(),
                            }),
                            -1 => Err(JobError::job_not_found(&end.id)),
                            _ => {
                                again.push(i);
                                Err(JobError::Conflict(format!("job {} is being updated; try again", end.id)))
                            }
                        };
                    }
                }
            }
            open = again;
        }
        out
    }

    async fn claim_jobs(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Claimed, JobError> {
        if max == 0 || queues.is_empty() {
            return Ok(Claimed::default());
        }
        let (kind, worker, lease) = match holder {
            Holder::InProcess => ("i", crate::jobs::broker::IN_PROCESS, 0),
            Holder::Worker { id, lease_ms } => ("w", id, lease_ms),
        };
        let mut args = vec![
            ms(now).to_string().into_bytes(),
            kind.into(),
            worker.into(),
            lease.to_string().into_bytes(),
            max.to_string().into_bytes(),
        ];
        let (mode, list) = match names {
            Names::Only(l) => ("o", l),
            Names::Except(l) => ("x", l),
        };
        args.push(mode.into());
        push_list(&mut args, list.iter().map(String::as_str));
        push_list(&mut args, queues.iter().map(String::as_str));
        push_list(&mut args, crate::jobs::reserved::RESERVED_PREFIXES.iter().copied());
        push_list(&mut args, crate::jobs::reserved::RESERVED_NAMES.iter().copied());
        let (rows, ready, more): (Vec<RawRow>, Vec<String>, i64) = self.run(&scripts::CLAIM, &args).await?;
        let jobs = rows.into_iter().map(Row::decode).filter_map(Result::transpose).map(|r| r.map(|r| r.job)).collect::<Result<_, _>>()?;
        Ok(Claimed { jobs, ready: self.ready(ready), more: more > 0 })
    }

    async fn enqueue_jobs(
        &self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &(dyn Fn(&Job) + Send + Sync),
    ) -> Result<Admitted, JobError> {
        let mut args = vec![ms(now).to_string().into_bytes()];
        for n in &jobs {
            let j = &n.job;
            let json = serde_json::to_vec(j).map_err(|e| JobError::Store(crate::store::StoreError::Codec(e.to_string())))?;
            args.extend([
                j.id.as_bytes().to_vec(),
                if n.chosen_id { b"1".to_vec() } else { b"0".to_vec() },
                j.unique_key.clone().unwrap_or_default().into_bytes(),
                j.unique_for.map(|s| s.to_string()).unwrap_or_default().into_bytes(),
                j.queue.as_bytes().to_vec(),
                j.name.as_bytes().to_vec(),
                j.priority.min(9).to_string().into_bytes(),
                ms(j.run_at).to_string().into_bytes(),
                j.timeout.min(crate::jobs::limits::MAX_TIMEOUT_SECONDS).to_string().into_bytes(),
                json,
                j.depends_on.len().to_string().into_bytes(),
            ]);
            args.extend(j.depends_on.iter().map(|d| d.as_bytes().to_vec()));
        }
        let reply: ::redis::Value = self.run(&scripts::ENQUEUE, &args).await?;
        if let Some((i, k, dep)) = missing_dependency(&reply) {
            return Err(JobError::invalid(format!("[{i}].depends_on[{k}]"), format!("no job with id '{dep}'")));
        }
        type Reply = (Vec<(i64, String, String)>, Vec<String>, Vec<String>, Vec<(String, i64)>);
        let (answers, ready, cancelled, fresh): Reply = ::redis::from_redis_value(reply)
            .map_err(|e| JobError::Store(crate::store::StoreError::Corrupt(format!("enqueue reply: {e}"))))?;
        let mut by_id: std::collections::HashMap<&str, &NewJob> = jobs.iter().map(|n| (n.job.id.as_str(), n)).collect();
        let answers: Vec<Enqueued> = answers
            .into_iter()
            .map(|(existing, id, st)| Enqueued {
                status: JobStatus::parse(&st).unwrap_or(JobStatus::Pending),
                job_id: id,
                existing: existing == 1,
            })
            .collect();
        for (id, seq) in &fresh {
            if let Some(n) = by_id.remove(id.as_str()) {
                let status = answers.iter().find(|a| a.job_id == *id && !a.existing).map(|a| a.status).unwrap_or(n.job.status);
                announce(&Job { seq: *seq as u64, status, ..n.job.clone() });
            }
        }
        let cancelled = self
            .read_jobs(&cancelled)
            .await?
            .into_iter()
            .map(|j| Ended { job: Box::new(j), was_running: false, failed_run: false })
            .collect();
        Ok(Admitted { answers, ready: self.ready(ready), cancelled })
    }

    async fn cancel_job(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<Cancelled, JobError> {
        for _ in 0..DECIDE_ROUNDS {
            let row = self.read_one(id).await?.ok_or_else(|| JobError::job_not_found(id))?;
            if row.job.status == JobStatus::Running {
                let done: i64 = self.run(&scripts::REQUEST_CANCEL, &[id.as_bytes().to_vec(), row.rev.clone().into_bytes()]).await?;
                if done == 1 {
                    return Ok(Cancelled::Requested(row.job));
                }
                continue;
            }
            let end = End { id: id.to_string(), outcome: Outcome::Cancel(reason.to_string()), running: None };
            let mut f = self.finish_ends(vec![end], now).await;
            return match f.results.pop().expect("one result per end") {
                Ok(e) => {
                    f.results.push(Ok(e));
                    Ok(Cancelled::Ended(f))
                }
                Err(e) => Err(e),
            };
        }
        Err(JobError::Conflict(format!("job {id} is being updated; try again")))
    }

    async fn retry_job(&self, id: &str, now: DateTime<Utc>) -> Result<(Job, Option<Ready>), JobError> {
        for _ in 0..DECIDE_ROUNDS {
            let row = self.read_one(id).await?.ok_or_else(|| JobError::job_not_found(id))?;
            let mut job = row.job;
            let guard = match job.status {
                JobStatus::Failed => "-",
                JobStatus::Dead | JobStatus::Cancelled => {
                    job.status = JobStatus::Pending;
                    job.attempts = 0;
                    job.finished_at = None;
                    job.reason = None;
                    job.result = None;
                    job.lease_until = None;
                    "revive"
                }
                s => return Err(JobError::Conflict(format!("job {id} is {}, only failed or dead jobs can be retried", s.as_str()))),
            };
            job.run_at = now;
            let (codes, ready, _) = self.apply(&[Write { next: &job, rev: &row.rev, guard }], now).await?;
            match codes.first() {
                Some(1) => {
                    let job = self.read_one(id).await?.map(|r| r.job).unwrap_or(job);
                    return Ok((job, ready.into_iter().next()));
                }
                Some(-1) => return Err(JobError::job_not_found(id)),
                _ => continue,
            }
        }
        Err(JobError::Conflict(format!("job {id} is being updated; try again")))
    }

    async fn maintain(&self, now: DateTime<Utc>) -> Result<Tick, JobError> {
        let args = vec![ms(now).to_string().into_bytes(), TICK_LIMIT.to_string().into_bytes()];
        let (ready, expired, next_delayed, next_lease): (Vec<String>, Vec<String>, String, String) =
            self.run(&scripts::TICK, &args).await?;
        let mut tick = Tick { ready: self.ready(ready), ..Default::default() };
        if !expired.is_empty() {
            let ends = expired.into_iter().map(|id| End { id, outcome: Outcome::Expired, running: None }).collect();
            let f = self.finish_ends(ends, now).await;
            tick.ready.extend(f.ready);
            for r in f.results {
                match r {
                    Ok(e) => tick.ended.push(e),
                    Err(e) => tracing::debug!(error = %e, "lease expiry skipped"),
                }
            }
        }
        let (cancelled, ready, left): (Vec<String>, Vec<String>, i64) =
            self.run(&scripts::CASCADE, &[ms(now).to_string().into_bytes(), CASCADE_STEP.to_string().into_bytes()]).await?;
        tick.ready.extend(self.ready(ready));
        tick.ended.extend(self.read_jobs(&cancelled).await?.into_iter().map(|j| Ended {
            job: Box::new(j),
            was_running: false,
            failed_run: false,
        }));
        let full = tick.ended.len() >= TICK_LIMIT;
        tick.next_due = if left > 0 || full {
            Some(now)
        } else {
            [next_delayed, next_lease]
                .iter()
                .filter_map(|s| s.parse::<f64>().ok())
                .map(|m| m as i64)
                .min()
                .and_then(DateTime::from_timestamp_millis)
        };
        Ok(tick)
    }

    async fn list_jobs(&self, f: ListFilter) -> Result<JobList, JobError> {
        let cursor = match f.cursor.as_deref() {
            Some(c) => c.parse::<u64>().map_err(|_| JobError::invalid("cursor", "not a cursor returned by this API"))?.to_string(),
            None => String::new(),
        };
        let index = match (&f.queue, f.status) {
            (Some(q), Some(s)) => format!("qs:{q}:{}", s.as_str()),
            (Some(q), None) => format!("q:{q}"),
            (None, Some(s)) => format!("s:{}", s.as_str()),
            (None, None) => "all".into(),
        };
        let args = vec![
            index.into_bytes(),
            cursor.into_bytes(),
            f.limit.max(1).to_string().into_bytes(),
            f.name.clone().unwrap_or_default().into_bytes(),
            LIST_SCAN.to_string().into_bytes(),
        ];
        let (rows, next): (Vec<RawRow>, String) = self.run(&scripts::LIST, &args).await?;
        let jobs = rows.into_iter().map(Row::decode).filter_map(Result::transpose).map(|r| r.map(|r| r.job)).collect::<Result<_, _>>()?;
        let next_cursor = next.parse::<f64>().ok().map(|s| (s as u64).to_string());
        Ok(JobList { jobs, next_cursor })
    }

    async fn stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, JobError> {
        let rows: Vec<Vec<String>> = self.run(&scripts::STATS, &[ms(now).to_string().into_bytes()]).await?;
        let num = |s: &str| s.parse::<u64>().unwrap_or(0);
        let mut out: Vec<QueueStats> = rows
            .into_iter()
            .filter(|r| r.len() == 11)
            .map(|r| QueueStats {
                name: r[0].clone(),
                paused: r[1] == "1",
                counts: std::array::from_fn(|i| num(&r[2 + i])),
                completed_last_minute: num(&r[9]),
                oldest_ready_at: r[10].parse::<f64>().ok().and_then(|m| DateTime::from_timestamp_millis(m as i64)),
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn retention(&self, completed_before: DateTime<Utc>, dead_before: DateTime<Utc>) -> Result<usize, JobError> {
        let args = vec![
            ms(completed_before).to_string().into_bytes(),
            ms(dead_before).to_string().into_bytes(),
            RETENTION_STEP.to_string().into_bytes(),
        ];
        let mut total = 0;
        loop {
            let n: i64 = self.run(&scripts::RETENTION, &args).await?;
            total += n as usize;
            if (n as usize) < RETENTION_STEP {
                return Ok(total);
            }
        }
    }

    /// Deletes up to `limit` final jobs of `queue` in `status` (the bulk purge).
    pub async fn delete_queue_jobs(&self, queue: &str, status: JobStatus, limit: usize) -> Result<usize, JobError> {
        if limit == 0 {
            return Ok(0);
        }
        let args = vec![queue.as_bytes().to_vec(), status.as_str().as_bytes().to_vec(), limit.to_string().into_bytes()];
        let n: i64 = self.run(&scripts::DELETE_JOBS, &args).await?;
        Ok(n as usize)
    }

    fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }
}

/// Decides one end against the job as read: the next state and the revision it was read
/// at, or why the end is refused.
fn decide(end: &End, row: Option<Row>, now: DateTime<Utc>) -> Result<(Box<Job>, String), JobError> {
    let id = end.id.as_str();
    let row = row.ok_or_else(|| JobError::job_not_found(id))?;
    let running = row.job.status == JobStatus::Running;
    match (&end.outcome, running) {
        (Outcome::Complete(_) | Outcome::Fail { .. } | Outcome::Expired, false) => {
            return Err(JobError::Conflict(format!("job {id} is {}, not running", row.job.status.as_str())));
        }
        (Outcome::Cancel(_), true) if end.running.is_none() => {
            return Err(JobError::Conflict(format!("job {id} is running; it was signalled to cancel")));
        }
        (Outcome::Cancel(_), false) if row.job.status.is_final() => {
            return Err(JobError::Conflict(format!("job {id} is {}, not running", row.job.status.as_str())));
        }
        (Outcome::Expired, true) if row.job.lease_until.is_some_and(|u| u > now) => {
            return Err(JobError::Conflict(format!("job {id}: its lease was extended")));
        }
        _ => {}
    }
    if let Some(Some(w)) = &end.running {
        check_holder(id, row.job.worker_id.as_deref(), Some(w))?;
    }
    Ok((Box::new(next_state(&row.job, &end.outcome, row.cancel_requested, now)), row.rev))
}

fn push_list<'a>(args: &mut Vec<Vec<u8>>, items: impl ExactSizeIterator<Item = &'a str>) {
    args.push(items.len().to_string().into_bytes());
    args.extend(items.map(|s| s.as_bytes().to_vec()));
}

/// The `{'missing', i, k, dep}` answer of `ENQUEUE`, if it is one.
fn missing_dependency(v: &::redis::Value) -> Option<(i64, i64, String)> {
    let ::redis::Value::Array(items) = v else { return None };
    let first: String = ::redis::from_redis_value_ref(items.first()?).ok()?;
    if first != "missing" || items.len() != 4 {
        return None;
    }
    let get = |i: usize| ::redis::from_redis_value_ref::<String>(&items[i]).ok();
    Some((get(1)?.parse().ok()?, get(2)?.parse().ok()?, get(3)?))
}

/// `<next_run ms>|<cron>`: what the fired-slot check compares.
fn schedule_key(s: &Schedule) -> String {
    format!("{}|{}", s.next_run.map(|t| ms(t).to_string()).unwrap_or_default(), s.cron)
}

fn schedule_json(s: &Schedule) -> Result<String, JobError> {
    serde_json::to_string(s).map_err(|e| JobError::Store(crate::store::StoreError::Codec(e.to_string())))
}

#[cfg(test)]
mod tests;
