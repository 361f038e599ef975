//! Atomic read-modify-write of one key — what `INCR`, `APPEND`, `SET NX`, `GETDEL` and a
//! lock's compare-and-delete need: the decision is made on the value as it is, and
//! nothing written to the key in between is lost.
//!
//! [`Cache::update`] reads the key under a consistency snapshot, lets the caller decide,
//! and applies the decision only if no other operation touched the key (its stripe)
//! since the snapshot; otherwise it reads again and asks again. Updates of one key queue
//! on a lock of their own, so they do not retry against each other. A write it applies is an
//! ordinary set or delete (same durability, same L1/L2 rules). Atomic among the writers
//! of this process; with an L2 shared by several nodes, writes of other nodes between
//! the read and the write are not seen (a later release moves these into the backend).

use super::backend::BackendEntry;
use super::{Cache, CacheError, CacheValue, SetReceipt, validate};
use std::time::Duration;

/// The entry an update decides on.
#[derive(Debug, Clone)]
pub struct Current {
    /// The value.
    pub value: CacheValue,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// Tags.
    pub tags: Vec<String>,
}

/// What an update does, and what it answers (`T`).
#[derive(Debug)]
pub enum Update<T> {
    /// Leave the key as it is.
    Keep(T),
    /// Store `value`; `ttl` None keeps the current expiry (the default TTL for a new key);
    /// `tags` None keeps the current tags.
    Set {
        /// The new value.
        value: CacheValue,
        /// Its TTL.
        ttl: Option<Duration>,
        /// Its tags.
        tags: Option<Vec<String>>,
        /// The answer.
        answer: T,
    },
    /// Remove the key.
    Delete(T),
}

/// Why an increment is refused, in Redis's words (which clients recognise).
pub const NOT_AN_INTEGER: &str = "value is not an integer or out of range";
/// Why an increment is refused when the sum would not fit 64 bits.
pub const OVERFLOW: &str = "increment or decrement would overflow";

/// Longest an update waits for the key to be quiet before reporting contention.
const PATIENCE: Duration = Duration::from_secs(5);

/// Updates of keys that hash alike wait for each other here, so concurrent updates of one
/// key queue instead of retrying against each other.
pub(super) struct UpdateLocks(Box<[tokio::sync::Mutex<()>]>);

impl Default for UpdateLocks {
    fn default() -> Self {
        UpdateLocks((0..64).map(|_| tokio::sync::Mutex::new(())).collect())
    }
}

impl UpdateLocks {
    fn of(&self, key: &str) -> &tokio::sync::Mutex<()> {
        use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
        let h = BuildHasherDefault::<DefaultHasher>::default().hash_one(key) as usize;
        &self.0[h % self.0.len()]
    }
}

impl Cache {
    /// Applies `decide` atomically to `key` (see the module doc). `decide` may be called
    /// more than once (after a concurrent change) and must not have side effects.
    pub async fn update<T>(
        &self,
        key: &str,
        decide: impl FnMut(Option<&Current>) -> Result<Update<T>, CacheError>,
    ) -> Result<T, CacheError> {
        Ok(self.update_stored(key, decide).await?.0)
    }

