//! Notifications in the Redis of a cluster, so that a user's feed, unread count and
//! preferences are the same on every node and a notification sent on one node is read
//! and marked read on any other.
//!
//! Keys (under the hash tag `{notify}`):
//! - `…n:<id>`: a hash — `j` the notification's JSON, `e` its rendered email's JSON,
//!   `u` the user, `q` its sequence number;
//! - `…seq`: the last sequence number handed out (one per inserted notification, so the
//!   feed's order is the insert order across nodes);
//! - `…f:<user>` / `…un:<user>`: the user's feed and its unread part, sorted sets of ids
//!   by sequence number (the unread count is the second one's size, so it is exact);
//! - `…ua` / `…ra`: unread notifications by creation time and read ones by read time
//!   (what retention scans);
//! - `…ob`: the outbox, id → queued channels (JSON); `…pr`: preferences, user → JSON.
//!
//! Every write is one Lua script, so it is atomic. Changes to a stored notification
//! (read state, delivery state) are computed in Rust on the JSON read and applied by a
//! script only if the stored JSON is still the one read (compare-and-set; retried on a
//! race), so two nodes never overwrite each other's change.

use super::error::NotifyError;
use super::model::{Delivery, DeliveryState, FeedPage, ListQuery, Notification, Preferences};
use super::store::{NewNotification, NotificationStore, OutboxEntry, ReadChange, RenderedEmail};
use crate::cluster::{Redis, RedisError};
use ::redis::Script;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::LazyLock;

/// Removes notification `id` with everything indexing it; returns its hash fields
/// `{json, user}` or nil. Shared by the delete and retention scripts.
const DEL_FN: &str = r#"
local function del(p, id)
  local f = redis.call('HMGET', p .. 'n:' .. id, 'j', 'u')
  if not f[1] then return nil end
  redis.call('DEL', p .. 'n:' .. id)
  redis.call('HDEL', p .. 'ob', id)
  redis.call('ZREM', p .. 'ua', id)
  redis.call('ZREM', p .. 'ra', id)
  redis.call('ZREM', p .. 'f:' .. f[2], id)
  redis.call('ZREM', p .. 'un:' .. f[2], id)
  return f
end
"#;

/// Inserts notifications. ARGV: count, then per item id, user, in feed (`1`/`0`), json,
/// email json (empty: none), outbox json (empty: none), created ms. Returns `{-1}` when an
/// id exists, else each item's user's unread count after the whole insert.
static INSERT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, n = KEYS[1], tonumber(ARGV[1])
for i = 0, n - 1 do
  if redis.call('EXISTS', p .. 'n:' .. ARGV[2 + i * 7]) == 1 then return {-1} end
end
for i = 0, n - 1 do
  local b = 2 + i * 7
  local id, u, feed, j, e, o, c = ARGV[b], ARGV[b + 1], ARGV[b + 2], ARGV[b + 3], ARGV[b + 4], ARGV[b + 5], ARGV[b + 6]
  local seq = redis.call('INCR', p .. 'seq')
  redis.call('HSET', p .. 'n:' .. id, 'j', j, 'u', u, 'q', seq)
  if e ~= '' then redis.call('HSET', p .. 'n:' .. id, 'e', e) end
  if o ~= '' then redis.call('HSET', p .. 'ob', id, o) end
  redis.call('ZADD', p .. 'ua', c, id)
  if feed == '1' then
    redis.call('ZADD', p .. 'f:' .. u, seq, id)
    redis.call('ZADD', p .. 'un:' .. u, seq, id)
  end
end
local out = {}
for i = 0, n - 1 do out[#out + 1] = redis.call('ZCARD', p .. 'un:' .. ARGV[3 + i * 7]) end
return out
"#,
    )
});

