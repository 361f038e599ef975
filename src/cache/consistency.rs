//! Ordering between writers (set, delete, invalidate) and fillers (L2→L1 promotion and
//! `get_or_set` factories) so that a removal is never undone by a value read before it.
//!
//! - Every `set`/`delete` takes a [`Ticket`]: under its key's stripe lock it gets a global
//!   sequence number, becomes the key's latest pending operation and updates L1. Its L2
//!   write is applied only if it is still the latest operation on the key when the
//!   group-commit writer runs it (so two racing writes land in L2 in the order they
//!   touched L1), and the pending mark is cleared only after the commit is durable.
//! - A filler takes a [`Snapshot`] before it reads L2 or runs a factory. None is given
//!   while an operation on the key or an invalidation is in flight (the data it would
//!   read may be about to change). The fill is stored only if nothing touched the key's
//!   stripe and no invalidation started since the snapshot: checked by the L2 writer for
//!   the L2 write and, under the same locks writers take, for the L1 insert.
//! - `invalidate` and `delete_pattern` hold the fence exclusively while they bump the
//!   epoch and purge L1, and count as in flight until their L2 deletes are durable.
//!
//! Stripes are shared by keys that hash alike; a collision only makes a fill skip storing
//! (conservative), never a write get lost.

use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

const STRIPES: usize = 256;

#[derive(Default)]
struct Stripe {
    /// Sequence number of the last set/delete begun on any key of the stripe.
    last: u64,
    /// Keys with a set/delete not yet durable, with the latest one's sequence number.
    pending: HashMap<String, u64>,
}

/// The shared ordering state of one cache.
pub(crate) struct Consistency {
    stripes: Box<[Mutex<Stripe>]>,
    hasher: std::collections::hash_map::RandomState,
    seq: AtomicU64,
    epoch: AtomicU64,
    invalidations: AtomicU64,
    fence: RwLock<()>,
}

/// A set or delete in progress. Dropping it unfinished clears its pending mark.
pub(crate) struct Ticket {
    c: Arc<Consistency>,
    key: String,
    stripe: usize,
    seq: u64,
    epoch: u64,
    done: bool,
}

/// The state a fill was based on.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Snapshot {
    stripe: usize,
    last: u64,
    epoch: u64,
}

/// An invalidation in flight; dropping it marks it finished.
pub(crate) struct Invalidation {
    c: Arc<Consistency>,
}

impl Consistency {
    /// Fresh state.
    pub fn new() -> Arc<Self> {
        Arc::new(Consistency {
            stripes: (0..STRIPES).map(|_| Mutex::new(Stripe::default())).collect(),
            hasher: Default::default(),
            seq: AtomicU64::new(0),
            epoch: AtomicU64::new(0),
            invalidations: AtomicU64::new(0),
            fence: RwLock::new(()),
        })
    }

    fn stripe_of(&self, key: &str) -> usize {
        (self.hasher.hash_one(key) as usize) % STRIPES
    }

    /// Begins a set or delete of `key`; `l1` runs under the key's stripe lock.
    pub fn begin(self: &Arc<Self>, key: &str, l1: impl FnOnce()) -> Ticket {
        let stripe = self.stripe_of(key);
        let mut s = self.stripes[stripe].lock();
        let seq = self.seq.fetch_add(1, SeqCst) + 1;
        s.last = seq;
        s.pending.insert(key.to_owned(), seq);
        let epoch = self.epoch.load(SeqCst);
        l1();
        Ticket { c: self.clone(), key: key.to_owned(), stripe, seq, epoch, done: false }
    }

    /// Begins a set or delete of `key` only if nothing touched the key's stripe and no
    /// invalidation started since `snap` (the read-modify-write of an atomic update);
    /// None when something did (re-read and try again).
    pub fn begin_if(self: &Arc<Self>, key: &str, snap: &Snapshot, l1: impl FnOnce()) -> Option<Ticket> {
        let mut s = self.stripes[snap.stripe].lock();
        let epoch = self.epoch.load(SeqCst);
        if s.last != snap.last || epoch != snap.epoch || s.pending.contains_key(key) || self.invalidations.load(SeqCst) > 0 {
            return None;
        }
        let seq = self.seq.fetch_add(1, SeqCst) + 1;
        s.last = seq;
        s.pending.insert(key.to_owned(), seq);
        l1();
        Some(Ticket { c: self.clone(), key: key.to_owned(), stripe: snap.stripe, seq, epoch, done: false })
    }

