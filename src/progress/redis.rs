//! Progress records in the Redis of a cluster, so that every node answers about every
//! progress and the version rule holds across nodes.
//!
//! Keys (all under one hash tag, `{progress}`, so they could live in one Redis Cluster
//! slot):
//! - `…{progress}:r:<id>`: a hash `v` (version), `s` (status), `f` (finished, ms), `j` (the
//!   record's JSON);
//! - `…{progress}:ids`: every id, in a sorted set of equal scores (listed in id order);
//! - `…{progress}:s:<status>`: the ids in each status, likewise;
//! - `…{progress}:f:<status>`: finished ids scored by their finish time (retention).
//!
//! Every write is one Lua script, so it applies whole and its guard (the version only
//! grows; a missing record is never recreated by a save) holds against any other node.
//! Durability is Redis's: with `appendfsync always` an acknowledged write survives a crash
//! of redis-server (see README, "Running several nodes").

use super::error::ProgressError;
use super::model::{ProgressRecord, ProgressStatus};
use super::storage::{ListQuery, ProgressStorage};
use crate::cluster::{Redis, RedisError};
use ::redis::Script;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;

/// Writes a record. ARGV: mode (`insert` | `save`), then per record: id, version, status,
/// finished ms (or empty), JSON. KEYS[1]: the key prefix ending in `{progress}:`.
/// Returns, per record, 1 written, 0 refused as existing (insert), -1 missing (save),
/// or the stored version when it was not older (save).
static WRITE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, mode, out = KEYS[1], ARGV[1], {}
for i = 2, #ARGV, 5 do
  local id, v, s, f, j = ARGV[i], tonumber(ARGV[i+1]), ARGV[i+2], ARGV[i+3], ARGV[i+4]
  local key = p .. 'r:' .. id
  local old = redis.call('HMGET', key, 'v', 's', 'f')
  local res = 1
  if mode == 'insert' then
    if old[1] then res = 0 end
  else
    if not old[1] then res = -1 elseif tonumber(old[1]) >= v then res = tonumber(old[1]) + 2 end
  end
  if res == 1 then
    if old[1] then
      redis.call('ZREM', p .. 's:' .. old[2], id)
      if old[3] and old[3] ~= '' then redis.call('ZREM', p .. 'f:' .. old[2], id) end
    end
    redis.call('HSET', key, 'v', v, 's', s, 'f', f, 'j', j)
    redis.call('ZADD', p .. 'ids', 0, id)
    redis.call('ZADD', p .. 's:' .. s, 0, id)
    if f ~= '' then redis.call('ZADD', p .. 'f:' .. s, tonumber(f), id) end
  end
  out[#out + 1] = res
end
return out
"#,
    )
});

/// Removes record `id` with its index entries; returns whether it existed. Shared by the
/// delete and retention scripts.
const REMOVE_FN: &str = r#"
local function remove(p, id)
  local key = p .. 'r:' .. id
  local s = redis.call('HGET', key, 's')
  if not s then return false end
  redis.call('DEL', key)
  redis.call('ZREM', p .. 'ids', id)
  redis.call('ZREM', p .. 's:' .. s, id)
  redis.call('ZREM', p .. 'f:' .. s, id)
  return true
end
"#;

/// Removes records. ARGV: ids. Returns the ids that existed.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{REMOVE_FN}
local p, out = KEYS[1], {{}}
for i = 1, #ARGV do
  if remove(p, ARGV[i]) then out[#out + 1] = ARGV[i] end
end
return out
"#
    ))
});

/// Lists records in id order. ARGV: index (`ids` or `s:<status>`), lower bound (`-` or
/// `(<after>`), limit. Returns the records' JSON.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p = KEYS[1]
local ids = redis.call('ZRANGE', p .. ARGV[1], ARGV[2], '+', 'BYLEX', 'LIMIT', 0, tonumber(ARGV[3]))
local out = {}
for _, id in ipairs(ids) do
  local j = redis.call('HGET', p .. 'r:' .. id, 'j')
  if j then out[#out + 1] = j end
end
return out
"#,
    )
});

/// Removes up to ARGV[3] records of status ARGV[1] finished before ARGV[2] (ms). Returns
/// their ids.
static EXPIRE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{REMOVE_FN}
local p = KEYS[1]
local ids = redis.call('ZRANGE', p .. 'f:' .. ARGV[1], '-inf', '(' .. ARGV[2], 'BYSCORE', 'LIMIT', 0, tonumber(ARGV[3]))
for _, id in ipairs(ids) do remove(p, id) end
return ids
"#
    ))
});

/// [`ProgressStorage`] in Redis.
#[derive(Clone)]
pub struct RedisProgressStorage {
    redis: Redis,
    prefix: String,
}

impl RedisProgressStorage {
    /// Records under `redis`'s key prefix.
    pub fn new(redis: Redis) -> Self {
        let prefix = redis.key("{progress}:");
        RedisProgressStorage { redis, prefix }
    }

