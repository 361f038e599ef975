//! Progress tracking (seed "1. Progress Tracking Module"). SKELETON: being built under issue #4.

pub mod config;

use crate::{clock::SharedClock, events::EventBus, store::Store};
use config::ProgressConfig;

/// Tracks long-running operations. Cheap to clone.
#[derive(Clone)]
pub struct ProgressTracker {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    clock: SharedClock,
    #[allow(dead_code)]
    config: ProgressConfig,
}

impl ProgressTracker {
    /// Builds the tracker on the shared store and event bus.
    pub fn new(store: Store, events: EventBus, clock: SharedClock, config: ProgressConfig) -> Self {
        ProgressTracker { store, events, clock, config }
    }

    /// Starts the module's background tasks (workers, sweepers...) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
