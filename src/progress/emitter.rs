//! The event emitter trait (seed "Extensibility Points: Custom Emitter") and its default,
//! which publishes on hearth's event bus (feeding `/ws/progress`, SSE and webhooks).

use super::model::Progress;
use crate::events::EventBus;

/// Receives every change the tracker makes, in order per progress id.
///
/// `emit` is called on the caller's task while the progress is locked, so it must not
/// block: hand the event to a channel or a non-blocking publisher.
pub trait ProgressEmitter: Send + Sync + 'static {
    /// Publishes `progress` under `topic` (one of [`super::model::topics`]).
    fn emit(&self, topic: &'static str, progress: &Progress);
}

/// The default emitter: `EventBus` events with key = progress id and data = the
/// [`Progress`] JSON.
#[derive(Clone)]
pub struct EventBusEmitter {
    bus: EventBus,
}

impl EventBusEmitter {
    /// An emitter publishing on `bus`.
    pub fn new(bus: EventBus) -> Self {
        EventBusEmitter { bus }
    }
}

impl ProgressEmitter for EventBusEmitter {
    fn emit(&self, topic: &'static str, progress: &Progress) {
        // Serialising is most of an update's cost: skip it when nobody listens.
        if self.bus.subscriber_count() == 0 {
            return;
        }
        match serde_json::to_value(progress) {
            Ok(data) => self.bus.emit(topic, &progress.id, None, data),
            Err(e) => tracing::error!(error = %e, id = %progress.id, "cannot serialise progress event"),
        }
    }
}
