//! The two-tier cache (seed "4. Cache Module"). SKELETON: being built under issue #6.

pub mod config;

use crate::{clock::SharedClock, store::Store};
use config::CacheConfig;

/// The cache. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    clock: SharedClock,
    #[allow(dead_code)]
    config: CacheConfig,
}

impl Cache {
    /// Builds the cache on the shared store.
    pub fn new(store: Store, clock: SharedClock, config: CacheConfig) -> Self {
        Cache { store, clock, config }
    }

    /// Starts the module's background tasks (workers, sweepers...) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
