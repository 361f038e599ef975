//! The cache's L2 in the Redis of a cluster, shared by every node.
//!
//! Keys (the configured L2 key prefix is already part of each cache key):
//! - `…{cache}:e:<key>`: the entry, in the same record layout as the embedded L2
//!   (`record.rs`: header with expiry, content type and tags, then the raw or zstd
//!   payload), written with a Redis expiry (`PX`), so Redis reclaims its memory on time;
//! - `…{cache}:m:<key>`: the entry's size and tags (what a delete must undo);
//! - `…{cache}:t:<tag>`: the keys carrying a tag;
//! - `…{cache}:x`: every key by its expiry (for the sweeper, which removes what Redis
//!   expired from the tag sets and the totals);
//! - `…{cache}:u`: the totals (`entries`, `bytes`), kept by the same scripts;
//! - `…{cache}:inv`: a pub/sub channel on which the set and delete scripts announce the
//!   keys they changed (with the writing node's id), so the other nodes drop their L1
//!   copies ([`CacheBackend::watch`]). Pub/sub is fire-and-forget: a node that loses its
//!   subscription treats the gap as "everything changed" and empties its L1.
//!
//! Every write is one Lua script. A write's precondition (the cache's fences against a
//! concurrent delete) is checked right before the script is sent: best effort across
//! nodes, as the `CacheBackend` contract allows for remote backends. Redis bounds its own
//! memory (`maxmemory`), so [`CacheBackend::capacity`] is unbounded here.

use super::CacheError;
use super::backend::{BackendEntry, CacheBackend, Changed, KeyFilter, KeyPage, Precondition, Usage, WriteOutcome};
use super::record;
use crate::cluster::{Redis, RedisError};
use ::redis::Script;
use futures::StreamExt;
use std::sync::LazyLock;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Stores an entry. KEYS[1]: the prefix; ARGV: key, record, expires ms (absolute), size,
/// tags joined by `\x1f`, this node's id. Returns whether an entry was replaced.
static SET: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, k = KEYS[1], ARGV[1]
local existed = 0
local old = redis.call('HMGET', p .. 'm:' .. k, 'size', 'tags')
if old[1] then
  existed = 1
  redis.call('HINCRBY', p .. 'u', 'entries', -1)
  redis.call('HINCRBY', p .. 'u', 'bytes', -tonumber(old[1]))
  if old[2] and old[2] ~= '' then
    for t in string.gmatch(old[2], '[^\31]+') do redis.call('SREM', p .. 't:' .. t, k) end
  end
end
local ttl = tonumber(ARGV[3]) - tonumber(redis.call('TIME')[1]) * 1000
if ttl < 1 then ttl = 1 end
redis.call('SET', p .. 'e:' .. k, ARGV[2], 'PX', ttl)
redis.call('HSET', p .. 'm:' .. k, 'size', ARGV[4], 'tags', ARGV[5])
redis.call('ZADD', p .. 'x', tonumber(ARGV[3]), k)
redis.call('HINCRBY', p .. 'u', 'entries', 1)
redis.call('HINCRBY', p .. 'u', 'bytes', tonumber(ARGV[4]))
if ARGV[5] ~= '' then
  for t in string.gmatch(ARGV[5], '[^\31]+') do redis.call('SADD', p .. 't:' .. t, k) end
end
redis.call('PUBLISH', p .. 'inv', ARGV[6] .. '\31' .. k)
return existed
"#,
    )
});

/// Forgets entry `k` (its value, meta, expiry, tags and share of the totals); returns
/// `nil` when it had no meta, else whether its value was still there (live). Shared by
/// the delete and sweep scripts.
const FORGET_FN: &str = r#"
local function forget(p, k)
  local old = redis.call('HMGET', p .. 'm:' .. k, 'size', 'tags')
  local live = redis.call('DEL', p .. 'e:' .. k) == 1
  redis.call('DEL', p .. 'm:' .. k)
  redis.call('ZREM', p .. 'x', k)
  if not old[1] then return nil end
  redis.call('HINCRBY', p .. 'u', 'entries', -1)
  redis.call('HINCRBY', p .. 'u', 'bytes', -tonumber(old[1]))
  if old[2] and old[2] ~= '' then
    for t in string.gmatch(old[2], '[^\31]+') do redis.call('SREM', p .. 't:' .. t, k) end
  end
  return live