    /// Takes a snapshot for a fill of `key`, or None while the key or an invalidation is
    /// in flight (then the fill must not be stored).
    pub fn snapshot(&self, key: &str) -> Option<Snapshot> {
        let _fence = self.fence.read();
        if self.invalidations.load(SeqCst) > 0 {
            return None;
        }
        let stripe = self.stripe_of(key);
        let s = self.stripes[stripe].lock();
        if s.pending.contains_key(key) {
            return None;
        }
        Some(Snapshot { stripe, last: s.last, epoch: self.epoch.load(SeqCst) })
    }

    /// Whether a fill based on `snap` may still be stored (the L2 writer's check).
    pub fn still_valid(&self, snap: &Snapshot) -> bool {
        let s = self.stripes[snap.stripe].lock();
        s.last == snap.last && self.epoch.load(SeqCst) == snap.epoch
    }

    /// Runs `l1` (the L1 insert of a fill) iff the fill based on `snap` is still valid,
    /// atomically with respect to writers and invalidations. Returns whether it ran.
    pub fn fill(&self, snap: &Snapshot, l1: impl FnOnce()) -> bool {
        let _fence = self.fence.read();
        let s = self.stripes[snap.stripe].lock();
        let ok = s.last == snap.last && self.epoch.load(SeqCst) == snap.epoch;
        if ok {
            l1();
        }
        drop(s);
        ok
    }

    /// Begins an invalidation: bumps the epoch and runs `l1` (the L1 purge) exclusively.
    pub fn begin_invalidation(self: &Arc<Self>, l1: impl FnOnce()) -> Invalidation {
        let _fence = self.fence.write();
        self.invalidations.fetch_add(1, SeqCst);
        self.epoch.fetch_add(1, SeqCst);
        l1();
        Invalidation { c: self.clone() }
    }
}

impl Ticket {
    /// A check for the L2 writer: is this still the key's latest operation?
    pub fn precondition(&self) -> Box<dyn FnOnce() -> bool + Send> {
        let (c, key, stripe, seq) = (self.c.clone(), self.key.clone(), self.stripe, self.seq);
        Box::new(move || c.stripes[stripe].lock().pending.get(&key) == Some(&seq))
    }

    /// Ends the operation once its L2 write is durable (or when there is no L2). `l1`
    /// (the L1 insert of a set) runs iff this is still the key's latest operation and no
    /// invalidation started or is running since [`Consistency::begin`]. Returns whether it ran.
    pub fn finish(mut self, l1: impl FnOnce()) -> bool {
        let c = self.c.clone();
        let _fence = c.fence.read();
        let mut s = c.stripes[self.stripe].lock();
        let latest = s.pending.get(&self.key) == Some(&self.seq);
        let mut ran = false;
        if latest {
            s.pending.remove(&self.key);
            if c.epoch.load(SeqCst) == self.epoch && c.invalidations.load(SeqCst) == 0 {
                l1();
                ran = true;
            }
        }
        self.done = true;
        ran
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.done {
            let mut s = self.c.stripes[self.stripe].lock();
            if s.pending.get(&self.key) == Some(&self.seq) {
                s.pending.remove(&self.key);
            }
        }
    }
}

impl Snapshot {
    /// A check for the L2 writer bound to `c`.
    pub fn precondition(self, c: &Arc<Consistency>) -> Box<dyn FnOnce() -> bool + Send> {
        let c = c.clone();
        Box::new(move || c.still_valid(&self))
    }
}

impl Drop for Invalidation {
    fn drop(&mut self) {
        self.c.invalidations.fetch_sub(1, SeqCst);
    }
}
