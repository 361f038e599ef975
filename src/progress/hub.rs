//! The routing side of live feeds: one *hub* task per tracker reads the event bus and
//! hands each progress event to the mailboxes of the feeds following its id (or `*`).
//! Routing never waits: it appends to a feed's bounded, coalescing [`Queue`] (see
//! `live.rs` for the rules a feed's reader applies). This file knows nothing of the
//! tracker, so the tracker can own the hub and feeds can read the tracker.

use super::metrics as m;
use super::model::topics;
use crate::events::{Event, EventBus, RecvError};
use parking_lot::{Mutex, RwLock};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use tokio::sync::Notify;

#[derive(Clone)]
pub(super) enum Item {
    Event(Arc<Event>),
    /// The current state of an id, read from the tracker when sent.
    Snapshot(String),
}

impl Item {
    pub(super) fn id(&self) -> &str {
        match self {
            Item::Event(e) => &e.key,
            Item::Snapshot(id) => id,
        }
    }
}

pub(super) fn version_of(e: &Event) -> u64 {
    e.data.get("version").and_then(|v| v.as_u64()).unwrap_or(0)
}

/// A feed's bounded, coalescing queue.
#[derive(Default)]
pub(super) struct Queue {
    pub(super) items: VecDeque<Item>,
    /// Absolute index (see `head`) of the queued item that absorbs newer events per id.
    pub(super) absorb: HashMap<String, u64>,
    /// Absolute index of `items[0]`.
    pub(super) head: u64,
    /// Set when the hub missed events: the feed re-queues snapshots before reading on.
    pub(super) resync: bool,
    /// Set when the bus is gone.
    pub(super) closed: bool,
}

impl Queue {
    pub(super) fn push(&mut self, item: Item, absorbing: bool) {
        let idx = self.head + self.items.len() as u64;
        if absorbing {
            self.absorb.insert(item.id().to_string(), idx);
        }
        self.items.push_back(item);
    }

    pub(super) fn absorber(&mut self, id: &str) -> Option<&mut Item> {
        let idx = *self.absorb.get(id)?;
        self.items.get_mut(idx.checked_sub(self.head)? as usize)
    }

    pub(super) fn push_snapshot(&mut self, id: String) {
        if let Some(item) = self.absorber(&id) {
            // A queued update or snapshot for this id becomes the snapshot.
            *item = Item::Snapshot(id);
            return;
        }
        self.push(Item::Snapshot(id), true);
    }

    pub(super) fn offer(&mut self, e: &Arc<Event>, capacity: usize) {
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
    pub(super) fn collapse(&mut self) {
        let mut seen = HashSet::new();
        self.head += self.items.len() as u64;
        let ids: Vec<String> = self.items.drain(..).map(|i| i.id().to_string()).filter(|id| seen.insert(id.clone())).collect();
        self.absorb.clear();
        for id in ids {
            self.push(Item::Snapshot(id), true);
        }
    }

    pub(super) fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        if self.absorb.get(item.id()) == Some(&self.head) {
            self.absorb.remove(item.id());
        }
        self.head += 1;
        Some(item)
    }
}

/// Where the hub delivers one feed's events.
pub(super) struct Mailbox {
    pub(super) queue: Mutex<Queue>,
    pub(super) notify: Notify,
    pub(super) capacity: usize,
}

impl Mailbox {
    pub(super) fn offer(&self, e: &Arc<Event>) {
        self.queue.lock().offer(e, self.capacity);
        self.notify.notify_one();
    }

    pub(super) fn flag(&self, set: impl FnOnce(&mut Queue)) {
        set(&mut self.queue.lock());
        self.notify.notify_one();
    }
}

/// Which mailboxes follow which ids.
#[derive(Default)]
pub(super) struct Registry {
    pub(super) by_id: RwLock<HashMap<String, Vec<Arc<Mailbox>>>>,
    pub(super) all: RwLock<Vec<Arc<Mailbox>>>,
}

impl Registry {
    pub(super) fn route(&self, e: &Arc<Event>) {
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

    pub(super) fn each(&self, f: impl Fn(&Mailbox)) {
        for boxes in self.by_id.read().values() {
            boxes.iter().for_each(|b| f(b));
        }
        self.all.read().iter().for_each(|b| f(b));
    }

    pub(super) fn remove(&self, id: &str, mb: &Arc<Mailbox>) {
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
    pub(super) registry: Arc<Registry>,
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
                    Err(RecvError::Lagged(_)) => {
                        ::metrics::counter!(m::RESYNCS).increment(1);
                        reg.each(|b| b.flag(|q| q.resync = true));
                    }
                    Err(RecvError::Closed) => {
                        reg.each(|b| b.flag(|q| q.closed = true));
                        break;
                    }
                }
            }
        });
        Hub { registry }
    }
}