/// Marks notifications read if each is still as read. ARGV: user, now ms, then per item
/// id, expected json, next json. Returns `{-1}` when one changed meanwhile, else `{count}`
/// (the user's unread count afterwards).
static SET_READ: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, u, now = KEYS[1], ARGV[1], ARGV[2]
for i = 3, #ARGV, 3 do
  if redis.call('HGET', p .. 'n:' .. ARGV[i], 'j') ~= ARGV[i + 1] then return {-1} end
end
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  redis.call('HSET', p .. 'n:' .. id, 'j', ARGV[i + 2])
  redis.call('ZREM', p .. 'un:' .. u, id)
  redis.call('ZREM', p .. 'ua', id)
  redis.call('ZADD', p .. 'ra', now, id)
end
return {redis.call('ZCARD', p .. 'un:' .. u)}
"#,
    )
});

/// Replaces a notification's JSON if it is still the expected one. ARGV: id, expected,
/// next. Returns 1 when applied, 0 when it changed or is gone.
static SWAP: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local key = KEYS[1] .. 'n:' .. ARGV[1]
if redis.call('HGET', key, 'j') ~= ARGV[2] then return 0 end
redis.call('HSET', key, 'j', ARGV[3])
return 1
"#,
    )
});

/// Deletes one notification. ARGV: id. Returns `{}` when it did not exist, else
/// `{json, unread count of its user afterwards}`.
static DELETE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{DEL_FN}
local p = KEYS[1]
local f = del(p, ARGV[1])
if not f then return {{}} end
return {{f[1], tostring(redis.call('ZCARD', p .. 'un:' .. f[2]))}}
"#
    ))
});

/// Retention. ARGV: unread-before ms, read-before ms, limit. Returns how many went.
static DELETE_EXPIRED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        r#"{DEL_FN}
local p, limit, n = KEYS[1], tonumber(ARGV[3]), 0
for _, idx in ipairs({{{{'ua', ARGV[1]}}, {{'ra', ARGV[2]}}}}) do
  if n >= limit then break end
  local ids = redis.call('ZRANGE', p .. idx[1], '-inf', '(' .. idx[2], 'BYSCORE', 'LIMIT', 0, limit - n)
  for _, id in ipairs(ids) do
    if del(p, id) then n = n + 1 end
  end
end
return n
"#
    ))
});

/// One feed page. ARGV: user, unread only (`1`/`0`), upper bound (exclusive sequence
/// number, or `+inf`), limit. Returns `{next cursor or '', json...}`.
static LIST: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, u, limit = KEYS[1], ARGV[1], tonumber(ARGV[4])
local idx = p .. (ARGV[2] == '1' and 'un:' or 'f:') .. u
local upper = ARGV[3] == '+inf' and '+inf' or '(' .. ARGV[3]
local found = redis.call('ZRANGE', idx, upper, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1, 'WITHSCORES')
local out, last = {''}, nil
for i = 1, math.min(#found, limit * 2), 2 do
  local j = redis.call('HGET', p .. 'n:' .. found[i], 'j')
  if j then out[#out + 1] = j end
  last = found[i + 1]
end
if #found > limit * 2 and last then out[1] = last end
return out
"#,
    )
});

/// A user's unread notifications. ARGV: user. Returns `{id, json, id, json, ...}`.
static UNREAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r#"
local p, out = KEYS[1], {}
for _, id in ipairs(redis.call('ZRANGE', p .. 'un:' .. ARGV[1], 0, -1)) do
  local j = redis.call('HGET', p .. 'n:' .. id, 'j')
  if j then
    out[#out + 1] = id
    out[#out + 1] = j
  end
end
return out
"#,
    )
});

/// How often a compare-and-set is retried against concurrent writers before giving up.
const CAS_ROUNDS: usize = 64;

/// [`NotificationStore`] in Redis.
#[derive(Clone)]
pub struct RedisNotificationStore {
    redis: Redis,
    prefix: String,
}

