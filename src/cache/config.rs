//! Configuration of the cache (`cache:` in hearth.yaml).

use serde::{Deserialize, Serialize};

/// Settings for the two-tier cache (seed "Cache Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CacheConfig {
    /// In-memory tier.
    pub l1: L1Config,
    /// On-disk tier.
    pub l2: L2Config,
    /// Compression of L2 values.
    pub compression: CompressionConfig,
    /// Whether per-tier metrics are exported.
    pub metrics: MetricsToggle,
    /// Largest value accepted, in bytes.
    pub max_entry_bytes: usize,
    /// Longest TTL accepted, seconds (default ten years); longer ones are rejected as invalid.
    pub max_ttl: u64,
    /// The Redis-protocol endpoint.
    pub resp: RespConfig,
}

/// `cache.resp`: the cache over the Redis protocol (`src/resp/`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RespConfig {
    /// Address to listen on, e.g. `127.0.0.1:6380`; unset (the default): off. Without API
    /// keys only a loopback address is accepted.
    pub bind: Option<String>,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            l1: L1Config::default(),
            l2: L2Config::default(),
            compression: CompressionConfig::default(),
            metrics: MetricsToggle { enabled: true },
            max_entry_bytes: 8 * 1024 * 1024,
            max_ttl: 10 * 365 * 24 * 3600,
            resp: RespConfig::default(),
        }
    }
}

/// L1 settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct L1Config {
    /// Whether L1 is used.
    pub enabled: bool,
    /// Most entries held (the seed's meaning of `max_size`).
    pub max_size: u64,
    /// Most bytes held (keys plus values plus a fixed overhead per entry).
    pub max_bytes: u64,
    /// Default TTL of L1 entries, seconds.
    pub ttl: u64,
}

impl Default for L1Config {
    fn default() -> Self {
        L1Config { enabled: true, max_size: 100_000, max_bytes: 64 * 1024 * 1024, ttl: 60 }
    }
}

/// L2 settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct L2Config {
    /// Whether L2 is used.
    pub enabled: bool,
    /// The L2 backend: `embedded` (redb, the default) or `redis` (shared by the nodes of a
    /// cluster: `cache.l2.url`, else `redis.url`); an unknown name stops the start.
    pub backend: L2Backend,
    /// Redis URL of the `redis` backend when it is not the cluster's `redis.url`
    /// (`REDIS_URL` sets both).
    pub url: Option<String>,
    /// Default TTL of entries set without one, seconds.
    pub default_ttl: u64,
    /// Prefix applied to every key.
    pub key_prefix: String,
    /// Capacity in bytes (stored, after compression).
    pub max_size: u64,
    /// Seconds between background sweeps that delete expired entries.
    pub sweep_interval: u64,
}

impl Default for L2Config {
    fn default() -> Self {
        L2Config {
            enabled: true,
            backend: L2Backend::Embedded,
            url: None,
            default_ttl: 3600,
            key_prefix: "cache:".into(),
            max_size: 1024 * 1024 * 1024,
            sweep_interval: 30,
        }
    }
}

/// Compression settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct CompressionConfig {
    /// Whether large values are compressed.
    pub enabled: bool,
    /// Values larger than this many bytes are zstd-compressed.
    pub threshold: usize,
}

impl Default for CompressionConfig {
    fn default() -> Self {
        CompressionConfig { enabled: true, threshold: 1024 }
    }
}

/// A metrics on/off switch.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsToggle {
    /// Whether metrics are recorded.
    pub enabled: bool,
}

impl Default for MetricsToggle {
    fn default() -> Self {
        MetricsToggle { enabled: true }
    }
}

/// The built-in L2 backends, selected by name.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum L2Backend {
    /// Entries in hearth's redb database, zstd-compressed above the threshold.
    #[default]
    Embedded,
    /// Entries in Redis, shared by every node; each node's L1 follows the others' writes.
    Redis,
}
