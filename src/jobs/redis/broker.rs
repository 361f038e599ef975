//! [`JobBroker`] for [`RedisBroker`]: each method hands over to the broker's own (in
//! `mod.rs`) or runs one command.

use super::record::ms;
use super::{End, RedisBroker, schedule_json, schedule_key, scripts};
use crate::jobs::broker::{
    Admitted, Cancelled, Claimed, Finished, Holder, JobBroker, ListFilter, Names, NewJob, ProgressNote, QueueStats, Ready, RunEnd, Tick,
};
use crate::jobs::error::JobError;
use crate::jobs::model::{HeartbeatAck, Job, JobList, JobStatus, Schedule};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

impl JobBroker for RedisBroker {
    async fn enqueue<'a>(
        &'a self,
        jobs: Vec<NewJob>,
        now: DateTime<Utc>,
        announce: &'a (dyn Fn(&Job) + Send + Sync),
    ) -> Result<Admitted, JobError> {
        self.enqueue_jobs(jobs, now, announce).await
    }

    async fn claim(
        &self,
        queues: &[String],
        names: Names<'_>,
        holder: Holder<'_>,
        max: usize,
        now: DateTime<Utc>,
    ) -> Result<Claimed, JobError> {
        self.claim_jobs(queues, names, holder, max, now).await
    }

    async fn heartbeat(
        &self,
        id: &str,
        worker_id: Option<&str>,
        lease_ms: Option<i64>,
        now: DateTime<Utc>,
    ) -> Result<HeartbeatAck, JobError> {
        let args = vec![
            id.as_bytes().to_vec(),
            worker_id.unwrap_or_default().as_bytes().to_vec(),
            lease_ms.map(|l| l.to_string()).unwrap_or_default().into_bytes(),
            ms(now).to_string().into_bytes(),
        ];
        let r: Vec<String> = self.run(&scripts::HEARTBEAT, &args).await?;
        match r.first().map(String::as_str) {
            Some("ok") => Ok(HeartbeatAck {
                job_id: id.to_string(),
                lease_until: r.get(1).and_then(|s| s.parse::<f64>().ok()).and_then(|m| DateTime::from_timestamp_millis(m as i64)),
                cancel_requested: r.get(2).is_some_and(|c| c == "1"),
            }),
            Some("state") => Err(JobError::Conflict(format!("job {id} is {}, not running", r.get(1).map(String::as_str).unwrap_or("?")))),
            Some("holder") => Err(JobError::Conflict(format!("job {id} is leased by another worker"))),
            _ => Err(JobError::job_not_found(id)),
        }
    }

    async fn finish(&self, ends: Vec<RunEnd>, now: DateTime<Utc>) -> Finished {
        let ends = ends.into_iter().map(|e| End { id: e.id, outcome: e.outcome.into(), running: Some(e.worker_id) }).collect();
        self.finish_ends(ends, now).await
    }

    async fn cancel(&self, id: &str, reason: &str, now: DateTime<Utc>) -> Result<Cancelled, JobError> {
        self.cancel_job(id, reason, now).await
    }

    async fn retry(&self, id: &str, now: DateTime<Utc>) -> Result<(Job, Option<Ready>), JobError> {
        self.retry_job(id, now).await
    }

    async fn note_progress(&self, id: &str) -> Result<ProgressNote, JobError> {
        let r: Vec<String> = self.run(&scripts::NOTE_PROGRESS, &[id.as_bytes().to_vec()]).await?;
        Ok(match r.first().map(String::as_str) {
            Some("first") => {
                ProgressNote::First { name: r.get(1).cloned().unwrap_or_default(), queue: r.get(2).cloned().unwrap_or_default() }
            }
            Some("again") => ProgressNote::Again,
            _ => ProgressNote::NotLive,
        })
    }

    async fn tick(&self, now: DateTime<Utc>) -> Result<Tick, JobError> {
        self.maintain(now).await
    }

    async fn get(&self, id: &str) -> Result<Option<Job>, JobError> {
        Ok(self.read_one(id).await?.map(|r| r.job))
    }

    async fn list(&self, filter: ListFilter) -> Result<JobList, JobError> {
        self.list_jobs(filter).await
    }

    async fn queue_stats(&self, now: DateTime<Utc>) -> Result<Vec<QueueStats>, JobError> {
        self.stats(now).await
    }

    async fn set_paused(&self, queue: &str, paused: bool) -> Result<(), JobError> {
        let mut p = ::redis::pipe();
        p.atomic().cmd("SADD").arg(self.key("queues")).arg(queue);
        p.cmd(if paused { "SADD" } else { "SREM" }).arg(self.key("paused")).arg(queue);
        Ok(self.redis.exec(&p).await?)
    }

    async fn delete_finished(
        &self,
        completed_before: DateTime<Utc>,
        dead_before: DateTime<Utc>,
        _now: DateTime<Utc>,
    ) -> Result<usize, JobError> {
        self.retention(completed_before, dead_before).await
    }

    async fn delete_jobs(&self, queue: &str, status: JobStatus, limit: usize) -> Result<usize, JobError> {
        self.delete_queue_jobs(queue, status, limit).await
    }

    async fn schedules(&self) -> Result<Vec<Schedule>, JobError> {
        let all: Vec<(String, String)> = self.redis.query(::redis::cmd("HGETALL").arg(self.key("sched"))).await?;
        let mut out: Vec<Schedule> = all
            .into_iter()
            .filter_map(|(name, json)| {
                serde_json::from_str(&json).map_err(|e| tracing::warn!(schedule = %name, error = %e, "unreadable schedule in redis")).ok()
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    async fn put_schedule(&self, schedule: Schedule) -> Result<(), JobError> {
        let json = schedule_json(&schedule)?;
        let mut p = ::redis::pipe();
        p.atomic().cmd("HSET").arg(self.key("sched")).arg(&schedule.name).arg(json);
        p.cmd("HSET").arg(self.key("schedkey")).arg(&schedule.name).arg(schedule_key(&schedule));
        Ok(self.redis.exec(&p).await?)
    }

    async fn delete_schedule(&self, name: &str) -> Result<bool, JobError> {
        let mut p = ::redis::pipe();
        p.atomic().cmd("HDEL").arg(self.key("sched")).arg(name);
        p.cmd("HDEL").arg(self.key("schedkey")).arg(name);
        let (n, _): (i64, i64) = self.redis.exec(&p).await?;
        Ok(n > 0)
    }

    fn remote_ready(&self, shutdown: CancellationToken) -> Option<mpsc::UnboundedReceiver<Vec<Ready>>> {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(super::notices::relay_ready(self.redis.clone(), self.key("ready"), tx, shutdown));
        Some(rx)
    }

    async fn record_fired(&self, next: Schedule, slot: DateTime<Utc>) -> Result<bool, JobError> {
        let expected = format!("{}|{}", ms(slot), next.cron);
        let args = vec![
            next.name.clone().into_bytes(),
            expected.into_bytes(),
            schedule_json(&next)?.into_bytes(),
            schedule_key(&next).into_bytes(),
        ];
        let stored: i64 = self.redis.script(&scripts::RECORD_FIRED, std::slice::from_ref(&self.prefix), &args).await?;
        Ok(stored == 1)
    }
}