impl RedisNotificationStore {
    /// Notifications under `redis`'s key prefix.
    pub fn new(redis: Redis) -> Self {
        let prefix = redis.key("{notify}:");
        RedisNotificationStore { redis, prefix }
    }

    fn keys(&self) -> [String; 1] {
        [self.prefix.clone()]
    }

    /// The stored JSON of `id`, if any.
    async fn raw(&self, id: &str) -> Result<Option<Vec<u8>>, NotifyError> {
        Ok(self.redis.query(::redis::cmd("HGET").arg(format!("{}n:{id}", self.prefix)).arg("j")).await?)
    }

    /// Applies `change` to notification `id` by compare-and-set: `change` returns the
    /// next state, or None to leave it. Returns the stored notification afterwards (None
    /// when it is gone or `change` declined).
    async fn update(&self, id: &str, change: impl Fn(&mut Notification) -> bool) -> Result<Option<Notification>, NotifyError> {
        for _ in 0..CAS_ROUNDS {
            let Some(raw) = self.raw(id).await? else { return Ok(None) };
            let mut n: Notification = decode(&raw)?;
            if !change(&mut n) {
                return Ok(None);
            }
            let next = encode(&n)?;
            let args = vec![id.as_bytes().to_vec(), raw, next];
            if self.redis.script::<i64>(&SWAP, &self.keys(), &args).await? == 1 {
                return Ok(Some(n));
            }
        }
        Err(contended(id))
    }

    /// Marks `targets` (all of `user`) read at `now` in one atomic write, as long as none
    /// changed since it was read. Returns the user's unread count, or None on a race.
    async fn set_read(&self, user: &str, now: DateTime<Utc>, targets: &[(String, Vec<u8>, Vec<u8>)]) -> Result<Option<u64>, NotifyError> {
        let mut args = vec![user.as_bytes().to_vec(), now.timestamp_millis().to_string().into_bytes()];
        for (id, expected, next) in targets {
            args.extend([id.as_bytes().to_vec(), expected.clone(), next.clone()]);
        }
        let out: Vec<i64> = self.redis.script(&SET_READ, &self.keys(), &args).await?;
        Ok(out.first().filter(|n| **n >= 0).map(|n| *n as u64))
    }
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, NotifyError> {
    serde_json::to_vec(v).map_err(|e| NotifyError::Unavailable(format!("cannot encode a notification: {e}")))
}

fn decode<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> Result<T, NotifyError> {
    serde_json::from_slice(bytes).map_err(|e| NotifyError::Unavailable(format!("unreadable notification data in redis: {e}")))
}

fn contended(id: &str) -> NotifyError {
    NotifyError::Unavailable(format!("notification '{id}' kept changing under concurrent writers; try again"))
}

impl From<RedisError> for NotifyError {
    fn from(e: RedisError) -> Self {
        NotifyError::Unavailable(format!("the notification store is unavailable: {e}"))
    }
}

/// Marks `n` read at `now`; false when it already was.
fn read_at(n: &mut Notification, now: DateTime<Utc>) -> bool {
    if n.read {
        return false;
    }
    n.read = true;
    n.read_at = Some(now);
    true
}

#[async_trait]
impl NotificationStore for RedisNotificationStore {
    async fn insert(&self, items: Vec<NewNotification>) -> Result<Vec<u64>, NotifyError> {
        let mut seen = std::collections::HashSet::new();
        let mut args = vec![items.len().to_string().into_bytes()];
        for it in &items {
            let n = &it.notification;
            if !seen.insert(n.id.as_str()) {
                return Err(NotifyError::Conflict(format!("notification '{}' is given twice", n.id)));
            }
            let email = it.email.as_ref().map(encode).transpose()?.unwrap_or_default();
            let outbox = if it.outbox.is_empty() { Vec::new() } else { encode(&it.outbox)? };
            args.extend([
                n.id.as_bytes().to_vec(),
                n.user_id.as_bytes().to_vec(),
                if n.in_feed() { b"1".to_vec() } else { b"0".to_vec() },
                encode(n)?,
                email,
                outbox,
                n.created_at.timestamp_millis().to_string().into_bytes(),
            ]);
        }
        let counts: Vec<i64> = self.redis.script(&INSERT, &self.keys(), &args).await?;
        if counts.first() == Some(&-1) {
            return Err(NotifyError::Conflict("a notification with one of these ids already exists".into()));
        }
        Ok(counts.into_iter().map(|c| c.max(0) as u64).collect())
    }