end
"#;

/// Removes entries. KEYS[1]: the prefix; ARGV: this node's id, then the keys. Returns how
/// many existed (were live).
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{FORGET_FN}
local p, n, gone = KEYS[1], 0, {{}}
for i = 2, #ARGV do
  local live = forget(p, ARGV[i])
  if live ~= nil then gone[#gone + 1] = ARGV[i] end
  if live then n = n + 1 end
end
if #gone > 0 then redis.call('PUBLISH', p .. 'inv', ARGV[1] .. '\31' .. table.concat(gone, '\31')) end
return n
"#
    ))
});

/// Forgets entries whose expiry is at or before ARGV[1] (ms), at most ARGV[2] of them.
/// Returns how many.
static SWEEP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{FORGET_FN}
local p = KEYS[1]
local keys = redis.call('ZRANGE', p .. 'x', '-inf', ARGV[1], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[2]))
for _, k in ipairs(keys) do forget(p, k) end
return #keys
"#
    ))
});

/// Keys per sweep or bulk-delete round trip.
const BATCH: usize = 512;

/// [`CacheBackend`] in Redis.
#[derive(Clone)]
pub struct RedisBackend {
    redis: Redis,
    prefix: String,
    compress_above: Option<usize>,
}

impl RedisBackend {
    /// Entries under `redis`'s key prefix, compressing values longer than `compress_above`.
    pub fn new(redis: Redis, compress_above: Option<usize>) -> Self {
        let prefix = redis.key("{cache}:");
        RedisBackend { redis, prefix, compress_above }
    }

    async fn delete_keys(&self, keys: Vec<String>) -> Result<u64, CacheError> {
        let mut n = 0;
        for chunk in keys.chunks(BATCH) {
            let node = self.redis.node_id().as_bytes().to_vec();
            let args: Vec<Vec<u8>> = std::iter::once(node).chain(chunk.iter().map(|k| k.as_bytes().to_vec())).collect();
            n += self.redis.script::<u64>(&DELETE, std::slice::from_ref(&self.prefix), &args).await?;
        }
        Ok(n)
    }
}

impl From<RedisError> for CacheError {
    fn from(e: RedisError) -> Self {
        CacheError::Backend(e.to_string())
    }
}

#[async_trait::async_trait]
impl CacheBackend for RedisBackend {
    async fn get(&self, key: &str, now_ms: i64) -> Result<Option<BackendEntry>, CacheError> {
        let bytes: Option<Vec<u8>> = self.redis.query(::redis::cmd("GET").arg(format!("{}e:{key}", self.prefix))).await?;
        let Some(bytes) = bytes else { return Ok(None) };
        let (h, _) = record::split(&bytes)?;
        if h.expires_ms <= now_ms {
            return Ok(None);
        }
        Ok(Some(record::decode(&bytes)?))
    }

