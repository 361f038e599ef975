//! The event bus.
//!
//! Modules publish [`Event`]s (`progress.update`, `job.completed`, `notification.created`,
//! ...) and WebSockets, SSE streams, webhooks and plugins subscribe. [`EventBus`] is the
//! handle every module holds; behind it an [`EventTransport`] carries the events: the
//! embedded [`LocalTransport`] (a `tokio::sync::broadcast` channel) by default, or any
//! other (e.g. one that links the nodes of a cluster) through [`EventBus::with_transport`].
//! Publishing never blocks and never waits for a slow subscriber. A subscriber that falls
//! more than the channel capacity behind receives [`RecvError::Lagged`] and must
//! resynchronise from the store (each consumer documents how).

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod data;
pub mod redis;
mod transport;

pub use data::EventData;
pub use redis::RedisTransport;
pub use transport::{EventTransport, LocalTransport, RESYNC, RecvError, Subscription};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `events:` in the configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EventsConfig {
    /// `embedded` (one process) or `redis` (every node of a cluster; needs `redis.url`).
    pub transport: TransportKind,
    /// Events a subscriber may fall behind before it must resynchronise.
    pub capacity: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig { transport: TransportKind::Embedded, capacity: 16 * 1024 }
    }
}

/// The built-in event transports, selected by name.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    /// A broadcast channel in this process.
    #[default]
    Embedded,
    /// A Redis Stream shared by every node.
    Redis,
}

/// One event. `topic` is dotted (`module.what`); `key` is the entity the event is about
/// (progress id, job id, user id...) so subscribers can filter cheaply without parsing `data`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// Dotted topic, e.g. `progress.update`.
    pub topic: String,
    /// The id of the entity concerned.
    pub key: String,
    /// The owning user, when the entity has one (notifications); used for authorisation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The event's payload, usually the entity's public JSON form (built on first read
    /// when the publisher gave the typed entity, see [`EventData`]).
    pub data: EventData,
    /// When the event was published.
    pub at: DateTime<Utc>,
    /// Published by another node of the cluster (set by a cluster transport when it
    /// relays the event here). What must happen once per event cluster-wide, not once
    /// per node — webhook deliveries — skips such events; the node that published the
    /// event does it.
    #[serde(skip)]
    pub from_peer: bool,
}

/// A cheap-to-clone handle on the bus.
///
/// The built-in transport is dispatched statically (publishing is on every hot path);
/// another transport costs one virtual call per event.
#[derive(Clone)]
pub struct EventBus {
    transport: Transport,
}

#[derive(Clone)]
enum Transport {
    Local(LocalTransport),
    Custom(Arc<dyn EventTransport>),
}

impl EventBus {
    /// A bus on the embedded transport whose subscribers may fall `capacity` events
    /// behind before they lag.
    pub fn new(capacity: usize) -> Self {
        EventBus { transport: Transport::Local(LocalTransport::new(capacity)) }
    }

    /// A bus on another transport.
    pub fn with_transport(transport: Arc<dyn EventTransport>) -> Self {
        EventBus { transport: Transport::Custom(transport) }
    }

    /// Publishes an event. Never blocks; with no subscribers the event is dropped.
    pub fn publish(&self, event: Event) {
        let event = Arc::new(event);
        match &self.transport {
            Transport::Local(t) => t.publish(event),
            Transport::Custom(t) => t.publish(event),
        }
    }

    /// Builds and publishes an event stamped now; `data` is JSON or an [`EventData::of`]
    /// a typed value.
    pub fn emit(&self, topic: &str, key: &str, user_id: Option<&str>, data: impl Into<EventData>) {
        self.publish(Event {
            topic: topic.to_string(),
            key: key.to_string(),
            user_id: user_id.map(str::to_string),
            data: data.into(),
            at: Utc::now(),
            from_peer: false,
        });
    }

    /// A new subscription receiving every event published from now on.
    pub fn subscribe(&self) -> Subscription {
        match &self.transport {
            Transport::Local(t) => t.subscribe(),
            Transport::Custom(t) => t.subscribe(),
        }
    }

    /// Number of live subscribers (for metrics and tests).
    pub fn subscriber_count(&self) -> usize {
        match &self.transport {
            Transport::Local(t) => t.subscriber_count(),
            Transport::Custom(t) => t.subscriber_count(),
        }
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
    async fn the_local_transport_passes_the_conformance_suite() {
        conformance::run(|capacity| {
            let t = LocalTransport::new(capacity);
            (t.clone(), t)
        })
        .await;
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
