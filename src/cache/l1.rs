//! L1: the in-memory tier, a quick_cache (S3-FIFO-like, sharded) weighted by bytes.
//! It is bounded twice, by entries (`cache.l1.max_size`, the seed's meaning) and by bytes
//! (`cache.l1.max_bytes`): every entry weighs at least `max_bytes / max_size`, so the
//! byte capacity also caps the number of entries.
//!
//! quick_cache has no TTL, so every entry carries its expiry (milliseconds since the Unix
//! epoch) and a lookup treats an expired entry as a miss and drops it.
//! Invariant: [`L1::get`] never returns an entry whose expiry has passed (see [`super::time`]).

use super::key::L1Key;
use super::model::CacheValue;
use super::time::CacheClock;
use quick_cache::{DefaultHashBuilder, Lifecycle, OptionsBuilder, Weighter, sync::Cache as Qc};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Fixed per-entry overhead counted in the weight (slot, inline key, the shared payload
/// allocation with its metadata).
const ENTRY_OVERHEAD: u64 = 160;

/// One L1 entry: sixteen bytes, so that a hit clones one reference count and moves two
/// words (quick_cache returns a clone of the stored value; a larger entry is returned
/// through memory and copied between differently shaped temporaries, which stalls the
/// CPU's store forwarding and cost more than the lookup itself). The entry's expiry and
/// tags travel inside the value ([`CacheValue::stored`]).
#[derive(Clone)]
pub(crate) struct L1Entry {
    /// The value, recording the entry's own expiry and tags.
    pub value: CacheValue,
    /// When this L1 copy expires (at most `cache.l1.ttl` after it was made, never after
    /// the entry).
    pub expires_ms: i64,
}

impl L1Entry {
    /// The L1 copy of `value` for an entry expiring at `entry_expires_ms` with `tags`,
    /// kept in L1 until `l1_expires_ms`.
    pub fn new(value: &CacheValue, l1_expires_ms: i64, entry_expires_ms: i64, tags: &[String]) -> Self {
        let tags = (!tags.is_empty()).then(|| Arc::from(tags));
        L1Entry { value: value.stored(entry_expires_ms, tags), expires_ms: l1_expires_ms.min(entry_expires_ms) }
    }

    /// When the entry itself expires (reported to callers).
    pub fn entry_expires_ms(&self) -> i64 {
        self.value.entry_expires_ms().unwrap_or(self.expires_ms)
    }
}

/// Weighs an entry by its bytes, and at least `floor` (the byte capacity over the entry
/// capacity).
#[derive(Clone)]
struct ByteWeighter {
    floor: u64,
}

impl Weighter<L1Key, L1Entry> for ByteWeighter {
    fn weight(&self, key: &L1Key, v: &L1Entry) -> u64 {
        let ct = v.value.content_type().map_or(0, str::len);
        let tags: usize = v.value.tags().iter().map(|s| s.len() + 24).sum();
        ((key.byte_len() + v.value.len() + ct + tags) as u64 + ENTRY_OVERHEAD).max(self.floor)
    }
}

/// Counts evictions (quick_cache reports them through its lifecycle).
#[derive(Clone, Default)]
struct CountEvictions(Arc<AtomicU64>);

impl Lifecycle<L1Key, L1Entry> for CountEvictions {
    type RequestState = ();
    fn begin_request(&self) {}
    fn on_evict(&self, _state: &mut (), _key: L1Key, _val: L1Entry) {
        self.0.fetch_add(1, Relaxed);
    }
}

/// The in-memory tier.
pub(crate) struct L1 {
    cache: Qc<L1Key, L1Entry, ByteWeighter, DefaultHashBuilder, CountEvictions>,
    evictions: Arc<AtomicU64>,
    capacity: u64,
}

impl L1 {
    /// An empty tier holding at most `max_entries` entries and `max_bytes` (weighted).
    pub fn new(max_entries: u64, max_bytes: u64) -> Self {
        let lifecycle = CountEvictions::default();
        let evictions = lifecycle.0.clone();
        let max_bytes = max_bytes.max(1);
        let floor = max_bytes.div_ceil(max_entries.max(1));
        // Also what quick_cache sizes its shards by (at least 32 items each), so that a
        // shard always has room for entries of the floor weight.
        let estimated = max_entries.min(max_bytes / 1024).clamp(1, 4_000_000) as usize;
        let options = OptionsBuilder::new()
            .estimated_items_capacity(estimated)
            .weight_capacity(max_bytes)
            .build()
            .expect("valid quick_cache options");
        let cache = Qc::with_options(options, ByteWeighter { floor }, DefaultHashBuilder::default(), lifecycle);
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
    pub fn insert(&self, key: &str, entry: L1Entry) {
        self.cache.insert(L1Key::new(key), entry);
    }

    /// Removes `key`; returns whether it was present.
    pub fn remove(&self, key: &str) -> bool {
        self.cache.remove(key).is_some()
    }

    /// Removes every entry for which `drop` is true; returns how many.
    pub fn remove_where(&self, drop: impl Fn(&str, &L1Entry) -> bool) -> u64 {
        let n = std::cell::Cell::new(0u64);
        self.cache.retain(|k, v| {
            let d = drop(k.as_str(), v);
            n.set(n.get() + d as u64);
            !d
        });
        n.get()
    }

    /// The keys of live entries for which `keep` is true, in no particular order.
    pub fn live_keys(&self, clock: &CacheClock, keep: impl Fn(&str) -> bool) -> Vec<String> {
        self.cache.iter().filter(|(k, e)| keep(k.as_str()) && clock.alive(e.expires_ms)).map(|(k, _)| k.as_str().to_owned()).collect()
    }

    /// Entries held (including expired ones not yet looked up).
    pub fn len(&self) -> u64 {
        self.cache.len() as u64
    }

    /// Weighted bytes held (each entry counts at least `max_bytes / max_size`).
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
