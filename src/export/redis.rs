//! Export records and stored sources in the Redis of a cluster, so that an export made on
//! one node is read, run and downloaded on any node, and a stored transcript is found by
//! an export job wherever it runs.
//!
//! Keys (under the hash tag `{export}`):
//! - `…{export}:r:<id>`: a hash `t` (source type), `s` (status), `u` (user), `j` (the
//!   record's JSON), `w` (its pending work's JSON, removed when the record is final);
//! - `…{export}:ids`: every export id in a sorted set of equal scores; ids are UUIDv7, so
//!   the set's reverse order is newest first;
//! - `…{export}:src:<kind>:<id>`: a stored transcript or document (JSON text).
//!
//! Every write is one command or one Lua script; `swap` compares the stored JSON with the
//! expected one byte for byte (records serialise deterministically), so concurrent
//! updates from several nodes never lose one.

use super::error::ExportError;
use super::record::{ExportJob, Work};
use super::record_store::{ExportRecordStore, ListFilter, Swap};
use super::source_store::{SourceKind, SourceStore};
use crate::cluster::{Redis, RedisError};
use ::redis::Script;
use async_trait::async_trait;
use std::sync::LazyLock;

/// Inserts a record with its work unless the id exists. ARGV: id, type, status, user, json,
/// work. Returns 1, or 0 when the id was taken.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local key = KEYS[1] .. 'r:' .. ARGV[1]
if redis.call('EXISTS', key) == 1 then return 0 end
redis.call('HSET', key, 't', ARGV[2], 's', ARGV[3], 'u', ARGV[4], 'j', ARGV[5], 'w', ARGV[6])
redis.call('ZADD', KEYS[1] .. 'ids', 0, ARGV[1])
return 1
"#,
    )
});

/// Replaces the record when its JSON is still `expected`. ARGV: id, expected, next json,
/// next status, next is final (`1`/`0`). Returns `{1}` when applied, else `{0, current}`
/// (`{0}` when the record is gone).
static SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local key = KEYS[1] .. 'r:' .. ARGV[1]
local cur = redis.call('HGET', key, 'j')
if not cur then return {0} end
if cur ~= ARGV[2] then return {0, cur} end
redis.call('HSET', key, 'j', ARGV[3], 's', ARGV[4])
if ARGV[5] == '1' then redis.call('HDEL', key, 'w') end
return {1}
"#,
    )
});

/// Deletes a record. ARGV: id. Returns 1 when it existed.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
redis.call('ZREM', KEYS[1] .. 'ids', ARGV[1])
return redis.call('DEL', KEYS[1] .. 'r:' .. ARGV[1])
"#,
    )
});

/// Lists records newest first. ARGV: source type, status, user (empty = any), limit.
/// Returns the matching records' JSON.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, t, s, u, limit = KEYS[1], ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4])
local out, offset, page = {}, 0, 512
while #out < limit do
  local ids = redis.call('ZRANGE', p .. 'ids', '+', '-', 'BYLEX', 'REV', 'LIMIT', offset, page)
  if #ids == 0 then break end
  for _, id in ipairs(ids) do
    local f = redis.call('HMGET', p .. 'r:' .. id, 't', 's', 'u', 'j')
    if f[4] and (t == '' or f[1] == t) and (s == '' or f[2] == s) and (u == '' or f[3] == u) then
      out[#out + 1] = f[4]
      if #out >= limit then break end
    end
  end
  offset = offset + page
end
return out
"#,
    )
});

/// [`ExportRecordStore`] and [`SourceStore`] in Redis.
#[derive(Clone)]
pub struct RedisExportStore {
    redis: Redis,
    prefix: String,
}

impl RedisExportStore {
    /// Records and sources under `redis`'s key prefix.
    pub fn new(redis: Redis) -> Self {
        let prefix = redis.key("{export}:");
        RedisExportStore { redis, prefix }
    }

    fn keys(&self) -> [String; 1] {
        [self.prefix.clone()]
    }

