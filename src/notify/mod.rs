//! Notifications (seed "2. Notification Module"). SKELETON: being built under issue #5.

pub mod config;

use crate::{clock::SharedClock, events::EventBus, jobs::JobQueue, store::Store};
use config::NotificationConfig;

/// The notification service. Cheap to clone.
#[derive(Clone)]
pub struct Notifications {
    #[allow(dead_code)]
    store: Store,
    #[allow(dead_code)]
    events: EventBus,
    #[allow(dead_code)]
    clock: SharedClock,
    #[allow(dead_code)]
    jobs: JobQueue,
    #[allow(dead_code)]
    config: NotificationConfig,
}

impl Notifications {
    /// Builds the service.
    pub fn new(store: Store, events: EventBus, clock: SharedClock, jobs: JobQueue, config: NotificationConfig) -> Self {
        Notifications { store, events, clock, jobs, config }
    }

    /// Starts the module's background tasks (workers, sweepers...) on `bg`.
    pub fn start(&self, _bg: &crate::app::Background) {}
}
