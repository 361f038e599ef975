//! Configuration of the job queue (`job_queue:` in hearth.yaml).

use crate::config::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings for the job queue (seed "Job Queue Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobQueueConfig {
    /// The broker. `embedded` (redb) is the only one built in; others (e.g. `redis`) come
    /// with their adapters and are refused at load until then.
    pub broker: BrokerConfig,
    /// In-process worker pools: name → how many concurrent handlers over which queues.
    pub workers: BTreeMap<String, WorkerPoolConfig>,
    /// Defaults applied to enqueued jobs.
    pub defaults: JobDefaults,
    /// Recurring jobs.
    pub scheduler: SchedulerConfig,
    /// How long finished jobs are kept.
    pub retention: JobRetention,
    /// Maximum size of a job payload, in bytes (JSON text).
    pub max_payload_bytes: usize,
    /// Seconds an in-process worker pool may make no progress while jobs it can run are
    /// ready before `/readyz` reports the job queue `degraded` (default 120).
    pub stall_seconds: u64,
    /// Longest long-poll of a claim (`wait_ms`) the server accepts, in milliseconds (0 to
    /// 30000, default 30000); lower it when a proxy in front of hearth cuts idle requests
    /// sooner.
    pub max_claim_wait_ms: u64,
}

impl Default for JobQueueConfig {
    fn default() -> Self {
        let mut workers = BTreeMap::new();
        workers.insert("default".to_string(), WorkerPoolConfig { count: 4, queues: vec!["default".into()] });
        JobQueueConfig {
            broker: BrokerConfig::default(),
            workers,
            defaults: JobDefaults::default(),
            scheduler: SchedulerConfig::default(),
            retention: JobRetention::default(),
            max_payload_bytes: 1024 * 1024,
            stall_seconds: 120,
            max_claim_wait_ms: super::validate::MAX_CLAIM_WAIT_MS,
        }
    }
}

/// Which broker holds the queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `embedded` (redb, one node) or `redis` (the cluster's Redis, `redis.url`, shared by
    /// every node).
    #[serde(rename = "type")]
    pub kind: String,
    /// Set from `REDIS_URL` with `redis.url`; the Redis broker uses `redis.url`.
    pub url: Option<String>,
    /// Key prefix for external brokers.
    pub queue_prefix: String,
}

impl Default for BrokerConfig {
    fn default() -> Self {
        BrokerConfig { kind: "embedded".into(), url: None, queue_prefix: "jobs".into() }
    }
}

/// One in-process worker pool.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WorkerPoolConfig {
    /// Concurrent handlers.
    pub count: usize,
    /// Queues this pool takes jobs from.
    pub queues: Vec<String>,
}

/// Defaults for new jobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobDefaults {
    /// Attempts before a job is dead.
    pub max_attempts: u32,
    /// Backoff type: `exponential`, `linear` or `fixed`.
    pub backoff: String,
    /// Seconds a run may take before it is failed (and its lease expires).
    pub timeout: u64,
}

impl Default for JobDefaults {
    fn default() -> Self {
        JobDefaults { max_attempts: 3, backoff: "exponential".into(), timeout: 300 }
    }
}

/// Recurring-job scheduler settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SchedulerConfig {
    /// Whether recurring and delayed jobs are promoted.
    pub enabled: bool,
    /// Default timezone for cron expressions (IANA name).
    pub timezone: String,
    /// Recurring jobs declared in configuration, by schedule name. They are upserted at
    /// start; schedules created over the API are kept alongside.
    pub schedules: BTreeMap<String, ScheduleConfig>,
    /// The shortest time allowed between two runs of one schedule, in seconds (default 60;
    /// 0 allows any). A cron expression that fires more often is refused.
    pub min_interval_seconds: u64,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { enabled: true, timezone: "UTC".into(), schedules: BTreeMap::new(), min_interval_seconds: 60 }
    }
}

/// Retention of finished jobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobRetention {
    /// Hours a completed (or cancelled) job is kept.
    pub completed_hours: u64,
    /// Days a dead job is kept.
    pub dead_days: u64,
}

