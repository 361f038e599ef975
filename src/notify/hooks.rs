//! Plugin hooks of the notification module (seed "Plugin Hooks": `on_send`, `on_deliver`,
//! `on_read`). Hooks run after the change is durable, on the task that made it; they must
//! be quick and must not fail the operation (they return nothing).

use super::model::{Delivery, Notification};
use parking_lot::RwLock;
use std::sync::Arc;

/// Callbacks on notification life-cycle events. Every method has a no-op default.
pub trait NotifyHooks: Send + Sync + 'static {
    /// A notification was accepted and stored (before queued channels deliver).
    fn on_send(&self, _n: &Notification) {}
    /// One channel reached a final state (`delivered` or `failed`).
    fn on_deliver(&self, _n: &Notification, _channel: &str, _delivery: &Delivery) {}
    /// A notification was marked read.
    fn on_read(&self, _n: &Notification) {}
}

/// The registered hooks. Cheap to clone; shared.
#[derive(Clone, Default)]
pub struct HookSet {
    inner: Arc<RwLock<Vec<Arc<dyn NotifyHooks>>>>,
}

impl HookSet {
    /// Adds hooks; they run in registration order.
    pub fn register(&self, hooks: Arc<dyn NotifyHooks>) {
        self.inner.write().push(hooks);
    }

    fn each(&self, f: impl Fn(&dyn NotifyHooks)) {
        let hooks = self.inner.read().clone();
        for h in hooks {
            f(h.as_ref());
        }
    }

    /// Runs every `on_send`.
    pub fn send(&self, n: &Notification) {
        self.each(|h| h.on_send(n));
    }

    /// Runs every `on_deliver`.
    pub fn deliver(&self, n: &Notification, channel: &str) {
        if let Some(d) = n.deliveries.get(channel) {
            self.each(|h| h.on_deliver(n, channel, d));
        }
    }

    /// Runs every `on_read`.
    pub fn read(&self, n: &Notification) {
        self.each(|h| h.on_read(n));
    }
}
