//! Hybrid search (seed "6. Search Module"). SKELETON: being built under issue #8.

pub mod config;

use crate::{events::EventBus, jobs::JobQueue, store::Store};
use config::SearchConfig;
use std::path::PathBuf;

/// The search service. Cheap to clone.
#[derive(Clone)]
pub struct SearchService {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    jobs: JobQueue,
    #[allow(dead_code)]
    config: SearchConfig,
    #[allow(dead_code)]
    data_dir: PathBuf,
}

impl SearchService {
    /// Builds the service; a missing model leaves keyword search working and semantic
    /// search unavailable (see `readiness`).
    pub fn new(store: Store, events: EventBus, jobs: JobQueue, config: SearchConfig, data_dir: PathBuf) -> Self {
        SearchService { store, events, jobs, config, data_dir }
    }

    /// Whether the module can serve every request, and why not.
    pub fn readiness(&self) -> crate::app::Readiness {
        crate::app::Readiness::not_ready("search module not built yet")
    }

    /// Starts the module's background tasks (workers, sweepers...) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
