//! Hot-path counters and their export as `hearth_cache_*` Prometheus metrics.
//!
//! Lookups happen on many threads at once; a single shared atomic per counter would make
//! every L1 hit bounce one cache line between cores. Each counter is therefore striped
//! over cache-line-padded slots chosen per thread, summed when read. The totals are
//! copied into the `metrics` recorder by [`Counters::publish`] (called by the background
//! loop and by `get_stats`), so the hot path never touches the recorder.

use super::model::Tier;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

const SLOTS: usize = 16;

#[repr(align(128))]
#[derive(Default)]
struct Slot(AtomicU64);

/// A counter striped over per-thread slots.
#[derive(Default)]
pub(crate) struct Striped([Slot; SLOTS]);

fn slot_index() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static INDEX: usize = NEXT.fetch_add(1, Relaxed) % SLOTS;
    }
    INDEX.with(|i| *i)
}

impl Striped {
    /// Adds `n`.
    #[inline]
    pub fn add(&self, n: u64) {
        self.0[slot_index()].0.fetch_add(n, Relaxed);
    }

    /// The current total.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

/// Every counter of the cache.
#[derive(Default)]
pub(crate) struct Counters {
    pub l1_hits: Striped,
    pub l1_misses: Striped,
    pub l2_hits: Striped,
    pub l2_misses: Striped,
    pub sets: Striped,
    pub deletes: Striped,
    pub l2_evictions: AtomicU64,
    pub expired: AtomicU64,
}

impl Counters {
    /// Records a hit in `tier`.
    #[inline]
    pub fn hit(&self, tier: Tier) {
        match tier {
            Tier::L1 => self.l1_hits.add(1),
            Tier::L2 => self.l2_hits.add(1),
        }
    }
}

/// Gauge values read on demand.
pub(crate) struct Sizes {
    pub l1_entries: u64,
    pub l1_bytes: u64,
    pub l1_evictions: u64,
    pub l2_entries: u64,
    pub l2_bytes: u64,
}

/// Registers HELP text for every cache metric. Repeated by every publish because the
/// process-wide recorder may be installed after the cache is built (descriptions sent to
/// no recorder are lost); describing again is cheap and idempotent.
pub(crate) fn describe() {
    {
        metrics::describe_counter!("hearth_cache_hits_total", "Cache lookups answered, by tier (l1, l2).");
        metrics::describe_counter!("hearth_cache_misses_total", "Cache lookups a tier could not answer, by tier (l1, l2).");
        metrics::describe_counter!("hearth_cache_evictions_total", "Cache entries evicted to respect the capacity, by tier.");
        metrics::describe_counter!("hearth_cache_sets_total", "Values stored in the cache.");
        metrics::describe_counter!("hearth_cache_deletes_total", "Cache entries removed by delete, invalidate or delete_pattern.");
        metrics::describe_counter!("hearth_cache_expired_total", "Expired L2 entries removed by the background sweeper.");
        metrics::describe_gauge!("hearth_cache_entries", "Entries held, by tier.");
        metrics::describe_gauge!("hearth_cache_bytes", metrics::Unit::Bytes, "Bytes held, by tier.");
    }
}

impl Counters {
    /// Copies the totals into the process-wide metrics recorder.
    pub fn publish(&self, sizes: &Sizes) {
        use metrics::{counter, gauge};
        describe();
        for (tier, hits, misses, evictions, entries, bytes) in [
            ("l1", self.l1_hits.get(), self.l1_misses.get(), sizes.l1_evictions, sizes.l1_entries, sizes.l1_bytes),
            ("l2", self.l2_hits.get(), self.l2_misses.get(), self.l2_evictions.load(Relaxed), sizes.l2_entries, sizes.l2_bytes),
        ] {
            counter!("hearth_cache_hits_total", "tier" => tier).absolute(hits);
            counter!("hearth_cache_misses_total", "tier" => tier).absolute(misses);
            counter!("hearth_cache_evictions_total", "tier" => tier).absolute(evictions);
            gauge!("hearth_cache_entries", "tier" => tier).set(entries as f64);
            gauge!("hearth_cache_bytes", "tier" => tier).set(bytes as f64);
        }
        counter!("hearth_cache_sets_total").absolute(self.sets.get());
        counter!("hearth_cache_deletes_total").absolute(self.deletes.get());
        counter!("hearth_cache_expired_total").absolute(self.expired.load(Relaxed));
    }
}