    async fn set(&self, key: &str, entry: BackendEntry, precondition: Precondition) -> Result<WriteOutcome, CacheError> {
        let expires = entry.expires_ms;
        let tags = entry.tags.join("\u{1f}");
        let compress = self.compress_above;
        let rec = tokio::task::spawn_blocking(move || record::encode(&entry, compress))
            .await
            .map_err(|e| CacheError::Backend(format!("compression task failed: {e}")))??;
        if !precondition() {
            return Ok(WriteOutcome::default());
        }
        let size = (key.len() + rec.len()) as u64;
        let args = vec![
            key.as_bytes().to_vec(),
            rec,
            expires.to_string().into_bytes(),
            size.to_string().into_bytes(),
            tags.into_bytes(),
            self.redis.node_id().as_bytes().to_vec(),
        ];
        let existed: i64 = self.redis.script(&SET, std::slice::from_ref(&self.prefix), &args).await?;
        Ok(WriteOutcome { applied: true, existed: existed == 1, evicted: 0 })
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<WriteOutcome, CacheError> {
        if !precondition() {
            return Ok(WriteOutcome::default());
        }
        let n = self.delete_keys(vec![key.to_string()]).await?;
        Ok(WriteOutcome { applied: true, existed: n == 1, evicted: 0 })
    }

    async fn delete_tagged(&self, tags: &[String]) -> Result<u64, CacheError> {
        let mut keys = std::collections::BTreeSet::new();
        for t in tags {
            let members: Vec<String> = self.redis.query(::redis::cmd("SMEMBERS").arg(format!("{}t:{t}", self.prefix))).await?;
            keys.extend(members);
        }
        self.delete_keys(keys.into_iter().collect()).await
    }

    async fn delete_matching(&self, scan_prefix: &str, filter: KeyFilter) -> Result<u64, CacheError> {
        // SCAN over the meta keys (one per entry, live or expired-but-not-swept).
        let meta = format!("{}m:", self.prefix);
        let pattern = format!("{meta}{}*", glob_escape(scan_prefix));
        let mut cursor: u64 = 0;
        let mut doomed = Vec::new();
        loop {
            let (next, found): (u64, Vec<String>) =
                self.redis.query(::redis::cmd("SCAN").arg(cursor).arg("MATCH").arg(&pattern).arg("COUNT").arg(1000)).await?;
            doomed.extend(found.into_iter().filter_map(|k| k.strip_prefix(&meta).map(str::to_owned)).filter(|k| filter(k)));
            if next == 0 {
                break;
            }
            cursor = next;
        }
        self.delete_keys(doomed).await
    }

    /// One `SCAN … MATCH <prefix>e:<scan_prefix>* COUNT <count>` over the value keys, which
    /// Redis expires itself; the cursor is Redis's own.
    async fn list_keys(
        &self,
        scan_prefix: &str,
        filter: KeyFilter,
        cursor: Option<&str>,
        count: usize,
        now_ms: i64,
    ) -> Result<KeyPage, CacheError> {
        let from: u64 = match cursor {
            None => 0,
            Some(c) => c.parse().map_err(|_| CacheError::invalid("cursor", "not a cursor of this listing"))?,
        };
        let values = format!("{}e:", self.prefix);
        let pattern = format!("{values}{}*", glob_escape(scan_prefix));
        let (next, found): (u64, Vec<String>) =
            self.redis.query(::redis::cmd("SCAN").arg(from).arg("MATCH").arg(&pattern).arg("COUNT").arg(count.max(1))).await?;
        let mut keys: Vec<String> =
            found.into_iter().filter_map(|k| k.strip_prefix(&values).map(str::to_owned)).filter(|k| filter(k)).collect();
        if !keys.is_empty() {
            // Redis reclaims an expired key lazily, and by its own clock: the expiry index
            // holds each entry's exact expiry.
            let expiries: Vec<Option<f64>> = self.redis.query(::redis::cmd("ZMSCORE").arg(format!("{}x", self.prefix)).arg(&keys)).await?;
            let mut live = expiries.into_iter().map(|e| e.is_some_and(|ms| ms as i64 > now_ms));
            keys.retain(|_| live.next().unwrap_or(false));
        }
        Ok(KeyPage { keys, next: (next != 0).then(|| next.to_string()) })
    }

    async fn sweep(&self, now_ms: i64) -> Result<u64, CacheError> {
        let mut total = 0;
        loop {
            let args = vec![now_ms.to_string().into_bytes(), BATCH.to_string().into_bytes()];
            let n: u64 = self.redis.script(&SWEEP, std::slice::from_ref(&self.prefix), &args).await?;
            total += n;
            if n < BATCH as u64 {
                return Ok(total);
            }
        }
    }

    async fn usage(&self) -> Result<Usage, CacheError> {
        let v: Vec<Option<i64>> =
            self.redis.query(::redis::cmd("HMGET").arg(format!("{}u", self.prefix)).arg("entries").arg("bytes")).await?;
        let get = |i: usize| v.get(i).copied().flatten().unwrap_or(0).max(0) as u64;
        Ok(Usage { entries: get(0), bytes: get(1) })
    }

    fn capacity(&self) -> u64 {
        u64::MAX
    }

    fn shared(&self) -> bool {
        true
    }

    async fn watch(&self, changed: &(dyn Fn(Changed) + Send + Sync), shutdown: CancellationToken) {
        let channel = format!("{}inv", self.prefix);
        let me = self.redis.node_id().to_string();
        let mut backoff = Duration::from_millis(50);
        while !shutdown.is_cancelled() {
            let mut pubsub = match self.redis.pubsub().await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "cache: cannot subscribe to other nodes' changes; retrying");
                    tokio::select! { _ = shutdown.cancelled() => return, _ = tokio::time::sleep(backoff) => {} }
                    backoff = (backoff * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            if let Err(e) = pubsub.subscribe(&channel).await {
                tracing::warn!(error = %e, "cache: subscribing to {channel} failed; retrying");
                continue;
            }
            backoff = Duration::from_millis(50);
            // Whatever was announced before this subscription is lost to us.
            changed(Changed::Gap);
            let mut messages = pubsub.on_message();
            loop {
                let msg = tokio::select! {
                    _ = shutdown.cancelled() => return,
                    m = messages.next() => m,
                };
                let Some(msg) = msg else { break };
                let payload = msg.get_payload_bytes();
                let mut parts = payload.split(|b| *b == 0x1f);
                if parts.next() == Some(me.as_bytes()) {
                    continue;
                }
                changed(Changed::Keys(parts.map(|k| String::from_utf8_lossy(k).into_owned()).collect()));
            }
            tracing::warn!("cache: lost the subscription to other nodes' changes; reconnecting");
        }
    }
}

/// `s` with Redis glob metacharacters escaped.
fn glob_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::RedisConfig;
    use crate::cluster::test_server::{OnRedis, RedisServer};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_backend_passes_the_conformance_suite() {
        super::super::conformance::run(OnRedis::new(|r| RedisBackend::new(r, Some(1024)))).await;
    }

