//! The Redis connection shared by the scale-out backends: one multiplexed connection per
//! node that reconnects with exponential backoff, a timeout on every command, key naming
//! under one prefix, and the start-up checks of the server's settings.

use ::redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;

/// `redis:` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[user:pass@]host:port/db` or `rediss://...` (also `REDIS_URL`).
    pub url: Option<String>,
    /// Prefix of every key hearth writes, so several installations can share a server.
    pub key_prefix: String,
    /// Longest wait for one command, milliseconds; a request that needs Redis answers 503
    /// `backend_unavailable` after it.
    pub command_timeout_ms: u64,
    /// Longest wait for a (re)connection, milliseconds.
    pub connect_timeout_ms: u64,
    /// This node's name in the cluster (leases, events); generated at start when unset.
    pub node_id: Option<String>,
}

impl Default for RedisConfig {
    fn default() -> Self {
        RedisConfig { url: None, key_prefix: "hearth:".into(), command_timeout_ms: 2000, connect_timeout_ms: 5000, node_id: None }
    }
}

/// Why Redis could not answer.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RedisError {
    /// Not reachable, timed out, or refused the connection: retry later (503).
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    /// Redis answered with an error (a bug in a script, a wrong type): not retryable.
    #[error("redis error: {0}")]
    Command(String),
    /// The configuration names no server.
    #[error("redis is not configured: set REDIS_URL or redis.url")]
    NotConfigured,
}

impl From<::redis::RedisError> for RedisError {
    fn from(e: ::redis::RedisError) -> Self {
        if e.is_io_error() || e.is_timeout() || e.is_connection_dropped() || e.is_connection_refusal() {
            RedisError::Unavailable(e.to_string())
        } else {
            RedisError::Command(e.to_string())
        }
    }
}

/// A cheap-to-clone handle on the node's connection.
#[derive(Clone)]
pub struct Redis {
    client: ::redis::Client,
    conn: ConnectionManager,
    prefix: Arc<str>,
    node: Arc<str>,
    timeout: Duration,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis").field("prefix", &self.prefix).field("node", &self.node).finish()
    }
}