impl Default for JobRetention {
    fn default() -> Self {
        JobRetention { completed_hours: 24, dead_days: 7 }
    }
}

impl JobQueueConfig {
    /// The configured default backoff type (`defaults.backoff`; validated at config load).
    /// Checks what serde cannot: pools with queues, the timezone, the backoff name.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !["embedded", "redis"].contains(&self.broker.kind.as_str()) {
            return Err(ConfigError::invalid(
                "job_queue.broker.type",
                format!("unknown broker '{}': use 'embedded' or 'redis'", self.broker.kind),
            ));
        }
        if self.max_claim_wait_ms > super::validate::MAX_CLAIM_WAIT_MS {
            let why = format!("must be at most {} ms", super::validate::MAX_CLAIM_WAIT_MS);
            return Err(ConfigError::invalid("job_queue.max_claim_wait_ms", &why));
        }
        for (name, pool) in &self.workers {
            if pool.queues.is_empty() {
                return Err(ConfigError::invalid(&format!("job_queue.workers.{name}.queues"), "must list at least one queue"));
            }
        }
        if self.scheduler.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::invalid("job_queue.scheduler.timezone", "unknown IANA timezone"));
        }
        if !["exponential", "linear", "fixed"].contains(&self.defaults.backoff.as_str()) {
            return Err(ConfigError::invalid("job_queue.defaults.backoff", "must be exponential, linear or fixed"));
        }
        if !(1..=super::limits::MAX_TIMEOUT_SECONDS).contains(&self.defaults.timeout) {
            let why = format!("must be from 1 to {} seconds", super::limits::MAX_TIMEOUT_SECONDS);
            return Err(ConfigError::invalid("job_queue.defaults.timeout", &why));
        }
        let horizon_hours = super::limits::MAX_HORIZON_SECONDS / 3600;
        if self.retention.completed_hours > horizon_hours {
            return Err(ConfigError::invalid("job_queue.retention.completed_hours", format!("must be at most {horizon_hours}")));
        }
        if self.retention.dead_days > horizon_hours / 24 {
            return Err(ConfigError::invalid("job_queue.retention.dead_days", format!("must be at most {}", horizon_hours / 24)));
        }
        for (name, sched) in &self.scheduler.schedules {
            let tz = sched.timezone.as_deref().unwrap_or(&self.scheduler.timezone);
            if let Err(why) = super::cron::check_cron(&sched.cron, tz, self.scheduler.min_interval_seconds, chrono::Utc::now()) {
                return Err(ConfigError::invalid(&format!("job_queue.scheduler.schedules.{name}.cron"), &why));
            }
        }
        Ok(())
    }

    /// The backoff kind named by `defaults.backoff`.
    pub fn default_backoff_kind(&self) -> super::model::BackoffKind {
        match self.defaults.backoff.as_str() {
            "linear" => super::model::BackoffKind::Linear,
            "fixed" => super::model::BackoffKind::Fixed,
            _ => super::model::BackoffKind::Exponential,
        }
    }
}

/// A recurring job declared in the configuration (`job_queue.scheduler.schedules.<name>`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Cron expression: 5 fields (minute precision) or 6–7 fields (with seconds, year).
    pub cron: String,
    /// IANA timezone the expression is read in (default `scheduler.timezone`).
    #[serde(default)]
    pub timezone: Option<String>,
    /// The job name to enqueue.
    pub job: String,
    /// Its payload.
    #[serde(default)]
    pub payload: serde_json::Value,
    /// Its queue (default `default`).
    #[serde(default)]
    pub queue: Option<String>,
    /// Its priority (default 5).
    #[serde(default)]
    pub priority: Option<u8>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_broker_is_embedded_or_redis() {
        let mut c = JobQueueConfig::default();
        assert!(c.validate().is_ok());
        c.broker.kind = "redis".into();
        assert!(c.validate().is_ok());
        c.broker.kind = "rabbitmq".into();
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains("job_queue.broker.type"), "{e}");
    }
}
