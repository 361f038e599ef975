//! The two-tier cache (seed "4. Cache Module").
//!
//! - **L1** ([`l1`]): quick_cache in memory, bounded by entries (`cache.l1.max_size`) and
//!   bytes (`cache.l1.max_bytes`). Each
//!   entry keeps its expiry; an L1 copy lives at most `cache.l1.ttl` seconds (and never
//!   longer than the entry). An L1 hit is a pure in-memory path: no lock besides the
//!   shard's, no allocation, no I/O.
//! - **L2** ([`backend::CacheBackend`], default [`embedded::EmbeddedBackend`] on the
//!   foundation's redb store): survives restarts, compresses values above
//!   `cache.compression.threshold` with zstd, is bounded in bytes (`cache.l2.max_size`,
//!   earliest-expiry-first eviction) and is swept of expired entries in the background.
//!   Keys are namespaced with `cache.l2.key_prefix`. Writes are durable when acknowledged.
//! - A lookup tries L1, then L2 (promoting an L2 hit into L1). `set`, `delete`,
//!   `invalidate` and `delete_pattern` apply to both tiers; [`consistency`] makes sure a
//!   removal is never undone by a concurrent fill (promotion or `get_or_set` factory)
//!   that read the old value before it.
//! - `get_or_set` is single flight ([`flight`]): concurrent misses on one key run the
//!   factory once; a failing factory hands its error to every waiter.
//! - [`Cache::cached`] is the Rust counterpart of the seed's `@cached(ttl, tags)`
//!   decorator: wrap the body of an async fn, get a typed (serde JSON) value back.
//!
//! Invariant: no tier ever returns an entry whose expiry has passed (by the cache's clock).

mod atomic;
pub mod backend;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod consistency;
mod counters;
pub mod embedded;
mod error;
mod flight;
mod hooks;
mod key;
mod l1;
pub mod listing;
mod model;
mod peers;
pub(crate) mod record;
pub mod redis;
mod time;
mod typed;
pub mod validate;

pub use atomic::{Current, NOT_AN_INTEGER, OVERFLOW, Update};
pub use backend::{BackendEntry, CacheBackend, Changed};
pub use error::CacheError;
pub use hooks::CacheHooks;
pub use listing::KeyListing;
pub use model::{CacheStats, CacheValue, Hit, SetReceipt, Tier, TierStats};

use crate::{clock::SharedClock, store::Store};
use backend::KeyFilter;
use config::CacheConfig;
use consistency::{Consistency, Snapshot};
use counters::{Count, Counters, Sizes};
use flight::{Flights, Role};
use hooks::HookList;
use l1::{L1, L1Entry};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use time::CacheClock;

/// The cache. Cheap to clone; every clone is the same cache.
#[derive(Clone)]
pub struct Cache {
    inner: Arc<Inner>,
}

struct Inner {
    config: CacheConfig,
    clock: CacheClock,
    l1: Option<L1>,
    l2: Option<Arc<dyn CacheBackend>>,
    prefix: String,
    consistency: Arc<Consistency>,
    updates: atomic::UpdateLocks,
    flights: Arc<Flights>,
    counters: Counters,
    hooks: HookList,
}

impl Cache {
    /// Builds the cache with the embedded L2 on the shared store (when L2 is enabled),
    /// whatever `cache.l2.backend` says.
    pub fn new(store: Store, clock: SharedClock, config: CacheConfig) -> Self {
        let l2 = config.l2.enabled.then(|| Cache::embedded_l2(store, &config));
        Cache::with_backend(clock, config, l2)
    }

    /// The built-in L2 backend `cache.l2.backend` names: on `store`, or on `redis`
    /// (which the caller connected for the `redis` backend).
    pub fn configured_l2(
        store: Store,
        redis: Option<crate::cluster::Redis>,
        config: &CacheConfig,
    ) -> Result<Arc<dyn CacheBackend>, CacheError> {
        match config.l2.backend {
            config::L2Backend::Embedded => Ok(Cache::embedded_l2(store, config)),
            config::L2Backend::Redis => {
                let redis = redis.ok_or_else(|| CacheError::Backend("cache.l2.backend is redis but no Redis is connected".into()))?;
                Ok(Arc::new(redis::RedisBackend::new(redis, Cache::compress_above(config))))
            }
        }
    }

    fn embedded_l2(store: Store, config: &CacheConfig) -> Arc<dyn CacheBackend> {
        Arc::new(embedded::EmbeddedBackend::new(store, config.l2.max_size, Cache::compress_above(config)))
    }

