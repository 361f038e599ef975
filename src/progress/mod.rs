//! Progress tracking (seed "1. Progress Tracking Module"). Being built under issue #4:
//! the public API below is stable; bodies are being filled in.

pub mod config;
pub mod error;
pub mod model;

pub use error::ProgressError;
pub use model::{NewProgress, Progress, ProgressRecord, ProgressStatus, ProgressUpdate, StageSpec};

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

    /// Creates a progress (durable before it returns). An existing id is `AlreadyExists`.
    pub async fn create(&self, _req: NewProgress) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// Sets the percent within `stage` (or the current stage when `None`).
    pub async fn update(&self, id: &str, percent: f64, stage: Option<&str>) -> Result<Progress, ProgressError> {
        self.update_with(id, ProgressUpdate { progress: Some(percent), stage: stage.map(str::to_string), allow_backwards: false }).await
    }

    /// Applies a full update request (see [`ProgressUpdate`]).
    pub async fn update_with(&self, _id: &str, _u: ProgressUpdate) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// Moves to the next stage at 0 %.
    pub async fn advance_stage(&self, _id: &str) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// Marks the progress completed with an optional result.
    pub async fn complete(&self, _id: &str, _result: Option<serde_json::Value>) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// Marks the progress failed with an error message.
    pub async fn fail(&self, _id: &str, _error: &str) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// Marks the progress cancelled.
    pub async fn cancel(&self, _id: &str) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// The current state.
    pub async fn get(&self, _id: &str) -> Result<Progress, ProgressError> {
        todo!("issue #4")
    }

    /// Removes a progress in any state.
    pub async fn delete(&self, _id: &str) -> Result<(), ProgressError> {
        todo!("issue #4")
    }

    /// Starts the module's background tasks (coalesced flush, retention sweeper) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
