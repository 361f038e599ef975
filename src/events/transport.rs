//! The event-transport seam: how an event published on one node reaches the subscribers
//! of every node.
//!
//! Every transport fans events out locally through a tokio broadcast channel, so a
//! [`Subscription`] is the same type whatever the transport; what a transport decides is
//! what else `publish` does (the embedded one: nothing; a cluster transport: send the event
//! to the other nodes, whose transports re-broadcast it locally). The capacity of the local
//! channel bounds how far a subscriber may fall behind before it receives
//! [`RecvError::Lagged`]; it must then resynchronise from the store, since events are
//! notifications of durable changes, never the only copy of them.

use super::Event;
use std::sync::Arc;
use tokio::sync::broadcast;

/// The topic of the marker a cluster transport broadcasts locally when this node may have
/// missed events of other nodes (its reader fell behind the shared log, or the log was
/// unreachable for longer than it keeps events). Subscriptions turn it into
/// [`RecvError::Lagged`]; no consumer ever sees it as an event.
pub const RESYNC: &str = "hearth.resync";

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum RecvError {
    /// The subscriber fell behind and this many events were dropped for it (0: an unknown
    /// number, missed on the way from another node); the next `recv` continues with the
    /// oldest event still held. Resynchronise from the store.
    #[error("subscriber lagged; {0} events skipped")]
    Lagged(u64),
    /// The transport is gone; no event will come.
    #[error("event transport closed")]
    Closed,
}

/// One subscriber's stream of events, in publish order per publisher.
pub struct Subscription {
    rx: broadcast::Receiver<Arc<Event>>,
}

impl Subscription {
    /// Wraps the receiving end of a transport's local fan-out channel.
    pub fn new(rx: broadcast::Receiver<Arc<Event>>) -> Self {
        Subscription { rx }
    }

    /// The next event, or why there is none. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Arc<Event>, RecvError> {
        match self.rx.recv().await {
            Ok(e) if e.topic == RESYNC => Err(RecvError::Lagged(0)),
            Ok(e) => Ok(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(broadcast::error::RecvError::Closed) => Err(RecvError::Closed),
        }
    }

    /// The next event if one is already waiting (`Ok(None)` when none is).
    pub fn try_recv(&mut self) -> Result<Option<Arc<Event>>, RecvError> {
        match self.rx.try_recv() {
            Ok(e) if e.topic == RESYNC => Err(RecvError::Lagged(0)),
            Ok(e) => Ok(Some(e)),
            Err(broadcast::error::TryRecvError::Empty) => Ok(None),
            Err(broadcast::error::TryRecvError::Lagged(n)) => Err(RecvError::Lagged(n)),
            Err(broadcast::error::TryRecvError::Closed) => Err(RecvError::Closed),
        }
    }
}

/// Carries events from publishers to subscribers, on one node or across nodes.
///
/// Invariants every implementation keeps (checked by [`super::conformance`]):
/// - `publish` never blocks and never waits for a slow subscriber;
/// - a subscription receives every event published after it was made, in the order each
///   publisher published them, unless it falls behind by more than the local capacity, in
///   which case it receives [`RecvError::Lagged`] and then the events still held;
/// - a subscription never receives an event published before it was made.
pub trait EventTransport: Send + Sync + 'static {
    /// Publishes `event` to every subscriber (on every node, for a cluster transport).
    fn publish(&self, event: Arc<Event>);
    /// A new subscription receiving every event published from now on.
    fn subscribe(&self) -> Subscription;
    /// Number of live subscriptions on this node (publishers skip building events nobody
    /// would receive); a cluster transport adds one for the other nodes.
    fn subscriber_count(&self) -> usize;
}

/// The embedded transport: one process, one tokio broadcast channel.
#[derive(Clone)]
pub struct LocalTransport {
    tx: broadcast::Sender<Arc<Event>>,
}

impl LocalTransport {
    /// A transport whose subscribers may fall `capacity` events behind before they lag.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(16));
        LocalTransport { tx }
    }
}

impl EventTransport for LocalTransport {
    fn publish(&self, event: Arc<Event>) {
        let _ = self.tx.send(event);
    }

    fn subscribe(&self) -> Subscription {
        Subscription::new(self.tx.subscribe())
    }

    fn subscriber_count(&self) -> usize {
        self.tx.receiver_count()
    }
}
