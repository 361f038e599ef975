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

use super::metrics as m;
use super::model::{Progress, topics};
use super::tracker::ProgressTracker;
use crate::events::{Event, EventBus};
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use serde::Serialize;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Weak};
use tokio::sync::{Notify, broadcast};

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
        Bytes::from(serde_json::to_vec(&WsEnvelope { event: &self.topic, data: self.data() }).unwrap_or_default())
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

#[derive(Clone)]
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

/// A feed's bounded, coalescing queue.
#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    /// Absolute index (see `head`) of the queued item that absorbs newer events per id.
    absorb: HashMap<String, u64>,
    /// Absolute index of `items[0]`.
    head: u64,
    /// Set when the hub missed events: the feed re-queues snapshots before reading on.
    resync: bool,
    /// Set when the bus is gone.
    closed: bool,
}

impl Queue {
    fn push(&mut self, item: Item, absorbing: bool) {
        let idx = self.head + self.items.len() as u64;
        if absorbing {
            self.absorb.insert(item.id().to_string(), idx);
        }
        self.items.push_back(item);
    }

    fn absorber(&mut self, id: &str) -> Option<&mut Item> {
        let idx = *self.absorb.get(id)?;
        self.items.get_mut(idx.checked_sub(self.head)? as usize)
    }

    fn push_snapshot(&mut self, id: String) {
        if let Some(item) = self.absorber(&id) {
            // A queued update or snapshot for this id becomes the snapshot.
            *item = Item::Snapshot(id);
            return;
        }
        self.push(Item::Snapshot(id), true);
    }

    fn offer(&mut self, e: &Arc<Event>, capacity: usize) {
        let is_update = e.topic == topics::UPDATE;
        if let Some(item) = self.absorber(&e.key) {
            ::metrics::counter!(m::COALESCED).increment(1);
            if let Item::Event(_) = item {
                *item = Item::Event(e.clone());
                if !is_update {
                    self.absorb.remove(&e.key);
                }
            }
            // A snapshot resolves to the latest state anyway.
            return;
        }
        self.push(Item::Event(e.clone()), is_update);
        if self.items.len() > capacity {
            self.collapse();
        }
    }

    /// Replaces the queue by one snapshot per distinct id, in first-seen order.
    fn collapse(&mut self) {
        let mut seen = HashSet::new();
        self.head += self.items.len() as u64;
        let ids: Vec<String> = self.items.drain(..).map(|i| i.id().to_string()).filter(|id| seen.insert(id.clone())).collect();
        self.absorb.clear();
        for id in ids {
            self.push(Item::Snapshot(id), true);
        }
    }

    fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        if self.absorb.get(item.id()) == Some(&self.head) {
            self.absorb.remove(item.id());
        }
        self.head += 1;
        Some(item)
    }
}

/// Where the hub delivers one feed's events.
struct Mailbox {
    queue: Mutex<Queue>,
    notify: Notify,
    capacity: usize,
}

impl Mailbox {
    fn offer(&self, e: &Arc<Event>) {
        self.queue.lock().offer(e, self.capacity);
        self.notify.notify_one();
    }

    fn flag(&self, set: impl FnOnce(&mut Queue)) {
        set(&mut self.queue.lock());
        self.notify.notify_one();
    }
}

/// Which mailboxes follow which ids.
#[derive(Default)]
struct Registry {
    by_id: RwLock<HashMap<String, Vec<Arc<Mailbox>>>>,
    all: RwLock<Vec<Arc<Mailbox>>>,
}

impl Registry {
    fn route(&self, e: &Arc<Event>) {
        if !e.topic.starts_with(topics::PREFIX) {
            return;
        }
        if let Some(boxes) = self.by_id.read().get(&e.key) {
            for b in boxes {
                b.offer(e);
            }
        }
        for b in self.all.read().iter() {
            b.offer(e);
        }
    }

    fn each(&self, f: impl Fn(&Mailbox)) {
        for boxes in self.by_id.read().values() {
            boxes.iter().for_each(|b| f(b));
        }
        self.all.read().iter().for_each(|b| f(b));
    }

    fn remove(&self, id: &str, mb: &Arc<Mailbox>) {
        let mut map = self.by_id.write();
        if let Some(v) = map.get_mut(id) {
            v.retain(|b| !Arc::ptr_eq(b, mb));
            if v.is_empty() {
                map.remove(id);
            }
        }
    }
}

/// The routing task's handle; one per tracker, started on the first feed.
pub(super) struct Hub {
    registry: Arc<Registry>,
}

impl Hub {
    /// Starts routing `bus` events. The task ends when the bus closes or the hub is dropped
    /// (checked on the next event).
    pub(super) fn start(bus: &EventBus) -> Hub {
        let registry = Arc::new(Registry::default());
        let weak = Arc::downgrade(&registry);
        let mut rx = bus.subscribe();
        tokio::spawn(async move {
            loop {
                let r = rx.recv().await;
                let Some(reg) = weak.upgrade() else { break };
                match r {
                    Ok(e) => reg.route(&e),
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        ::metrics::counter!(m::RESYNCS).increment(1);
                        reg.each(|b| b.flag(|q| q.resync = true));
                    }
                    Err(broadcast::error::RecvError::Closed) => {
                        reg.each(|b| b.flag(|q| q.closed = true));
                        break;
                    }
                }
            }
        });
        Hub { registry }
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