    async fn get(&self, id: &str) -> Result<Option<Notification>, NotifyError> {
        self.raw(id).await?.map(|raw| decode(&raw)).transpose()
    }

    async fn get_with_email(&self, id: &str) -> Result<Option<(Notification, Option<RenderedEmail>)>, NotifyError> {
        let cmd = ::redis::cmd("HMGET").arg(format!("{}n:{id}", self.prefix)).arg("j").arg("e").to_owned();
        let (j, e): (Option<Vec<u8>>, Option<Vec<u8>>) = self.redis.query(&cmd).await?;
        let Some(j) = j else { return Ok(None) };
        Ok(Some((decode(&j)?, e.map(|e| decode(&e)).transpose()?)))
    }

    async fn list(&self, user_id: &str, query: &ListQuery) -> Result<FeedPage, NotifyError> {
        if query.limit == 0 {
            return Ok(FeedPage { items: Vec::new(), next_cursor: None });
        }
        let upper = query.cursor.map_or("+inf".to_string(), |c| c.to_string());
        let unread = if query.unread_only { "1" } else { "0" };
        let args = vec![user_id.as_bytes().to_vec(), unread.into(), upper.into_bytes(), query.limit.to_string().into_bytes()];
        let out: Vec<Vec<u8>> = self.redis.script(&LIST, &self.keys(), &args).await?;
        let Some((cursor, rows)) = out.split_first() else { return Ok(FeedPage { items: Vec::new(), next_cursor: None }) };
        let next_cursor = std::str::from_utf8(cursor).ok().and_then(|c| c.parse::<f64>().ok()).map(|c| c as u64);
        let items = rows.iter().map(|r| decode(r)).collect::<Result<Vec<Notification>, _>>()?;
        Ok(FeedPage { items, next_cursor })
    }

    async fn unread_count(&self, user_id: &str) -> Result<u64, NotifyError> {
        Ok(self.redis.query(::redis::cmd("ZCARD").arg(format!("{}un:{user_id}", self.prefix))).await?)
    }

    async fn mark_read(&self, id: &str, now: DateTime<Utc>) -> Result<Option<(Notification, ReadChange)>, NotifyError> {
        for _ in 0..CAS_ROUNDS {
            let Some(raw) = self.raw(id).await? else { return Ok(None) };
            let mut n: Notification = decode(&raw)?;
            if !read_at(&mut n, now) {
                let unread_count = self.unread_count(&n.user_id).await?;
                return Ok(Some((n, ReadChange { ids: Vec::new(), changed: Vec::new(), unread_count })));
            }
            let next = encode(&n)?;
            if let Some(unread_count) = self.set_read(&n.user_id, now, &[(id.to_string(), raw, next)]).await? {
                let change = ReadChange { ids: vec![id.to_string()], changed: vec![n.clone()], unread_count };
                return Ok(Some((n, change)));
            }
        }
        Err(contended(id))
    }

