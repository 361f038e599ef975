//! Live feeds: one subscriber's view of progress events (used by `/ws/progress` and the
//! SSE endpoint).
//!
//! A [`Feed`] reads the event bus and queues what its subscriber asked for. Slow
//! subscribers never slow anyone else, and their memory is bounded:
//! - a queued `progress.update` for an id is replaced by any newer event for that id
//!   (intermediate percents may be skipped; stage and terminal events are kept);
//! - when more than `capacity` items are queued, the queue collapses into one snapshot
//!   per id, resolved from the tracker when it is sent (so the latest state, and a
//!   terminal state as its terminal event, always arrive);
//! - when the subscriber falls so far behind that the bus drops events for it, the feed
//!   resynchronises every subscribed id from the tracker the same way.
//!
//! Every message carries the progress `version`; a feed never sends a version at or
//! below the last one it sent for that id, so snapshots and events never go backwards.

use super::metrics as m;
use super::model::{Progress, topics};
use super::tracker::ProgressTracker;
use crate::events::Event;
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::broadcast::{self, error::TryRecvError};

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
    data: &'a serde_json::Value,
}

impl FeedMessage {
    /// The progress JSON.
    pub fn data(&self) -> &serde_json::Value {
        match &self.data {
            FeedData::Shared(e) => &e.data,
            FeedData::Owned(v) => v,
        }
    }

    /// The WebSocket text frame: `{"event": topic, "data": {...}}`.
    pub fn to_ws_json(&self) -> String {
        serde_json::to_string(&WsEnvelope { event: &self.topic, data: self.data() }).unwrap_or_default()
    }

    /// True for `progress.completed`, `progress.failed` and `progress.cancelled`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.topic.as_str(), topics::COMPLETED | topics::FAILED | topics::CANCELLED)
    }
}

enum Item {
    Event(Arc<Event>),
    /// The current state of an id, read from the tracker when sent.
    Snapshot(String),
}

impl Item {
    fn id(&self) -> &str {
        match self {
            Item::Event(e) => &e.key,
            Item::Snapshot(id) => id,
        }
    }
}

fn version_of(e: &Event) -> u64 {
    e.data.get("version").and_then(|v| v.as_u64()).unwrap_or(0)
}

/// Most ids whose last sent version a feed remembers before forgetting them all.
const MAX_REMEMBERED: usize = 65_536;

/// One subscriber's stream of progress events. See the module documentation.
pub struct Feed {
    tracker: ProgressTracker,
    rx: broadcast::Receiver<Arc<Event>>,
    all: bool,
    ids: HashSet<String>,
    queue: VecDeque<Item>,
    /// Absolute index (see `head`) of the queued item that absorbs newer events per id.
    absorb: HashMap<String, u64>,
    /// Absolute index of `queue[0]`.
    head: u64,
    last_sent: HashMap<String, u64>,
    capacity: usize,
    closed: bool,
}

impl Feed {
    /// A feed over `rx` (subscribe it before reading any state) that queues at most about
    /// `capacity` items.
    pub fn new(tracker: ProgressTracker, rx: broadcast::Receiver<Arc<Event>>, capacity: usize) -> Feed {
        ::metrics::gauge!(m::SUBSCRIBERS).increment(1.0);
        Feed {
            tracker,
            rx,
            all: false,
            ids: HashSet::new(),
            queue: VecDeque::new(),
            absorb: HashMap::new(),
            head: 0,
            last_sent: HashMap::new(),
            capacity: capacity.max(1),
            closed: false,
        }
    }

    /// Subscribes to one id; its current state is queued first (if it exists).
    pub fn subscribe(&mut self, id: &str) {
        self.ids.insert(id.to_string());
        self.last_sent.remove(id);
        self.push_snapshot(id.to_string());
    }

    /// Subscribes to every progress; the current state of each running one is queued first.
    pub fn subscribe_all(&mut self) {
        self.all = true;
        for id in self.tracker.live_ids() {
            self.push_snapshot(id);
        }
    }

    /// Stops following one id (queued messages for it are dropped).
    pub fn unsubscribe(&mut self, id: &str) {
        self.ids.remove(id);
        self.last_sent.remove(id);
    }

    /// Stops following everything not subscribed by id.
    pub fn unsubscribe_all(&mut self) {
        self.all = false;
    }

    /// Number of ids subscribed individually.
    pub fn subscription_count(&self) -> usize {
        self.ids.len()
    }

