//! The in-process event bus.
//!
//! Modules publish [`Event`]s (`progress.update`, `job.completed`, `notification.created`,
//! ...) and WebSockets, SSE streams, webhooks and plugins subscribe. The bus is a
//! `tokio::sync::broadcast` channel: publishing never blocks and never waits for a slow
//! subscriber. A subscriber that falls more than the channel capacity behind receives a
//! `Lagged` error and must resynchronise from the store (each consumer documents how).

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;

/// One event. `topic` is dotted (`module.what`); `key` is the entity the event is about
/// (progress id, job id, user id...) so subscribers can filter cheaply without parsing `data`.
#[derive(Debug, Clone, Serialize)]
pub struct Event {
    /// Dotted topic, e.g. `progress.update`.
    pub topic: String,
    /// The id of the entity concerned.
    pub key: String,
    /// The owning user, when the entity has one (notifications); used for authorisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The event's payload, usually the entity's public JSON form.
    pub data: serde_json::Value,
    /// When the event was published.
    pub at: DateTime<Utc>,
}

/// A cheap-to-clone handle on the bus.
#[derive(Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<Event>>,
}

impl EventBus {
    /// A bus whose subscribers may fall `capacity` events behind before they lag.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        EventBus { tx }
    }

    /// Publishes an event. Never blocks; with no subscribers the event is dropped.
    pub fn publish(&self, event: Event) {
        let _ = self.tx.send(Arc::new(event));
    }

    /// Builds and publishes an event stamped now.
    pub fn emit(&self, topic: &str, key: &str, user_id: Option<&str>, data: serde_json::Value) {
        self.publish(Event { topic: topic.to_string(), key: key.to_string(), user_id: user_id.map(str::to_string), data, at: Utc::now() });
    }

    /// A new subscription receiving every event published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.tx.subscribe()
    }

    /// Number of live subscribers (for metrics and tests).
    pub fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Default for EventBus {
    fn default() -> Self {
        EventBus::new(16 * 1024)
    }
}

/// True when `topic` matches `pattern`: an exact topic, `*` for all, or a prefix wildcard
/// such as `job.*`.
pub fn topic_matches(pattern: &str, topic: &str) -> bool {
    if pattern == "*" || pattern == topic {
        return true;
    }
    match pattern.strip_suffix(".*") {
        Some(prefix) => topic.len() > prefix.len() && topic.starts_with(prefix) && topic.as_bytes()[prefix.len()] == b'.',
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert!(topic_matches("*", "job.completed"));
        assert!(topic_matches("job.*", "job.completed"));
        assert!(!topic_matches("job.*", "jobs.completed"));
        assert!(topic_matches("job.completed", "job.completed"));
        assert!(!topic_matches("job.completed", "job.failed"));
    }

    #[tokio::test]
    async fn subscribers_receive_published_events() {
        let bus = EventBus::new(16);
        let mut rx = bus.subscribe();
        bus.emit("progress.update", "p1", None, serde_json::json!({"progress": 5}));
        let e = rx.recv().await.unwrap();
        assert_eq!(e.topic, "progress.update");
        assert_eq!(e.key, "p1");
    }
}
