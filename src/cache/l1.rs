//! L1: the in-memory tier, a quick_cache (S3-FIFO-like, sharded) weighted by bytes.
//!
//! quick_cache has no TTL, so every entry carries its expiry (milliseconds since the Unix
//! epoch) and a lookup treats an expired entry as a miss and drops it.
//! Invariant: [`L1::get`] never returns an entry whose expiry has passed (see [`super::time`]).

use super::model::CacheValue;
use super::time::CacheClock;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter, sync::Cache as Qc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fixed per-entry overhead counted in the weight (entry struct, hash slot, key header).
const ENTRY_OVERHEAD: u64 = 96;

/// Shares one allocation per distinct content type among L1 entries, so a hit touches a
/// hot reference count instead of a cold per-entry one. Bounded: past 1024 distinct types
/// values keep their own.
pub(crate) fn interned(mut v: CacheValue) -> CacheValue {
    use std::collections::HashMap;
    use std::sync::LazyLock;
    static TYPES: LazyLock<parking_lot::Mutex<HashMap<Arc<str>, ()>>> = LazyLock::new(Default::default);
    if let Some(ct) = &v.content_type {
        let mut m = TYPES.lock();
        if let Some((shared, _)) = m.get_key_value(ct) {
            v.content_type = Some(shared.clone());
        } else if m.len() < 1024 {
            m.insert(ct.clone(), ());
        }
    }
    v
}

/// One L1 entry.
#[derive(Clone)]
pub(crate) struct L1Entry {
    pub value: CacheValue,
    /// When this L1 copy expires (at most `cache.l1.ttl` after it was made).
    pub expires_ms: i64,
    /// When the entry itself expires (reported to callers).
    pub entry_expires_ms: i64,
    pub tags: Option<Arc<[String]>>,
}

#[derive(Clone)]
struct ByteWeighter;

impl Weighter<String, L1Entry> for ByteWeighter {
    fn weight(&self, key: &String, v: &L1Entry) -> u64 {
        let ct = v.value.content_type.as_ref().map_or(0, |c| c.len());
        let tags: usize = v.tags.as_ref().map_or(0, |t| t.iter().map(|s| s.len() + 24).sum());
        (key.len() + v.value.data.len() + ct + tags) as u64 + ENTRY_OVERHEAD
    }
}

/// Counts evictions (quick_cache reports them through its lifecycle).
#[derive(Clone, Default)]
struct CountEvictions(Arc<AtomicU64>);

impl Lifecycle<String, L1Entry> for CountEvictions {
    type RequestState = ();
    fn begin_request(&self) {}
    fn on_evict(&self, _state: &mut (), _key: String, _val: L1Entry) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// The in-memory tier.
pub(crate) struct L1 {
    cache: Qc<String, L1Entry, ByteWeighter, DefaultHashBuilder, CountEvictions>,
    evictions: Arc<AtomicU64>,
    capacity: u64,
}

impl L1 {
    /// An empty tier holding at most `max_bytes` (weighted).
    pub fn new(max_bytes: u64) -> Self {
        let lifecycle = CountEvictions::default();
        let evictions = lifecycle.0.clone();
        let estimated = (max_bytes / 1024).clamp(64, 4_000_000) as usize;
        let options = OptionsBuilder::new()
            .estimated_items_capacity(estimated)
            .weight_capacity(max_bytes.max(1))
            .build()
            .expect("valid quick_cache options");
        let cache = Qc::with_options(options, ByteWeighter, DefaultHashBuilder::default(), lifecycle);
        L1 { cache, evictions, capacity: max_bytes }
    }

    /// The live entry for `key`, or None (dropping it when expired).
    #[inline]
    pub fn get(&self, key: &str, clock: &CacheClock) -> Option<L1Entry> {
        let e = self.cache.get(key)?;
        if clock.alive(e.expires_ms) {
            return Some(e);
        }
        let now_ms = clock.now_ms();
        self.cache.remove_if(key, |v| v.expires_ms <= now_ms);
        None
    }

    /// Inserts or replaces `key`.
    pub fn insert(&self, key: String, entry: L1Entry) {
        self.cache.insert(key, entry);
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&self, key: &str) -> bool {
        self.cache.remove(key).is_some()
    }

    /// Removes every entry for which `drop` is true; returns how many.
    pub fn remove_where(&self, drop: impl Fn(&str, &L1Entry) -> bool) -> u64 {
        let n = std::cell::Cell::new(0u64);
        self.cache.retain(|k, v| {
            let d = drop(k, v);
            n.set(n.get() + d as u64);
            !d
        });
        n.get()
    }

    /// Entries held (including expired ones not yet looked up).
    pub fn len(&self) -> u64 {
        self.cache.len() as u64
    }

    /// Weighted bytes held.
    pub fn bytes(&self) -> u64 {
        self.cache.weight()
    }

    /// Configured capacity in bytes.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Evictions since start.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }
}