    /// Number of queued items (for tests and metrics).
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn wants(&self, id: &str) -> bool {
        self.all || self.ids.contains(id)
    }

    fn push(&mut self, item: Item, absorbing: bool) {
        let idx = self.head + self.queue.len() as u64;
        if absorbing {
            self.absorb.insert(item.id().to_string(), idx);
        }
        self.queue.push_back(item);
    }

    fn push_snapshot(&mut self, id: String) {
        if let Some(&idx) = self.absorb.get(&id)
            && let Some(item) = self.queue.get_mut((idx - self.head) as usize)
        {
            // A queued update or snapshot for this id becomes the snapshot.
            *item = Item::Snapshot(id);
            return;
        }
        self.push(Item::Snapshot(id), true);
    }

    /// Queues one bus event if this feed wants it.
    fn offer(&mut self, e: Arc<Event>) {
        if !e.topic.starts_with(topics::PREFIX) || !self.wants(&e.key) {
            return;
        }
        if self.last_sent.get(&e.key).is_some_and(|&v| version_of(&e) <= v) {
            return;
        }
        let is_update = e.topic == topics::UPDATE;
        if let Some(&idx) = self.absorb.get(&e.key)
            && let Some(item) = self.queue.get_mut((idx - self.head) as usize)
        {
            ::metrics::counter!(m::COALESCED).increment(1);
            match item {
                // A snapshot resolves to the latest state anyway.
                Item::Snapshot(_) => {}
                Item::Event(_) => {
                    let key = e.key.clone();
                    *item = Item::Event(e);
                    if !is_update {
                        self.absorb.remove(&key);
                    }
                }
            }
            return;
        }
        self.push(Item::Event(e), is_update);
        if self.queue.len() > self.capacity {
            self.collapse();
        }
    }

    /// Replaces the queue by one snapshot per distinct id, in first-seen order.
    fn collapse(&mut self) {
        let mut seen = HashSet::new();
        self.head += self.queue.len() as u64;
        let ids: Vec<String> = self.queue.drain(..).map(|i| i.id().to_string()).filter(|id| seen.insert(id.clone())).collect();
        self.absorb.clear();
        for id in ids {
            self.push(Item::Snapshot(id), true);
        }
    }

    /// After the bus dropped events for this feed: re-queue the state of everything followed.
    fn resync(&mut self) {
        ::metrics::counter!(m::RESYNCS).increment(1);
        let mut ids: Vec<String> = self.ids.iter().cloned().collect();
        if self.all {
            ids.extend(self.tracker.live_ids());
        }
        for id in ids {
            self.push_snapshot(id);
        }
    }

    /// Moves ready bus events into the queue without waiting.
    fn drain_ready(&mut self) {
        while self.queue.len() < self.capacity {
            match self.rx.try_recv() {
                Ok(e) => self.offer(e),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Lagged(_)) => self.resync(),
                Err(TryRecvError::Closed) => {
                    self.closed = true;
                    break;
                }
            }
        }
    }

    fn pop_front(&mut self) {
        if let Some(item) = self.queue.pop_front() {
            if self.absorb.get(item.id()) == Some(&self.head) {
                self.absorb.remove(item.id());
            }
            self.head += 1;
        }
    }

    fn sent(&mut self, id: &str, version: u64) {
        if self.last_sent.len() >= MAX_REMEMBERED && !self.last_sent.contains_key(id) {
            self.last_sent.clear();
        }
        self.last_sent.insert(id.to_string(), version);
    }

    /// Resolves the front item into a message, or `None` when it is to be skipped.
    async fn resolve_front(&self) -> Option<FeedMessage> {
        let item = self.queue.front()?;
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

    /// The next message, waiting for one if none is queued; `None` once the bus is closed.
    /// Cancel-safe: dropping the future loses nothing.
    pub async fn next(&mut self) -> Option<FeedMessage> {
        loop {
            self.drain_ready();
            if !self.queue.is_empty() {
                let msg = self.resolve_front().await;
                self.pop_front();
                if let Some(msg) = msg {
                    self.sent(&msg.id, msg.version);
                    return Some(msg);
                }
                continue;
            }
            if self.closed {
                return None;
            }
            match self.rx.recv().await {
                Ok(e) => self.offer(e),
                Err(broadcast::error::RecvError::Lagged(_)) => self.resync(),
                Err(broadcast::error::RecvError::Closed) => self.closed = true,
            }
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        ::metrics::gauge!(m::SUBSCRIBERS).decrement(1.0);
    }
}
