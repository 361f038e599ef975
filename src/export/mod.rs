//! Document export (seed "5. Export Module"). SKELETON: being built under issue #7.

pub mod config;
pub mod error;
pub mod fonts;
pub mod formats;
pub mod model;
pub mod templates;

use crate::{clock::SharedClock, events::EventBus, jobs::JobQueue, notify::Notifications, progress::ProgressTracker, store::Store};
use config::ExportConfig;
use std::path::PathBuf;

/// The export service. Cheap to clone.
#[derive(Clone)]
pub struct ExportService {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    clock: SharedClock,
    #[allow(dead_code)]
    jobs: JobQueue,
    #[allow(dead_code)]
    progress: ProgressTracker,
    #[allow(dead_code)]
    notify: Notifications,
    #[allow(dead_code)]
    config: ExportConfig,
    #[allow(dead_code)]
    data_dir: PathBuf,
}

impl ExportService {
    /// Builds the service.
    pub fn new(
        store: Store,
        events: EventBus,
        clock: SharedClock,
        jobs: JobQueue,
        progress: ProgressTracker,
        notify: Notifications,
        config: ExportConfig,
        data_dir: PathBuf,
    ) -> Self {
        ExportService { store, events, clock, jobs, progress, notify, config, data_dir }
    }

    /// Starts the module's background tasks (workers, sweepers...) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
