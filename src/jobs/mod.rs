//! The durable job queue (seed "3. Job Queue Module"). SKELETON: being built under issue #3.

pub mod config;

use crate::{clock::SharedClock, events::EventBus, progress::ProgressTracker, store::Store};
use config::JobQueueConfig;

/// The job queue. Cheap to clone.
#[derive(Clone)]
pub struct JobQueue {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    clock: SharedClock,
    #[allow(dead_code)]
    progress: ProgressTracker,
    #[allow(dead_code)]
    config: JobQueueConfig,
}

impl JobQueue {
    /// Builds the queue on the shared store, event bus and progress tracker.
    pub fn new(store: Store, events: EventBus, clock: SharedClock, progress: ProgressTracker, config: JobQueueConfig) -> Self {
        JobQueue { store, events, clock, progress, config }
    }

    /// Starts the module's background tasks (workers, sweepers...) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
