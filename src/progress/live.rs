//! Live feeds: each subscriber's view of progress events (used by `/ws/progress` and the
//! SSE endpoint).
//!
//! One *hub* task per tracker reads the event bus and routes each progress event only to
//! the feeds following its id (or `*`), so an event wakes its interested subscribers and
//! nobody else. Routing never waits: it appends to the feed's bounded mailbox, where
//! - a queued `progress.update` for an id is replaced by any newer event for that id
//!   (intermediate percents may be skipped; stage and terminal events are kept);
//! - when more than `capacity` items are queued, the mailbox collapses into one snapshot
//!   per id, resolved from the tracker when sent (so the latest state, and a terminal
//!   state as its terminal event, always arrive). A mailbox thus holds at most
//!   `capacity` items, or one small snapshot marker per id with undelivered changes when
//!   a `*` subscriber lags behind more ids than that;
//! - when the hub itself falls behind the bus and misses events, every feed re-queues
//!   snapshots of what it follows (for `*`: the running progress held in memory).
//!
//! Every message carries the progress `version`; a feed never sends a version at or
//! below the last one it sent for that id, so snapshots and events never go backwards.

use super::hub::{Item, Mailbox, Queue, Registry, version_of};
use super::metrics as m;
use super::model::{Progress, topics};
use super::tracker::ProgressTracker;
use crate::events::Event;
use bytes::Bytes;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use tokio::sync::Notify;

/// One message for a subscriber: an event topic and the progress it is about.
#[derive(Debug, Clone)]
pub struct FeedMessage {
    /// `progress.update`, `progress.stage`, `progress.completed`, ...
    pub topic: String,
    /// The progress id.
    pub id: String,
    /// The version of the progress carried.
    pub version: u64,
    data: FeedData,
}

#[derive(Debug, Clone)]
enum FeedData {
    Shared(Arc<Event>),
    Owned(serde_json::Value),
}

#[derive(Serialize)]
struct WsEnvelope<'a> {
    event: &'a str,
    /// On a `progress.update` repeating another event: what changed (`stage`,
    /// `completed`, `failed`, `cancelled`).
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    data: &'a serde_json::Value,
}

/// Recently built WebSocket frames by event: with many subscribers on one id, each bus
/// event is serialised once, not once per subscriber. A slot holds a `Weak` to its event,
/// which keeps the event's allocation (so its address) from being reused while cached.
static FRAMES: [Mutex<Option<(Weak<Event>, Bytes)>>; 64] = [const { Mutex::new(None) }; 64];

impl FeedMessage {
    /// The progress JSON.
    pub fn data(&self) -> &serde_json::Value {
        match &self.data {
            FeedData::Shared(e) => &e.data,
            FeedData::Owned(v) => v,
        }
    }

    fn build_frame(&self) -> Bytes {
        Bytes::from(serde_json::to_vec(&WsEnvelope { event: &self.topic, kind: None, data: self.data() }).unwrap_or_default())
    }

    /// What changed: the topic without `progress.` (`update`, `stage`, `completed`...).
    pub fn kind(&self) -> &str {
        self.topic.strip_prefix(topics::PREFIX).unwrap_or(&self.topic)
    }

    /// The same change again as a `progress.update` frame with its kind, for the seed's
    /// WebSocket clients, which listen for `progress.update` alone; `None` for an update.
    /// Only the WebSocket sends it: it is no event on the bus (webhooks fire once).
    pub fn ws_update_alias(&self) -> Option<Bytes> {
        (self.topic != topics::UPDATE).then(|| {
            let envelope = WsEnvelope { event: topics::UPDATE, kind: Some(self.kind()), data: self.data() };
            Bytes::from(serde_json::to_vec(&envelope).unwrap_or_default())
        })
    }

    /// The WebSocket text frame (UTF-8 JSON): `{"event": topic, "data": {...}}`.
    pub fn ws_frame(&self) -> Bytes {
        let FeedData::Shared(e) = &self.data else { return self.build_frame() };
        let slot = &FRAMES[(Arc::as_ptr(e) as usize >> 6) % FRAMES.len()];
        if let Some((w, frame)) = &*slot.lock()
            && std::ptr::eq(w.as_ptr(), Arc::as_ptr(e))
        {
            return frame.clone();
        }
        let frame = self.build_frame();
        *slot.lock() = Some((Arc::downgrade(e), frame.clone()));
        frame
    }

    /// True for `progress.completed`, `progress.failed` and `progress.cancelled`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.topic.as_str(), topics::COMPLETED | topics::FAILED | topics::CANCELLED)
    }
}

/// Most ids whose last sent version a feed remembers before forgetting them all.
const MAX_REMEMBERED: usize = 65_536;

/// One subscriber's stream of progress events. See the module documentation.
pub struct Feed {
    tracker: ProgressTracker,
    registry: Arc<Registry>,
    mailbox: Arc<Mailbox>,
    all: bool,
    ids: HashSet<String>,
    last_sent: HashMap<String, u64>,
    /// Taken from the queue but not yet delivered (keeps [`Feed::next`] cancel-safe).
    pending: Option<Item>,
}

