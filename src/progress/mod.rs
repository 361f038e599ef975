//! Progress tracking (seed "1. Progress Tracking Module").
//!
//! A progress has ordered, weighted stages, a percent within the current stage, an
//! overall percent, an ETA from the observed rate, and a status
//! (`pending → processing → completed | failed | cancelled`). [`ProgressTracker`] is the
//! Rust API (`create / update / advance_stage / complete / fail / cancel / get`); the HTTP
//! adapter (`http/progress.rs`) serves the same operations over REST, a WebSocket and SSE.
//!
//! - Durability: create, the first update, stage changes and terminal states are stored
//!   before they are acknowledged; plain percent updates are broadcast at once and stored
//!   coalesced (at most one write per id per `flush_interval_ms`). See `tracker.rs`.
//! - Events: every change is emitted as `progress.update`, `progress.stage`,
//!   `progress.completed`, `progress.failed` or `progress.cancelled` (key = id, data =
//!   [`Progress`] JSON) through a [`ProgressEmitter`], by default onto the event bus.
//! - Extensibility: [`ProgressStorage`] (default [`RedbProgressStorage`]),
//!   [`ProgressEmitter`] (default [`EventBusEmitter`]) and [`ProgressPlugin`] hooks.
//! - Live feeds: [`live::Feed`] routes bus events to per-subscriber streams that never
//!   slow other subscribers (WebSocket and SSE both use it).
//! - Retention: a sweeper removes finished records after the configured hours.

pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod emitter;
pub mod error;
mod flush;
mod hub;
pub mod live;
pub mod machine;
pub mod metrics;
pub mod model;
pub mod plugin;
pub mod redis;
mod retention;
pub mod storage;
pub mod store;
mod tracker;

#[cfg(test)]
mod tests;

pub use emitter::{EventBusEmitter, ProgressEmitter};
pub use error::ProgressError;
pub use model::{NewProgress, Progress, ProgressRecord, ProgressStatus, ProgressUpdate, StageSpec};
pub use plugin::ProgressPlugin;
pub use redis::RedisProgressStorage;
pub use storage::{ListQuery, ProgressStorage};
pub use store::RedbProgressStorage;
pub use tracker::ProgressTracker;

use crate::{clock::SharedClock, events::EventBus, store::Store};
use config::ProgressConfig;
use std::sync::Arc;

impl ProgressTracker {
    /// Builds the tracker on the embedded backends: records in the shared redb `store`,
    /// events on `events`.
    pub fn new(store: Store, events: EventBus, clock: SharedClock, config: ProgressConfig) -> Self {
        let tracker = ProgressTracker::with_backends(
            Arc::new(RedbProgressStorage::new(store)),
            Arc::new(EventBusEmitter::new(events.clone())),
            clock,
            config,
        );
        tracker.set_event_bus(events);
        tracker
    }

    /// Starts the background tasks on `bg`: the coalesced flush (with idle eviction) and
    /// the retention sweeper. Both stop when `bg.shutdown` fires; the flush runs once more
    /// first.
    pub fn start(&self, bg: &crate::runtime::Background) {
        let (me, shutdown) = (self.clone(), bg.shutdown.clone());
        bg.supervise("progress.flush", move || me.clone().upkeep_loop(shutdown.clone()));
        let (me, shutdown) = (self.clone(), bg.shutdown.clone());
        bg.supervise("progress.retention", move || me.clone().sweep_loop(shutdown.clone()));
    }
}