    /// Values longer than this are stored compressed (None: never).
    fn compress_above(config: &CacheConfig) -> Option<usize> {
        config.compression.enabled.then_some(config.compression.threshold)
    }

    /// Builds the cache on an explicit L2 backend (None: L1 only).
    pub fn with_backend(clock: SharedClock, config: CacheConfig, l2: Option<Arc<dyn CacheBackend>>) -> Self {
        counters::describe();
        let l1 = config.l1.enabled.then(|| L1::new(config.l1.max_size, config.l1.max_bytes));
        let prefix = config.l2.key_prefix.clone();
        Cache {
            inner: Arc::new(Inner {
                config,
                clock: CacheClock::new(clock),
                l1,
                l2,
                prefix,
                consistency: Consistency::new(),
                updates: atomic::UpdateLocks::default(),
                flights: Arc::default(),
                counters: Counters::default(),
                hooks: HookList::default(),
            }),
        }
    }

    /// Starts the background loop: publishes metrics every second and sweeps expired L2
    /// entries every `cache.l2.sweep_interval` seconds, until shutdown.
    pub fn start(&self, bg: &crate::runtime::Background) {
        let (me, shutdown) = (self.clone(), bg.shutdown.clone());
        bg.supervise("cache.upkeep", move || me.clone().upkeep(shutdown.clone()));
        if self.follows_peers() {
            let (me, shutdown) = (self.clone(), bg.shutdown.clone());
            bg.supervise("cache.peers", move || me.clone().follow_peers(shutdown.clone()));
        }
    }