    /// Collects what `watch` reports.
    fn watcher(backend: RedisBackend, shutdown: CancellationToken) -> tokio::sync::mpsc::UnboundedReceiver<Changed> {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move { backend.watch(&move |c| drop(tx.send(c)), shutdown).await });
        rx
    }

    async fn next(rx: &mut tokio::sync::mpsc::UnboundedReceiver<Changed>) -> Changed {
        tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("a change is reported").expect("watching")
    }

    fn entry(data: &str) -> BackendEntry {
        let expires_ms = chrono::Utc::now().timestamp_millis() + 60_000;
        BackendEntry { value: super::super::CacheValue::new(data.as_bytes().to_vec()), expires_ms, tags: vec!["t".into()] }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn watch_reports_other_nodes_changes_not_its_own_and_a_gap_after_a_lost_subscription() {
        let server = RedisServer::start();
        let connect = || async {
            let cfg = RedisConfig { url: Some(server.url()), ..Default::default() };
            RedisBackend::new(Redis::connect(&cfg).await.expect("connects"), None)
        };
        let (a, b) = (connect().await, connect().await);
        let shutdown = CancellationToken::new();
        let mut seen = watcher(b.clone(), shutdown.clone());
        assert_eq!(next(&mut seen).await, Changed::Gap, "a new subscription starts with a gap");
        b.set("own", entry("b"), Box::new(|| true)).await.unwrap();
        a.set("k1", entry("a"), Box::new(|| true)).await.unwrap();
        assert_eq!(next(&mut seen).await, Changed::Keys(vec!["k1".into()]), "B's own write is not reported to B");
        a.set("k2", entry("a"), Box::new(|| true)).await.unwrap();
        assert_eq!(a.delete_tagged(&["t".into()]).await.unwrap(), 3);
        assert_eq!(next(&mut seen).await, Changed::Keys(vec!["k2".into()]));
        let Changed::Keys(mut gone) = next(&mut seen).await else { panic!("expected keys") };
        gone.sort();
        assert_eq!(gone, ["k1", "k2", "own"], "one message for a bulk delete");
        let mut admin = ::redis::Client::open(server.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
        let _: i64 = ::redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut admin).await.unwrap();
        assert_eq!(next(&mut seen).await, Changed::Gap, "a lost subscription is reported as a gap once it is back");
        shutdown.cancel();
    }

    #[test]
    fn glob_metacharacters_are_escaped() {
        assert_eq!(glob_escape("user:*[1]"), "user:\\*\\[1\\]");
    }
}