    async fn mark_all_read(&self, user_id: &str, now: DateTime<Utc>) -> Result<ReadChange, NotifyError> {
        for _ in 0..CAS_ROUNDS {
            // One round trip for every unread notification and its JSON.
            let rows: Vec<Vec<u8>> = self.redis.script(&UNREAD, &self.keys(), &[user_id.as_bytes().to_vec()]).await?;
            let mut targets = Vec::with_capacity(rows.len() / 2);
            let mut changed = Vec::with_capacity(rows.len() / 2);
            for pair in rows.chunks_exact(2) {
                let (id, raw) = (String::from_utf8_lossy(&pair[0]).into_owned(), pair[1].clone());
                let mut n: Notification = decode(&raw)?;
                if read_at(&mut n, now) {
                    targets.push((id, raw, encode(&n)?));
                    changed.push(n);
                }
            }
            if let Some(unread_count) = self.set_read(user_id, now, &targets).await? {
                return Ok(ReadChange { ids: targets.into_iter().map(|t| t.0).collect(), changed, unread_count });
            }
        }
        Err(contended(user_id))
    }

    async fn delete(&self, id: &str) -> Result<Option<(Notification, u64)>, NotifyError> {
        let out: Vec<Vec<u8>> = self.redis.script(&DELETE, &self.keys(), &[id.as_bytes().to_vec()]).await?;
        let [json, count] = out.as_slice() else { return Ok(None) };
        let count = std::str::from_utf8(count).ok().and_then(|c| c.parse().ok()).unwrap_or(0);
        Ok(Some((decode(json)?, count)))
    }

    async fn record_delivery(&self, id: &str, channel: &str, delivery: Delivery) -> Result<Option<Notification>, NotifyError> {
        self.update(id, |n| match n.deliveries.get_mut(channel) {
            Some(d) if d.state == DeliveryState::Pending => {
                *d = Delivery { attempts: delivery.attempts.max(d.attempts), ..delivery.clone() };
                true
            }
            _ => false,
        })
        .await
    }

    async fn preferences(&self, user_ids: &[String]) -> Result<Vec<Preferences>, NotifyError> {
        if user_ids.is_empty() {
            return Ok(Vec::new());
        }
        let stored: Vec<Option<Vec<u8>>> = self.redis.query(::redis::cmd("HMGET").arg(format!("{}pr", self.prefix)).arg(user_ids)).await?;
        user_ids
            .iter()
            .zip(stored)
            .map(|(user, raw)| match raw {
                Some(raw) => decode(&raw),
                None => Ok(Preferences { user_id: user.clone(), ..Default::default() }),
            })
            .collect()
    }

    async fn put_preferences(&self, prefs: &Preferences) -> Result<(), NotifyError> {
        let cmd = ::redis::cmd("HSET").arg(format!("{}pr", self.prefix)).arg(&prefs.user_id).arg(encode(prefs)?).to_owned();
        self.redis.query::<i64>(&cmd).await?;
        Ok(())
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, NotifyError> {
        let all: Vec<(String, Vec<u8>)> = self.redis.query(::redis::cmd("HGETALL").arg(format!("{}ob", self.prefix))).await?;
        all.into_iter().map(|(notification_id, raw)| Ok(OutboxEntry { notification_id, channels: decode(&raw)? })).collect()
    }

    async fn settle_outbox(&self, notification_ids: &[String]) -> Result<(), NotifyError> {
        if notification_ids.is_empty() {
            return Ok(());
        }
        self.redis.query::<i64>(::redis::cmd("HDEL").arg(format!("{}ob", self.prefix)).arg(notification_ids)).await?;
        Ok(())
    }

    async fn delete_expired(&self, unread_before: DateTime<Utc>, read_before: DateTime<Utc>, limit: usize) -> Result<usize, NotifyError> {
        if limit == 0 {
            return Ok(0);
        }
        let args = [unread_before.timestamp_millis(), read_before.timestamp_millis(), limit as i64].map(|n| n.to_string().into_bytes());
        Ok(self.redis.script::<u64>(&DELETE_EXPIRED, &self.keys(), &args).await? as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::test_server::OnRedis;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_redis_store_passes_the_conformance_suite() {
        crate::notify::conformance::run(OnRedis::new(RedisNotificationStore::new)).await;
    }
}
