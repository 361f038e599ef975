//! Background upkeep of the in-memory slots: the coalesced flush of intermediate percents
//! and the eviction of idle, clean slots.

use super::metrics as m;
use super::tracker::{ProgressTracker, SlotState};
use std::sync::atomic::Ordering;
use std::time::Duration;

impl ProgressTracker {
    /// Writes the latest state of every slot changed since the last flush, in one storage
    /// batch, and returns how many records were written. The background loop calls this
    /// every `flush_interval_ms` and once more at shutdown; tests may call it directly.
    pub async fn flush(&self) -> usize {
        let batch = std::mem::take(&mut *self.inner.dirty.lock());
        let mut snaps = Vec::with_capacity(batch.len());
        let mut written = Vec::with_capacity(batch.len());
        for slot in batch {
            // Cleared before the snapshot: a later update queues the slot again.
            slot.queued.store(false, Ordering::Release);
            if let SlotState::Live { rec, persisted } = &*slot.state.lock().await
                && rec.version > *persisted
            {
                snaps.push(rec.clone());
                written.push((slot.clone(), rec.version));
            }
        }
        if snaps.is_empty() {
            return 0;
        }
        match self.inner.storage.save_coalesced(snaps).await {
            Ok(n) => {
                ::metrics::counter!(m::FLUSHED).increment(n as u64);
                for (slot, version) in written {
                    if let SlotState::Live { persisted, .. } = &mut *slot.state.lock().await {
                        *persisted = (*persisted).max(version);
                    }
                }
                n
            }
            Err(e) => {
                tracing::warn!(error = %e, "progress flush failed; retrying on the next tick");
                for (slot, _) in written {
                    if !slot.queued.swap(true, Ordering::AcqRel) {
                        self.inner.dirty.lock().push(slot);
                    }
                }
                0
            }
        }
    }

    /// Drops slots untouched for `idle` whose state is fully in storage, and returns how
    /// many were dropped. Busy (locked) slots are left alone.
    pub(super) fn evict_idle(&self, idle: Duration) -> usize {
        let now = self.inner.epoch.elapsed().as_millis() as u64;
        let idle_ms = idle.as_millis() as u64;
        let candidates: Vec<_> = self
            .inner
            .slots
            .read()
            .values()
            .filter(|s| now.saturating_sub(s.touched_ms.load(Ordering::Relaxed)) >= idle_ms)
            .cloned()
            .collect();
        let mut evicted = 0;
        for slot in candidates {
            let Ok(mut g) = slot.state.try_lock() else { continue };
            let clean = match &*g {
                SlotState::Live { rec, persisted } => rec.version <= *persisted,
                SlotState::Unloaded => true,
                SlotState::Detached => false,
            };
            if clean && !slot.queued.load(Ordering::Acquire) {
                *g = SlotState::Detached;
                drop(g);
                self.unmap(&slot);
                evicted += 1;
            }
        }
        evicted
    }

    /// The flush/evict loop; ends after a final flush when `bg.shutdown` fires.
    pub(super) async fn upkeep_loop(self, shutdown: tokio_util::sync::CancellationToken) {
        let cfg = self.config().clone();
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.flush_interval_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let idle = Duration::from_secs(cfg.idle_evict_seconds);
        let mut last_evict = std::time::Instant::now();
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {}
            }
            self.flush().await;
            if last_evict.elapsed() >= Duration::from_secs(1).min(idle) {
                last_evict = std::time::Instant::now();
                self.evict_idle(idle);
                ::metrics::gauge!(m::LIVE).set(self.inner.slots.read().len() as f64);
            }
        }
        // Whatever was reported before shutdown reaches storage.
        self.flush().await;
    }
}
