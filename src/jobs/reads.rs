//! Reads: one job, a listing, and the state of every queue.

use super::JobQueue;
use super::broker::JobBroker;
use super::error::JobError;
use super::model::{Job, JobList, JobStatus, ListQuery, QueueInfo};
use super::validate;
use std::collections::BTreeMap;

impl JobQueue {
    /// The job's current state.
    pub async fn get_status(&self, id: &str) -> Result<Job, JobError> {
        self.shared.broker.get(id).await?.ok_or_else(|| JobError::job_not_found(id))
    }

    /// Jobs newest first, filtered, with a cursor to the next page.
    pub async fn list(&self, q: ListQuery) -> Result<JobList, JobError> {
        self.shared.broker.list(validate::list(q)?).await
    }

    /// Every known queue (with jobs, settings or an in-process pool) with counts per
    /// status, recent throughput and oldest wait.
    pub async fn queues(&self) -> Result<Vec<QueueInfo>, JobError> {
        let now = self.now();
        let mut stats = self.shared.broker.queue_stats(now).await?;
        for p in &self.shared.pools {
            for q in &p.queues {
                if !stats.iter().any(|s| s.name == *q) {
                    stats.push(super::broker::QueueStats { name: q.clone(), ..Default::default() });
                }
            }
        }
        stats.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(stats
            .into_iter()
            .map(|s| {
                let counts: BTreeMap<String, u64> =
                    JobStatus::ALL.iter().zip(s.counts).map(|(st, n)| (st.as_str().to_string(), n)).collect();
                QueueInfo {
                    paused: s.paused,
                    counts,
                    completed_last_minute: s.completed_last_minute,
                    oldest_waiting_seconds: s.oldest_ready_at.map(|at| ((now - at).num_milliseconds().max(0)) as f64 / 1000.0),
                    pools: self.shared.pools.iter().filter(|p| p.queues.contains(&s.name)).map(|p| p.name.clone()).collect(),
                    name: s.name,
                }
            })
            .collect())
    }
}
