//! Hot-path counters and their export as `hearth_cache_*` Prometheus metrics.
//!
//! Lookups happen on many threads at once. A shared atomic per counter would make every
//! L1 hit bounce one cache line between cores, and even an uncontended atomic
//! read-modify-write costs as much as a third of a quick_cache lookup. So each thread
//! claims a slot of its own (a cache-line-padded row of all the counters) for as long
//! as it lives; only the owner writes its row, with a plain load and store. Threads
//! beyond [`SLOTS`] live ones share one overflow row updated with atomic adds. Reads sum
//! every row. The totals are copied into the `metrics` recorder by [`Counters::publish`]
//! (called by the background loop), so the hot path never touches the recorder.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Rows owned by one thread each; further threads use the shared overflow row.
const SLOTS: usize = 32;

/// What a counter counts.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Count {
    L1Hit,
    L1Miss,
    L2Hit,
    L2Miss,
    Set,
    Delete,
}

const KINDS: usize = 6;

/// One thread's counters, alone on its cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Row([AtomicU64; KINDS]);

/// Process-wide assignment of rows to live threads: the same index in every cache.
mod claim {
    use super::*;

    static NEXT: AtomicUsize = AtomicUsize::new(0);
    static FREE: parking_lot::Mutex<Vec<usize>> = parking_lot::Mutex::new(Vec::new());

    /// A row index owned by the current thread until it exits.
    pub(super) struct Claim(Option<usize>);

    impl Claim {
        fn take() -> Claim {
            let mut free = FREE.lock();
            if let Some(i) = free.pop() {
                return Claim(Some(i));
            }
            let i = NEXT.load(Relaxed);
            if i < SLOTS {
                NEXT.store(i + 1, Relaxed);
                return Claim(Some(i));
            }
            Claim(None)
        }
    }

    impl Drop for Claim {
        fn drop(&mut self) {
            // The mutex orders this thread's last stores before the next owner's loads.
            if let Some(i) = self.0 {
                FREE.lock().push(i);
            }
        }
    }

    thread_local! {
        static MINE: Claim = Claim::take();
    }

    /// The row this thread owns, or None (overflow row; also while the thread exits).
    #[inline]
    pub(super) fn row() -> Option<usize> {
        MINE.try_with(|c| c.0).ok().flatten()
    }
}

/// Every counter of the cache.
pub(crate) struct Counters {
    /// `SLOTS` owned rows, then the shared overflow row.
    rows: Box<[Row]>,
    pub l2_evictions: AtomicU64,
    pub expired: AtomicU64,
}

impl Default for Counters {
    fn default() -> Self {
        Counters { rows: (0..=SLOTS).map(|_| Row::default()).collect(), l2_evictions: AtomicU64::new(0), expired: AtomicU64::new(0) }
    }
}

impl Counters {
    /// Adds `n` to `what`.
    #[inline]
    pub fn add(&self, what: Count, n: u64) {
        match claim::row() {
            Some(i) => {
                // Only this thread writes row `i`: no read-modify-write needed.
                let c = &self.rows[i].0[what as usize];
                c.store(c.load(Relaxed).wrapping_add(n), Relaxed);
            }
            None => {
                self.rows[SLOTS].0[what as usize].fetch_add(n, Relaxed);
            }
        }
    }

    /// The current total of `what`.
    pub fn get(&self, what: Count) -> u64 {
        self.rows.iter().map(|r| r.0[what as usize].load(Relaxed)).fold(0, u64::wrapping_add)
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
            ("l1", self.get(Count::L1Hit), self.get(Count::L1Miss), sizes.l1_evictions, sizes.l1_entries, sizes.l1_bytes),
            ("l2", self.get(Count::L2Hit), self.get(Count::L2Miss), self.l2_evictions.load(Relaxed), sizes.l2_entries, sizes.l2_bytes),
        ] {
            counter!("hearth_cache_hits_total", "tier" => tier).absolute(hits);
            counter!("hearth_cache_misses_total", "tier" => tier).absolute(misses);
            counter!("hearth_cache_evictions_total", "tier" => tier).absolute(evictions);
            gauge!("hearth_cache_entries", "tier" => tier).set(entries as f64);
            gauge!("hearth_cache_bytes", "tier" => tier).set(bytes as f64);
        }
        counter!("hearth_cache_sets_total").absolute(self.get(Count::Set));
        counter!("hearth_cache_deletes_total").absolute(self.get(Count::Delete));
        counter!("hearth_cache_expired_total").absolute(self.expired.load(Relaxed));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn totals_from_many_threads_are_exact_including_overflow_and_exited_threads() {
        let c = Arc::new(Counters::default());
        // More threads than owned rows, in waves so rows are released and reused.
        for _wave in 0..3 {
            let hs: Vec<_> = (0..SLOTS + 8)
                .map(|_| {
                    let c = c.clone();
                    std::thread::spawn(move || {
                        for _ in 0..1000 {
                            c.add(Count::L1Hit, 1);
                        }
                        c.add(Count::Set, 2);
                    })
                })
                .collect();
            for h in hs {
                h.join().unwrap();
            }
        }
        assert_eq!(c.get(Count::L1Hit), 3 * (SLOTS as u64 + 8) * 1000);
        assert_eq!(c.get(Count::Set), 3 * (SLOTS as u64 + 8) * 2);
        assert_eq!(c.get(Count::L2Miss), 0);
    }
}
