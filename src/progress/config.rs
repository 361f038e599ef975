//! Configuration of the progress module (`progress:` in hearth.yaml).

use serde::{Deserialize, Serialize};

/// Settings for progress tracking (seed "Progress Tracking Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressConfig {
    /// Where records live: `embedded` (the redb database, the default) or `redis` (the
    /// cluster's Redis, shared by every node). An unknown name stops the start.
    pub store: ProgressStoreKind,
    /// Hours a completed progress is kept before the sweeper removes it.
    pub retain_completed_hours: u64,
    /// Hours a failed (or cancelled) progress is kept.
    pub retain_failed_hours: u64,
    /// Whether `/ws/progress` is served.
    pub websocket: bool,
    /// Intermediate percent updates are written to storage at most once per id per this
    /// many milliseconds (they are broadcast at once regardless).
    pub flush_interval_ms: u64,
    /// How often the retention sweeper runs, seconds.
    pub sweep_interval_seconds: u64,
    /// Events a WebSocket/SSE subscriber may have queued before intermediate updates are
    /// coalesced into snapshots of the latest state.
    pub subscriber_buffer: usize,
    /// A running progress untouched for this many seconds is dropped from memory (its
    /// state is in storage and reloaded on the next use).
    pub idle_evict_seconds: u64,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig {
            store: ProgressStoreKind::Embedded,
            retain_completed_hours: 24,
            retain_failed_hours: 168,
            websocket: true,
            flush_interval_ms: 100,
            sweep_interval_seconds: 60,
            subscriber_buffer: 1024,
            idle_evict_seconds: 600,
        }
    }
}

/// The built-in progress storage backends, selected by name.
pub type ProgressStoreKind = crate::cluster::StoreKind;