    fn source_key(&self, kind: SourceKind, id: &str) -> String {
        format!("{}src:{}:{id}", self.prefix, kind.as_str())
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, ExportError> {
    serde_json::to_vec(v).map_err(|e| ExportError::Io(format!("cannot encode an export record: {e}")))
}

fn record(bytes: &[u8]) -> Result<ExportJob, ExportError> {
    serde_json::from_slice(bytes).map_err(|e| ExportError::Io(format!("unreadable export record: {e}")))
}

impl From<RedisError> for ExportError {
    fn from(e: RedisError) -> Self {
        match e {
            RedisError::Unavailable(why) => ExportError::Unavailable(format!("redis is unavailable: {why}")),
            other => ExportError::Io(other.to_string()),
        }
    }
}

#[async_trait]
impl ExportRecordStore for RedisExportStore {
    async fn insert(&self, rec: &ExportJob, work: &Work) -> Result<(), ExportError> {
        let args = vec![
            rec.id.as_bytes().to_vec(),
            rec.source_type.as_bytes().to_vec(),
            rec.status.as_str().as_bytes().to_vec(),
            rec.user_id.clone().unwrap_or_default().into_bytes(),
            json(rec)?,
            json(work)?,
        ];
        match self.redis.script::<i64>(&INSERT, &self.keys(), &args).await? {
            1 => Ok(()),
            _ => Err(ExportError::Conflict(format!("export {} already exists", rec.id))),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<ExportJob>, ExportError> {
        let j: Option<Vec<u8>> = self.redis.query(::redis::cmd("HGET").arg(format!("{}r:{id}", self.prefix)).arg("j")).await?;
        j.map(|b| record(&b)).transpose()
    }

    async fn work(&self, id: &str) -> Result<Option<Work>, ExportError> {
        let w: Option<Vec<u8>> = self.redis.query(::redis::cmd("HGET").arg(format!("{}r:{id}", self.prefix)).arg("w")).await?;
        w.map(|b| serde_json::from_slice(&b).map_err(|e| ExportError::Io(format!("unreadable export work: {e}")))).transpose()
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<ExportJob>, ExportError> {
        if filter.limit == 0 {
            return Ok(Vec::new());
        }
        let args = vec![
            filter.source_type.clone().unwrap_or_default().into_bytes(),
            filter.status.map(|s| s.as_str().as_bytes().to_vec()).unwrap_or_default(),
            filter.user_id.clone().unwrap_or_default().into_bytes(),
            filter.limit.to_string().into_bytes(),
        ];
        let rows: Vec<Vec<u8>> = self.redis.script(&LIST, &self.keys(), &args).await?;
        rows.iter().map(|r| record(r)).collect()
    }

    async fn swap(&self, expected: &ExportJob, next: &ExportJob) -> Result<Swap, ExportError> {
        let args = vec![
            expected.id.as_bytes().to_vec(),
            json(expected)?,
            json(next)?,
            next.status.as_str().as_bytes().to_vec(),
            if next.status.is_final() { b"1".to_vec() } else { b"0".to_vec() },
        ];
        let reply: Vec<::redis::Value> = self.redis.script(&SWAP, &self.keys(), &args).await?;
        match reply.as_slice() {
            [::redis::Value::Int(1)] => Ok(Swap::Applied),
            [_, ::redis::Value::BulkString(cur)] => Ok(Swap::Stale(Some(Box::new(record(cur)?)))),
            _ => Ok(Swap::Stale(None)),
        }
    }

    async fn delete(&self, id: &str) -> Result<bool, ExportError> {
        Ok(self.redis.script::<i64>(&DELETE, &self.keys(), &[id.as_bytes().to_vec()]).await? == 1)
    }
}

#[async_trait]
impl SourceStore for RedisExportStore {
    async fn put(&self, kind: SourceKind, id: &str, json: String) -> Result<(), ExportError> {
        Ok(self.redis.query::<()>(::redis::cmd("SET").arg(self.source_key(kind, id)).arg(json)).await?)
    }

    async fn get(&self, kind: SourceKind, id: &str) -> Result<Option<String>, ExportError> {
        Ok(self.redis.query(::redis::cmd("GET").arg(self.source_key(kind, id))).await?)
    }

    async fn delete(&self, kind: SourceKind, id: &str) -> Result<bool, ExportError> {
        Ok(self.redis.query::<i64>(::redis::cmd("DEL").arg(self.source_key(kind, id))).await? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::test_server::OnRedis;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_stores_pass_the_conformance_suites() {
        let on = || OnRedis::new(RedisExportStore::new);
        crate::export::conformance::records::run(on()).await;
        crate::export::conformance::sources::run(on()).await;
    }
}