    /// As [`Cache::update`], also returning what a `Set` decision stored.
    async fn update_stored<T>(
        &self,
        key: &str,
        mut decide: impl FnMut(Option<&Current>) -> Result<Update<T>, CacheError>,
    ) -> Result<(T, Option<SetReceipt>), CacheError> {
        validate::key(key)?;
        let inner = &*self.inner;
        let _turn = inner.updates.of(key).lock().await;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        let mut pause = Duration::from_micros(50);
        loop {
            if tokio::time::Instant::now() > deadline {
                return Err(CacheError::Backend(format!("key '{key}' kept changing under concurrent writers; try again")));
            }
            let Some(snap) = inner.consistency.snapshot(key) else {
                // A plain set or delete of the key is being made durable: let it finish.
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_millis(5));
                continue;
            };
            let now_ms = inner.clock.now_ms();
            let current = self.current(key, now_ms).await?;
            match decide(current.as_ref())? {
                Update::Keep(answer) => return Ok((answer, None)),
                Update::Set { value, ttl, tags, answer } => {
                    validate::value_size(value.len(), &inner.config)?;
                    let expires_ms = match (ttl, &current) {
                        (Some(ttl), _) => now_ms.saturating_add(validate::ttl(Some(ttl), &inner.config)?.as_millis() as i64),
                        (None, Some(c)) => c.expires_ms,
                        (None, None) => now_ms.saturating_add(validate::ttl(None, &inner.config)?.as_millis() as i64),
                    };
                    let tags = match tags {
                        Some(t) => validate::tags(&t)?,
                        None => current.map(|c| c.tags).unwrap_or_default(),
                    };
                    let Some(ticket) = inner.consistency.begin_if(key, &snap, || {
                        self.l1_forget(key);
                    }) else {
                        continue;
                    };
                    let receipt = self.write(key, value, now_ms, expires_ms, tags, ticket).await?;
                    return Ok((answer, Some(receipt)));
                }
                Update::Delete(answer) => {
                    let mut in_l1 = false;
                    let Some(ticket) = inner.consistency.begin_if(key, &snap, || in_l1 = self.l1_forget(key)) else { continue };
                    self.remove(key, in_l1, ticket).await?;
                    return Ok((answer, None));
                }
            }
        }
    }

    /// Adds `by` to the integer stored under `key` as decimal text (Redis's `INCRBY`),
    /// atomically, and returns the sum. A missing key counts as 0 and is created with
    /// `ttl_for_new` (None: the default TTL); an existing key keeps its TTL and tags. A
    /// value that is not a decimal 64-bit integer, or a sum that would overflow, is
    /// [`CacheError::Conflict`] and changes nothing.
    pub async fn incr_by(&self, key: &str, by: i64, ttl_for_new: Option<Duration>) -> Result<i64, CacheError> {
        self.update(key, |cur| {
            let now = match cur {
                None => 0,
                Some(c) => std::str::from_utf8(c.value.data())
                    .ok()
                    .and_then(|s| s.parse::<i64>().ok())
                    .ok_or_else(|| CacheError::Conflict(NOT_AN_INTEGER.into()))?,
            };
            let next = now.checked_add(by).ok_or_else(|| CacheError::Conflict(OVERFLOW.into()))?;
            let value = CacheValue::with_content_type(next.to_string().into_bytes(), "text/plain");
            Ok(Update::Set { value, ttl: if cur.is_none() { ttl_for_new } else { None }, tags: None, answer: next })
        })
        .await
    }

    /// Stores `value` under `key` only if the key holds no live entry (Redis's `SET NX`),
    /// atomically; returns what it stored, or None when the key was taken.
    pub async fn set_if_absent(
        &self,
        key: &str,
        value: CacheValue,
        ttl: Option<Duration>,
        tags: &[String],
    ) -> Result<Option<SetReceipt>, CacheError> {
        let tags = validate::tags(tags)?;
        let decide = |cur: Option<&Current>| {
            Ok(match cur {
                Some(_) => Update::Keep(()),
                None => Update::Set { value: value.clone(), ttl, tags: Some(tags.clone()), answer: () },
            })
        };
        Ok(self.update_stored(key, decide).await?.1)
    }

    /// The live entry under `key`, read without counting a hit or filling L1.
    async fn current(&self, key: &str, now_ms: i64) -> Result<Option<Current>, CacheError> {
        let inner = &*self.inner;
        if let Some(e) = inner.l1.as_ref().and_then(|l1| l1.get(key, &inner.clock)) {
            let (expires_ms, tags) = (e.entry_expires_ms(), e.value.tags().to_vec());
            return Ok(Some(Current { value: e.value, expires_ms, tags }));
        }
        let Some(l2) = &inner.l2 else { return Ok(None) };
        Ok(l2.get(&self.full_key(key), now_ms).await?.map(|BackendEntry { value, expires_ms, tags }| Current { value, expires_ms, tags }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::config::CacheConfig;
    use crate::clock::SystemClock;
    use std::sync::Arc;

    fn incr(key: &'static str, cache: Cache) -> impl Future<Output = i64> {
        async move {
            cache
                .update(key, |cur| {
                    let n = cur.map_or(0, |c| std::str::from_utf8(c.value.data()).unwrap().parse::<i64>().unwrap()) + 1;
                    Ok(Update::Set { value: CacheValue::new(n.to_string().into_bytes()), ttl: None, tags: None, answer: n })
                })
                .await
                .unwrap()
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_increments_and_sets_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(crate::store::Store::open(dir.path()).unwrap(), Arc::new(SystemClock), CacheConfig::default());
        cache.set("n", CacheValue::new(b"0".to_vec()), Some(Duration::from_secs(600)), &["t".into()]).await.unwrap();
        let mut handles = Vec::new();
        for _ in 0..8 {
            let c = cache.clone();
            handles.push(tokio::spawn(async move {
                for _ in 0..50 {
                    incr("n", c.clone()).await;
                }
            }));
        }
        for h in handles {
            h.await.unwrap();
        }
        let hit = cache.lookup("n").await.unwrap().unwrap();
        assert_eq!(hit.value.data().as_ref(), b"400", "400 increments, none lost");
        let cur = cache.current("n", 0).await.unwrap().unwrap();
        assert_eq!(cur.tags, ["t"], "an update without tags keeps them");
        assert!(cur.expires_ms > chrono::Utc::now().timestamp_millis() + 500_000, "and keeps the TTL");
    }

    #[tokio::test]
    async fn a_compare_and_delete_only_deletes_the_expected_value() {
        let dir = tempfile::tempdir().unwrap();
        let cache = Cache::new(crate::store::Store::open(dir.path()).unwrap(), Arc::new(SystemClock), CacheConfig::default());
        cache.set("lock", CacheValue::new(b"owner-a".to_vec()), None, &[]).await.unwrap();
        let cad = |expected: &'static [u8]| {
            let cache = cache.clone();
            async move {
                cache
                    .update("lock", |cur| {
                        Ok(if cur.is_some_and(|c| c.value.data().as_ref() == expected) { Update::Delete(1) } else { Update::Keep(0) })
                    })
                    .await
                    .unwrap()
            }
        };
        assert_eq!(cad(b"owner-b").await, 0);
        assert!(cache.get("lock").await.unwrap().is_some());
        assert_eq!(cad(b"owner-a").await, 1);
        assert!(cache.get("lock").await.unwrap().is_none());
    }
}
