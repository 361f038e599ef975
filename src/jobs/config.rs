//! Configuration of the job queue (`job_queue:` in hearth.yaml).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings for the job queue (seed "Job Queue Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct JobQueueConfig {
    /// The broker. `embedded` (redb) is the default; `redis` is reserved for the adapter.
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
        }
    }
}

/// Which broker holds the queue.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct BrokerConfig {
    /// `embedded` or `redis`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Broker URL (`REDIS_URL`), unused by the embedded broker.
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
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        SchedulerConfig { enabled: true, timezone: "UTC".into() }
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