    /// The background loop of [`Cache::start`].
    async fn upkeep(self, shutdown: tokio_util::sync::CancellationToken) {
        let cache = self;
        {
            let sweep_every = cache.inner.config.l2.sweep_interval.max(1);
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut n: u64 = 0;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                n += 1;
                if n.is_multiple_of(sweep_every)
                    && let Err(e) = cache.sweep_expired().await
                {
                    tracing::warn!(error = %e, "cache sweep failed");
                }
                if cache.inner.config.metrics.enabled {
                    cache.publish_metrics().await;
                }
            }
        }
    }

    /// Whether L1 expiry checks currently use the coarse clock (see the `time` module);
    /// for benchmarks and diagnostics.
    #[doc(hidden)]
    pub fn l1_clock_is_coarse(&self) -> bool {
        self.inner.clock.is_coarse()
    }

    /// The configuration in effect.
    pub fn config(&self) -> &CacheConfig {
        &self.inner.config
    }

    /// Registers hooks called on every operation.
    pub fn register_hooks(&self, hooks: Arc<dyn CacheHooks>) {
        self.inner.hooks.register(hooks);
    }

    fn now_ms(&self) -> i64 {
        self.inner.clock.now_ms()
    }

    /// The live L1 entry for `key`, counting the hit or miss. A pure in-memory path.
    #[inline]
    fn l1_lookup(&self, key: &str) -> Option<L1Entry> {
        let inner = &*self.inner;
        let l1 = inner.l1.as_ref()?;
        match l1.get(key, &inner.clock) {
            Some(e) => {
                inner.counters.add(Count::L1Hit, 1);
                inner.hooks.each(|h| h.on_hit(key, Tier::L1));
                Some(e)
            }
            None => {
                inner.counters.add(Count::L1Miss, 1);
                None
            }
        }
    }

    fn full_key(&self, key: &str) -> String {
        let mut k = String::with_capacity(self.inner.prefix.len() + key.len());
        k.push_str(&self.inner.prefix);
        k.push_str(key);
        k
    }

    /// Expiry of the L1 copy of an entry expiring at `expires_ms`.
    fn l1_expiry(&self, now_ms: i64, expires_ms: i64) -> i64 {
        let cap = (self.inner.config.l1.ttl.min(self.inner.config.max_ttl) as i64).saturating_mul(1000);
        expires_ms.min(now_ms.saturating_add(cap))
    }

    /// The value under `key`, or None on a miss (seed `get`).
    pub async fn get(&self, key: &str) -> Result<Option<CacheValue>, CacheError> {
        self.inner.hooks.each(|h| h.on_get(key));
        if let Some(e) = self.l1_lookup(key) {
            return Ok(Some(e.value));
        }
        // Boxed so this future stays small: an L1 hit must not pay for moving the L2 state.
        Ok(Box::pin(self.lookup_l2(key)).await?.map(|h| h.value))
    }

    /// As [`Cache::get`], also saying which tier answered and when the entry expires.
    pub async fn lookup(&self, key: &str) -> Result<Option<Hit>, CacheError> {
        self.inner.hooks.each(|h| h.on_get(key));
        if let Some(e) = self.l1_lookup(key) {
            let expires_at = to_time(e.entry_expires_ms());
            return Ok(Some(Hit { value: e.value, tier: Tier::L1, expires_at }));
        }
        Box::pin(self.lookup_l2(key)).await
    }

    /// The L2 half of a lookup (after an L1 miss), promoting a hit into L1.
    async fn lookup_l2(&self, key: &str) -> Result<Option<Hit>, CacheError> {
        let inner = &*self.inner;
        // Only validated keys are ever stored, so the L1 hit path needs no check.
        validate::key(key)?;
        let now = self.now_ms();
        if let Some(l2) = &inner.l2 {
            let snap = inner.consistency.snapshot(key);
            if let Some(e) = l2.get(&self.full_key(key), now).await? {
                inner.counters.add(Count::L2Hit, 1);
                if let (Some(l1), Some(snap)) = (&inner.l1, snap) {
                    let entry = L1Entry::new(&e.value, self.l1_expiry(now, e.expires_ms), e.expires_ms, &e.tags);
                    inner.consistency.fill(&snap, || l1.insert(key, entry));
                }
                inner.hooks.each(|h| h.on_hit(key, Tier::L2));
                return Ok(Some(Hit { value: e.value, tier: Tier::L2, expires_at: to_time(e.expires_ms) }));
            }
            inner.counters.add(Count::L2Miss, 1);
        }
        inner.hooks.each(|h| h.on_miss(key));
        Ok(None)
    }

    /// Stores `value` under `key` in both tiers for `ttl` (None: `cache.l2.default_ttl`)
    /// with `tags` (seed `set`). Resolves once the L2 write is durable.
    pub async fn set(&self, key: &str, value: CacheValue, ttl: Option<Duration>, tags: &[String]) -> Result<SetReceipt, CacheError> {
        let inner = &*self.inner;
        validate::key(key)?;
        validate::value_size(value.len(), &inner.config)?;
        let ttl = validate::ttl(ttl, &inner.config)?;
        let tags = validate::tags(tags)?;
        let now_ms = inner.clock.now_ms();
        let expires_ms = now_ms.saturating_add(ttl.as_millis() as i64);
        let ticket = inner.consistency.begin(key, || {
            self.l1_forget(key);
        });
        self.write(key, value, now_ms, expires_ms, tags, ticket).await
    }

    /// Drops the L1 copy of `key`; whether there was one.
    fn l1_forget(&self, key: &str) -> bool {
        self.inner.l1.as_ref().is_some_and(|l1| l1.remove(key))
    }

    /// The write half of a set, once `ticket` orders it among the key's operations.
    async fn write(
        &self,
        key: &str,
        value: CacheValue,
        now_ms: i64,
        expires_ms: i64,
        tags: Vec<String>,
        ticket: consistency::Ticket,
    ) -> Result<SetReceipt, CacheError> {
        let inner = &*self.inner;
        if let Some(l2) = &inner.l2 {
            let entry = BackendEntry { value: value.clone(), expires_ms, tags: tags.clone() };
            let out = l2.set(&self.full_key(key), entry, ticket.precondition()).await?;
            inner.counters.l2_evictions.fetch_add(out.evicted, Relaxed);
        }
        if let Some(l1) = &inner.l1 {
            let entry = L1Entry::new(&value, self.l1_expiry(now_ms, expires_ms), expires_ms, &tags);
            ticket.finish(|| l1.insert(key, entry));
        } else {
            ticket.finish(|| {});
        }
        inner.counters.add(Count::Set, 1);
        inner.hooks.each(|h| h.on_set(key, &value));
        let ttl = (expires_ms - now_ms).max(0) as f64 / 1000.0;
        Ok(SetReceipt { key: key.to_owned(), bytes: value.len() as u64, ttl, expires_at: to_time(expires_ms), tags })
    }

    /// Removes `key` from both tiers (seed `delete`); returns whether it was present.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        validate::key(key)?;
        let mut in_l1 = false;
        let ticket = self.inner.consistency.begin(key, || in_l1 = self.l1_forget(key));
        self.remove(key, in_l1, ticket).await
    }

    /// The L2 half of a delete, once `ticket` orders it among the key's operations.
    async fn remove(&self, key: &str, in_l1: bool, ticket: consistency::Ticket) -> Result<bool, CacheError> {
        let inner = &*self.inner;
        let mut existed = in_l1;
        if let Some(l2) = &inner.l2 {
            let out = l2.delete(&self.full_key(key), ticket.precondition()).await?;
            existed |= out.existed;
        }
        ticket.finish(|| {});
        if existed {
            inner.counters.add(Count::Delete, 1);
        }
        inner.hooks.each(|h| h.on_delete(key));
        Ok(existed)
    }

    /// Removes every entry carrying any of `tags` from both tiers (seed `invalidate`);
    /// returns how many entries were removed (from L2 when enabled, else from L1).
    pub async fn invalidate(&self, tags: &[String]) -> Result<u64, CacheError> {
        let inner = &*self.inner;
        let tags = validate::tags(tags)?;
        if tags.is_empty() {
            return Err(CacheError::invalid("tags", "at least one tag is required"));
        }
        let mut n1 = 0;
        let guard = inner.consistency.begin_invalidation(|| {
            if let Some(l1) = &inner.l1 {
                n1 = l1.remove_where(|_, e| e.value.tags().iter().any(|x| tags.contains(x)));
            }
        });
        let n = match &inner.l2 {
            Some(l2) => l2.delete_tagged(&tags).await?,
            None => n1,
        };
        drop(guard);
        inner.counters.add(Count::Delete, n);
        for t in &tags {
            inner.hooks.each(|h| h.on_delete(&format!("tag:{t}")));
        }
        Ok(n)
    }

    /// Removes every key matching the glob `pattern` (e.g. `user:*`) from both tiers
    /// (seed `delete_pattern`); returns how many (from L2 when enabled, else from L1).
    pub async fn delete_pattern(&self, pattern: &str) -> Result<u64, CacheError> {
        let inner = &*self.inner;
        let p = validate::pattern(pattern)?;
        let mut n1 = 0;
        let guard = inner.consistency.begin_invalidation(|| {
            if let Some(l1) = &inner.l1 {
                n1 = l1.remove_where(|k, _| p.matcher.is_match(k));
            }
        });
        let n = match &inner.l2 {
            Some(l2) => {
                let plen = inner.prefix.len();
                let matcher = p.matcher.clone();
                let filter: KeyFilter = Arc::new(move |full: &str| full.get(plen..).is_some_and(|k| matcher.is_match(k)));
                l2.delete_matching(&self.full_key(&p.literal_prefix), filter).await?
            }
            None => n1,
        };
        drop(guard);
        inner.counters.add(Count::Delete, n);
        inner.hooks.each(|h| h.on_delete(pattern));
        Ok(n)
    }

    /// The value under `key`, or the one `factory` produces, stored for `ttl` (seed
    /// `get_or_set`). Single flight: concurrent misses on `key` run the factory once.
    pub async fn get_or_set<F, Fut, E>(&self, key: &str, factory: F, ttl: Option<Duration>) -> Result<CacheValue, CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CacheValue, E>>,
        E: Into<anyhow::Error>,
    {
        self.get_or_set_tagged(key, ttl, &[], factory).await
    }

    /// As [`Cache::get_or_set`], attaching `tags` to the stored value.
    ///
    /// The factory's value is returned to every waiter but stored only if no `set`,
    /// `delete`, `invalidate` or `delete_pattern` touched the key while it ran (so a
    /// removal is never undone by a value loaded before it).
    pub async fn get_or_set_tagged<F, Fut, E>(
        &self,
        key: &str,
        ttl: Option<Duration>,
        tags: &[String],
        factory: F,
    ) -> Result<CacheValue, CacheError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<CacheValue, E>>,
        E: Into<anyhow::Error>,
    {
        let inner = &*self.inner;
        validate::key(key)?;
        let ttl = validate::ttl(ttl, &inner.config)?;
        let tags = validate::tags(tags)?;
        if let Some(hit) = self.lookup(key).await? {
            return Ok(hit.value);
        }
        let mut factory = Some(factory);
        loop {
            match inner.flights.join(key) {
                Role::Waiter(rx) => {
                    if let Some(outcome) = flight::wait(rx).await {
                        return outcome;
                    }
                    // The leader was cancelled: try again (possibly as the leader).
                }
                Role::Leader(leader) => {
                    // A flight that finished between our lookup and `join` has filled L1.
                    if let Some(e) = inner.l1.as_ref().and_then(|l1| l1.get(key, &inner.clock)) {
                        leader.complete(Ok(e.value.clone()));
                        return Ok(e.value);
                    }
                    let snap = inner.consistency.snapshot(key);
                    let run = factory.take().expect("only a leader runs the factory, once");
                    let outcome = run().await.map_err(|e| CacheError::Factory(Arc::new(e.into())));
                    if let Ok(v) = &outcome {
                        self.fill(key, v, ttl, &tags, snap).await;
                    }
                    leader.complete(outcome.clone());
                    return outcome;
                }
            }
        }
    }

    /// Stores a factory's value if `snap` is still valid (see [`consistency`]).
    async fn fill(&self, key: &str, value: &CacheValue, ttl: Duration, tags: &[String], snap: Option<Snapshot>) {
        let inner = &*self.inner;
        let Some(snap) = snap else { return };
        if validate::value_size(value.len(), &inner.config).is_err() {
            tracing::debug!(key, bytes = value.len(), "factory value exceeds cache.max_entry_bytes; not cached");
            return;
        }
        let now = self.now_ms();
        let expires_ms = now.saturating_add(ttl.as_millis() as i64);
        if let Some(l2) = &inner.l2 {
            let entry = BackendEntry { value: value.clone(), expires_ms, tags: tags.to_vec() };
            match l2.set(&self.full_key(key), entry, snap.precondition(&inner.consistency)).await {
                Ok(out) if out.applied => {
                    inner.counters.l2_evictions.fetch_add(out.evicted, Relaxed);
                }
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(key, error = %e, "could not store a get_or_set value in L2");
                    return;
                }
            }
        }
        if let Some(l1) = &inner.l1 {
            let entry = L1Entry::new(value, self.l1_expiry(now, expires_ms), expires_ms, tags);
            if !inner.consistency.fill(&snap, || l1.insert(key, entry)) && inner.l2.is_none() {
                return;
            }
        }
        inner.counters.add(Count::Set, 1);
        inner.hooks.each(|h| h.on_set(key, value));
    }

    /// Removes expired L2 entries now (the background loop does this periodically);
    /// returns how many.
    pub async fn sweep_expired(&self) -> Result<u64, CacheError> {
        let Some(l2) = &self.inner.l2 else { return Ok(0) };
        let n = l2.sweep(self.now_ms()).await?;
        self.inner.counters.expired.fetch_add(n, Relaxed);
        Ok(n)
    }

    /// Hits, misses and hit rate overall and per tier, with entries, bytes and evictions
    /// (seed `get_stats`).
    pub async fn get_stats(&self) -> Result<CacheStats, CacheError> {
        let inner = &*self.inner;
        let c = &inner.counters;
        let l1 = match &inner.l1 {
            Some(l1) => {
                let (hits, misses) = (c.get(Count::L1Hit), c.get(Count::L1Miss));
                TierStats {
                    enabled: true,
                    hits,
                    misses,
                    hit_rate: model::hit_rate(hits, misses),
                    entries: l1.len(),
                    bytes: l1.bytes(),
                    capacity_bytes: l1.capacity(),
                    evictions: l1.evictions(),
                }
            }
            None => TierStats::default(),
        };
        let l2 = match &inner.l2 {
            Some(l2) => {
                let usage = l2.usage().await?;
                let (hits, misses) = (c.get(Count::L2Hit), c.get(Count::L2Miss));
                TierStats {
                    enabled: true,
                    hits,
                    misses,
                    hit_rate: model::hit_rate(hits, misses),
                    entries: usage.entries,
                    bytes: usage.bytes,
                    capacity_bytes: l2.capacity(),
                    evictions: c.l2_evictions.load(Relaxed),
                }
            }
            None => TierStats::default(),
        };
        let hits = l1.hits + l2.hits;
        // A lookup misses overall when the last enabled tier misses.
        let misses = if inner.l2.is_some() { l2.misses } else { l1.misses };
        let (entries, bytes) = if inner.l2.is_some() { (l2.entries, l2.bytes) } else { (l1.entries, l1.bytes) };
        Ok(CacheStats {
            hits,
            misses,
            hit_rate: model::hit_rate(hits, misses),
            entries,
            bytes,
            evictions: l1.evictions + l2.evictions,
            sets: c.get(Count::Set),
            deletes: c.get(Count::Delete),
            expired: c.expired.load(Relaxed),
            l1,
            l2,
        })
    }

    /// Copies the current counters and sizes into the `hearth_cache_*` metrics.
    pub async fn publish_metrics(&self) {
        match self.get_stats().await {
            Ok(s) => self.inner.counters.publish(&Sizes {
                l1_entries: s.l1.entries,
                l1_bytes: s.l1.bytes,
                l1_evictions: s.l1.evictions,
                l2_entries: s.l2.entries,
                l2_bytes: s.l2.bytes,
            }),
            Err(e) => tracing::warn!(error = %e, "cannot read cache stats for metrics"),
        }
    }
}

fn to_time(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or(chrono::DateTime::<chrono::Utc>::MAX_UTC)
}

#[cfg(test)]
mod tests;