impl Redis {
    /// Connects (failing after the connect timeout, with the reason) and checks the
    /// server's settings (warnings are logged).
    pub async fn connect(cfg: &RedisConfig) -> Result<Redis, RedisError> {
        let url = cfg.url.as_deref().ok_or(RedisError::NotConfigured)?;
        let client = ::redis::Client::open(url).map_err(|e| RedisError::Command(format!("invalid redis url: {e}")))?;
        let timeout = Duration::from_millis(cfg.command_timeout_ms.max(1));
        let manager = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms.max(1))))
            .set_response_timeout(Some(timeout))
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
            .set_number_of_retries(usize::MAX);
        let conn =
            tokio::time::timeout(Duration::from_millis(cfg.connect_timeout_ms.max(1)), client.get_connection_manager_with_config(manager))
                .await
                .map_err(|_| RedisError::Unavailable(format!("no answer from {} within {} ms", redact(url), cfg.connect_timeout_ms)))??;
        let node = cfg.node_id.clone().unwrap_or_else(|| format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]));
        let me = Redis { client, conn, prefix: Arc::from(cfg.key_prefix.as_str()), node: Arc::from(node.as_str()), timeout };
        for warning in me.check_settings().await? {
            tracing::warn!("{warning}");
        }
        Ok(me)
    }

    /// This node's id.
    pub fn node_id(&self) -> &str {
        &self.node
    }

    /// The full key of `name` (under the configured prefix).
    pub fn key(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// The multiplexed connection (clone it per use; it reconnects by itself).
    pub fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// The command timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A dedicated connection for blocking reads (`XREAD BLOCK` must not stall the shared
    /// multiplexed connection).
    pub async fn dedicated(&self) -> Result<::redis::aio::MultiplexedConnection, RedisError> {
        Ok(self.client.get_multiplexed_async_connection().await?)
    }

    /// A pub/sub connection of its own (a subscribed connection can do nothing else).
    pub async fn pubsub(&self) -> Result<::redis::aio::PubSub, RedisError> {
        match tokio::time::timeout(self.timeout, self.client.get_async_pubsub()).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Runs `cmd` with the command timeout.
    pub async fn query<T: ::redis::FromRedisValue>(&self, cmd: &::redis::Cmd) -> Result<T, RedisError> {
        let mut conn = self.conn();
        match tokio::time::timeout(self.timeout, cmd.query_async(&mut conn)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Runs a pipeline (e.g. a `MULTI`/`EXEC` one made with `atomic()`) with the command
    /// timeout.
    pub async fn exec<T: ::redis::FromRedisValue>(&self, pipe: &::redis::Pipeline) -> Result<T, RedisError> {
        let mut conn = self.conn();
        match tokio::time::timeout(self.timeout, pipe.query_async(&mut conn)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// Runs a Lua script (loaded once, then called by its hash) with the command timeout.
    pub async fn script<T: ::redis::FromRedisValue>(
        &self,
        script: &::redis::Script,
        keys: &[String],
        args: &[Vec<u8>],
    ) -> Result<T, RedisError> {
        let mut inv = script.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        for a in args {
            inv.arg(a.as_slice());
        }
        let mut conn = self.conn();
        match tokio::time::timeout(self.timeout, inv.invoke_async(&mut conn)).await {
            Ok(r) => Ok(r?),
            Err(_) => Err(RedisError::Unavailable(format!("no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    /// The server's settings that matter for what hearth keeps there, as warnings: an
    /// eviction policy that may drop keys (jobs!), no append-only file, or an fsync policy
    /// weaker than `always` (an acknowledged write may be lost if redis-server dies).
    pub async fn check_settings(&self) -> Result<Vec<String>, RedisError> {
        let mut out = Vec::new();
        let get = |name: &'static str| {
            let me = self.clone();
            async move {
                let v: Vec<String> = me.query(::redis::cmd("CONFIG").arg("GET").arg(name)).await.unwrap_or_default();
                v.get(1).cloned().unwrap_or_default()
            }
        };
        let policy = get("maxmemory-policy").await;
        if !policy.is_empty() && policy != "noeviction" {
            out.push(format!(
                "redis: maxmemory-policy is '{policy}': under memory pressure Redis may evict hearth's keys (jobs, records); use noeviction"
            ));
        }
        if get("appendonly").await == "no" {
            out.push("redis: appendonly is off: a crash of redis-server loses writes hearth acknowledged; set appendonly yes".into());
        } else {
            let fsync = get("appendfsync").await;
            if !fsync.is_empty() && fsync != "always" {
                out.push(format!(
                    "redis: appendfsync is '{fsync}': a crash of the machine may lose up to a second of acknowledged writes; 'always' makes them durable"
                ));
            }
        }
        Ok(out)
    }
}

/// `url` without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}***{}", &url[..s + 3], &url[at..]),
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_messages() {
        assert_eq!(redact("redis://user:secret@host:6379/0"), "redis://***@host:6379/0");
        assert_eq!(redact("redis://host:6379"), "redis://host:6379");
    }

    #[tokio::test]
    async fn connects_checks_settings_and_times_out_when_the_server_is_gone() {
        let server = super::super::test_server::RedisServer::start();
        let cfg = RedisConfig { url: Some(server.url()), ..Default::default() };
        let r = Redis::connect(&cfg).await.unwrap();
        assert!(r.check_settings().await.unwrap().is_empty(), "the test server runs with AOF always and noeviction");
        let pong: String = r.query(&::redis::cmd("PING")).await.unwrap();
        assert_eq!(pong, "PONG");
        drop(server);
        let err = r.query::<String>(&::redis::cmd("PING")).await.unwrap_err();
        assert!(matches!(err, RedisError::Unavailable(_)), "{err:?}");
        // Nothing listens: a clear error, not a hang.
        let cfg = RedisConfig { url: Some("redis://127.0.0.1:1".into()), connect_timeout_ms: 500, ..Default::default() };
        assert!(matches!(Redis::connect(&cfg).await.unwrap_err(), RedisError::Unavailable(_)));
    }
}
