//! Plugin hooks of the export module (seed "Plugin Hooks": `on_create`, `on_complete`,
//! `on_download`). Hooks run after the step is durable, on the task that performed it:
//! keep them quick and non-blocking (spawn for slow work).

use super::record::ExportJob;

/// Observers of export life-cycle steps.
pub trait ExportHooks: Send + Sync + 'static {
    /// An export was accepted (status `pending`).
    fn on_create(&self, _job: &ExportJob) {}
    /// An export reached `completed` or `failed` (see `job.status`).
    fn on_complete(&self, _job: &ExportJob) {}
    /// A completed export's file is being downloaded.
    fn on_download(&self, _job: &ExportJob) {}
}
