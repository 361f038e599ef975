//! What makes several hearth nodes one service: the shared Redis every scale-out backend
//! talks to ([`Redis`]), and this node's identity.
//!
//! `redis:` in the configuration (or `REDIS_URL`) names the server; each part that can
//! live there selects it by name (`events.transport: redis`, `progress.store: redis`,
//! ...), and `REDIS_URL` alone selects it for every part that has a Redis backend (an
//! explicit `embedded` wins). Standalone Redis is supported (and Sentinel through a
//! `redis+sentinel://` URL where the client supports it); Redis Cluster is not: every key
//! of one part shares a hash tag, so that it could follow.

pub mod redis;
#[cfg(any(test, feature = "conformance"))]
pub mod test_server;

pub use redis::{Redis, RedisConfig, RedisError};

use serde::{Deserialize, Serialize};

/// Where a module keeps its records (`progress.store`, `notification.store`,
/// `export.store`): in this node's database or in the cluster's Redis. An unknown name
/// stops the start.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum StoreKind {
    /// hearth's redb database (one node).
    #[default]
    Embedded,
    /// The cluster's Redis (`redis.url`), shared by every node.
    Redis,
}