impl Feed {
    /// A feed on `tracker`'s events that queues at most about `capacity` items.
    pub fn new(tracker: ProgressTracker, capacity: usize) -> Feed {
        ::metrics::gauge!(m::SUBSCRIBERS).increment(1.0);
        let registry = tracker.hub().registry.clone();
        let mailbox = Arc::new(Mailbox { queue: Mutex::new(Queue::default()), notify: Notify::new(), capacity: capacity.max(1) });
        Feed { tracker, registry, mailbox, all: false, ids: HashSet::new(), last_sent: HashMap::new(), pending: None }
    }

    /// Subscribes to one id; its current state is queued first (if it exists).
    pub fn subscribe(&mut self, id: &str) {
        if self.ids.insert(id.to_string()) {
            self.registry.by_id.write().entry(id.to_string()).or_default().push(self.mailbox.clone());
        }
        self.last_sent.remove(id);
        self.mailbox.queue.lock().push_snapshot(id.to_string());
    }

    /// Subscribes to every progress; the current state of each running one is queued first.
    pub fn subscribe_all(&mut self) {
        if !self.all {
            self.all = true;
            self.registry.all.write().push(self.mailbox.clone());
        }
        let live = self.tracker.live_ids();
        let mut q = self.mailbox.queue.lock();
        for id in live {
            q.push_snapshot(id);
        }
    }

    /// Stops following one id (queued messages for it are dropped).
    pub fn unsubscribe(&mut self, id: &str) {
        if self.ids.remove(id) {
            self.registry.remove(id, &self.mailbox);
        }
        self.last_sent.remove(id);
    }

    /// Stops following everything not subscribed by id.
    pub fn unsubscribe_all(&mut self) {
        if self.all {
            self.all = false;
            self.registry.all.write().retain(|b| !Arc::ptr_eq(b, &self.mailbox));
        }
    }

    /// Number of ids subscribed individually.
    pub fn subscription_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of queued items (for tests and metrics).
    pub fn queued(&self) -> usize {
        self.mailbox.queue.lock().items.len()
    }

    fn wants(&self, id: &str) -> bool {
        self.all || self.ids.contains(id)
    }

    fn sent(&mut self, id: &str, version: u64) {
        if self.last_sent.len() >= MAX_REMEMBERED && !self.last_sent.contains_key(id) {
            self.last_sent.clear();
        }
        self.last_sent.insert(id.to_string(), version);
    }

    /// Resolves an item into a message, or `None` when it is to be skipped.
    async fn resolve(&self, item: &Item) -> Option<FeedMessage> {
        let id = item.id();
        if !self.wants(id) {
            return None;
        }
        let last = self.last_sent.get(id).copied();
        let msg = match item {
            Item::Event(e) => {
                FeedMessage { topic: e.topic.clone(), id: e.key.clone(), version: version_of(e), data: FeedData::Shared(e.clone()) }
            }
            Item::Snapshot(id) => {
                let p: Progress = self.tracker.get(id).await.ok()?;
                let data = serde_json::to_value(&p).ok()?;
                FeedMessage { topic: p.status.topic().to_string(), id: p.id, version: p.version, data: FeedData::Owned(data) }
            }
        };
        if last.is_some_and(|v| msg.version <= v) {
            return None;
        }
        Some(msg)
    }

    /// Takes the next queued item, handling a pending resync first.
    fn take(&mut self) -> Result<Option<Item>, ()> {
        let live = if self.all && self.mailbox.queue.lock().resync { self.tracker.live_ids() } else { Vec::new() };
        let mut q = self.mailbox.queue.lock();
        if q.resync {
            q.resync = false;
            for id in self.ids.iter().cloned().chain(live) {
                q.push_snapshot(id);
            }
        }
        match q.pop() {
            Some(item) => Ok(Some(item)),
            None if q.closed => Err(()),
            None => Ok(None),
        }
    }

    /// The next message, waiting for one if none is queued; `None` once the bus is closed.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Option<FeedMessage> {
        loop {
            if self.pending.is_none() {
                match self.take() {
                    Ok(Some(item)) => self.pending = Some(item),
                    Ok(None) => {
                        self.mailbox.notify.notified().await;
                        continue;
                    }
                    Err(()) => return None,
                }
            }
            let item = self.pending.clone()?;
            let msg = self.resolve(&item).await;
            self.pending = None;
            if let Some(msg) = msg {
                self.sent(&msg.id, msg.version);
                return Some(msg);
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        ::metrics::gauge!(m::SUBSCRIBERS).decrement(1.0);
        for id in &self.ids {
            self.registry.remove(id, &self.mailbox);
        }
        if self.all {
            self.registry.all.write().retain(|b| !Arc::ptr_eq(b, &self.mailbox));
        }
    }
}