    async fn write(&self, mode: &str, recs: &[ProgressRecord]) -> Result<Vec<i64>, ProgressError> {
        let mut args: Vec<Vec<u8>> = vec![mode.as_bytes().to_vec()];
        for r in recs {
            let json = serde_json::to_vec(r).map_err(|e| ProgressError::Store(crate::store::StoreError::Codec(e.to_string())))?;
            args.push(r.id.as_bytes().to_vec());
            args.push(r.version.to_string().into_bytes());
            args.push(r.status.as_str().as_bytes().to_vec());
            args.push(r.finished_at.map(|t| t.timestamp_millis().to_string()).unwrap_or_default().into_bytes());
            args.push(json);
        }
        Ok(self.redis.script(&WRITE, std::slice::from_ref(&self.prefix), &args).await?)
    }
}

fn decode(json: &[u8]) -> Result<ProgressRecord, ProgressError> {
    serde_json::from_slice(json).map_err(|e| ProgressError::Redis(RedisError::Command(format!("unreadable progress record: {e}"))))
}

#[async_trait::async_trait]
impl ProgressStorage for RedisProgressStorage {
    async fn insert(&self, rec: &ProgressRecord) -> Result<(), ProgressError> {
        match self.write("insert", std::slice::from_ref(rec)).await?.first() {
            Some(1) => Ok(()),
            _ => Err(ProgressError::AlreadyExists(rec.id.clone())),
        }
    }

    async fn save(&self, rec: &ProgressRecord) -> Result<(), ProgressError> {
        match self.write("save", std::slice::from_ref(rec)).await?.first().copied() {
            Some(1) => Ok(()),
            Some(-1) | None => Err(ProgressError::NotFound(rec.id.clone())),
            Some(stored) => Err(ProgressError::Conflict(format!(
                "progress '{}' changed concurrently (stored version {}, write {})",
                rec.id,
                stored - 2,
                rec.version
            ))),
        }
    }

    async fn save_coalesced(&self, recs: Vec<ProgressRecord>) -> Result<usize, ProgressError> {
        if recs.is_empty() {
            return Ok(0);
        }
        Ok(self.write("save", &recs).await?.into_iter().filter(|r| *r == 1).count())
    }

    async fn load(&self, id: &str) -> Result<Option<ProgressRecord>, ProgressError> {
        let json: Option<Vec<u8>> = self.redis.query(::redis::cmd("HGET").arg(format!("{}r:{id}", self.prefix)).arg("j")).await?;
        json.map(|j| decode(&j)).transpose()
    }

    async fn list(&self, q: ListQuery) -> Result<Vec<ProgressRecord>, ProgressError> {
        if q.limit == 0 {
            return Ok(Vec::new());
        }
        let index = match q.status {
            Some(s) => format!("s:{}", s.as_str()),
            None => "ids".into(),
        };
        let lower = match &q.after {
            Some(a) => format!("({a}"),
            None => "-".into(),
        };
        let args = vec![index.into_bytes(), lower.into_bytes(), q.limit.to_string().into_bytes()];
        let rows: Vec<Vec<u8>> = self.redis.script(&LIST, std::slice::from_ref(&self.prefix), &args).await?;
        rows.iter().map(|j| decode(j)).collect()
    }

    async fn delete(&self, id: &str) -> Result<bool, ProgressError> {
        let gone: Vec<String> = self.redis.script(&DELETE, std::slice::from_ref(&self.prefix), &[id.as_bytes().to_vec()]).await?;
        Ok(!gone.is_empty())
    }

    async fn remove_finished(
        &self,
        status: ProgressStatus,
        finished_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, ProgressError> {
        let args = vec![
            status.as_str().as_bytes().to_vec(),
            finished_before.timestamp_millis().to_string().into_bytes(),
            limit.to_string().into_bytes(),
        ];
        Ok(self.redis.script(&EXPIRE, std::slice::from_ref(&self.prefix), &args).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::test_server::OnRedis;
    use crate::conformance::Harness;

    #[tokio::test]
    async fn the_redis_storage_passes_the_conformance_suite() {
        super::super::conformance::run(OnRedis::new(RedisProgressStorage::new)).await;
    }

    #[tokio::test]
    async fn an_acknowledged_write_survives_a_crash_of_redis_server() {
        let mut h = OnRedis::new(RedisProgressStorage::new);
        let s = h.fresh().await;
        let rec =
            crate::progress::machine::new_record(crate::progress::NewProgress::with_stages(Some("p1".into()), &["a"]), Utc::now()).unwrap();
        s.insert(&rec).await.unwrap();
        h.server_mut().crash_and_restart();
        let s = h.reopen(s).await;
        assert_eq!(s.load("p1").await.unwrap().map(|r| r.id), Some("p1".into()), "appendfsync always: the insert survived kill -9");
    }
}
