//! Plugin hooks (seed "Plugin System": `on_update`, `on_complete`, `on_fail`,
//! `on_stage_change`) and custom stage validation (seed "Stage Validation").

use super::model::Progress;

/// Code run on progress changes. Register with
/// [`super::ProgressTracker::register_plugin`]; every method has a no-op default.
///
/// Hooks run inline, after the change is applied (and, for durable changes, stored) and
/// before the tracker call returns, in order per progress id. Keep them quick; spawn a
/// task for slow work.
#[async_trait::async_trait]
pub trait ProgressPlugin: Send + Sync + 'static {
    /// The percent changed (including the first update).
    async fn on_update(&self, _progress: &Progress) {}
    /// The current stage changed.
    async fn on_stage_change(&self, _progress: &Progress) {}
    /// The progress completed.
    async fn on_complete(&self, _progress: &Progress) {}
    /// The progress failed.
    async fn on_fail(&self, _progress: &Progress) {}
    /// The progress was cancelled.
    async fn on_cancel(&self, _progress: &Progress) {}

    /// Vetoes a stage change before it is applied: an `Err(message)` turns the request
    /// into a conflict (HTTP 409) carrying the message.
    fn validate_stage_change(&self, _current: &Progress, _to_stage: &str) -> Result<(), String> {
        Ok(())
    }
}
