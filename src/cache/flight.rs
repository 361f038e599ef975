//! Single flight: concurrent misses on one key share one factory run.
//!
//! The first caller becomes the leader and gets a [`Leader`] guard; later callers get a
//! receiver and wait for the leader's result (value or error, shared). If the leader is
//! cancelled before completing, its guard's drop releases the waiters, which retry (one
//! of them becomes the next leader).

use super::{CacheError, CacheValue};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::watch;

type Outcome = Option<Result<CacheValue, CacheError>>;

/// Flights in progress, by key.
#[derive(Default)]
pub(crate) struct Flights {
    map: Mutex<HashMap<String, (u64, watch::Receiver<Outcome>)>>,
    ids: std::sync::atomic::AtomicU64,
}

/// The caller's role in a flight.
pub(crate) enum Role {
    /// Run the factory, then [`Leader::complete`].
    Leader(Leader),
    /// Wait with [`wait`].
    Waiter(watch::Receiver<Outcome>),
}

/// The leader's guard.
pub(crate) struct Leader {
    flights: Arc<Flights>,
    key: String,
    id: u64,
    tx: watch::Sender<Outcome>,
}

impl Flights {
    /// Joins the flight on `key`, or starts one.
    pub fn join(self: &Arc<Self>, key: &str) -> Role {
        let mut map = self.map.lock();
        if let Some((_, rx)) = map.get(key) {
            return Role::Waiter(rx.clone());
        }
        let (tx, rx) = watch::channel(None);
        let id = self.ids.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        map.insert(key.to_owned(), (id, rx));
        Role::Leader(Leader { flights: self.clone(), key: key.to_owned(), id, tx })
    }

    /// Number of flights in progress (for tests and stats).
    #[allow(dead_code)]
    pub fn len(&self) -> usize {
        self.map.lock().len()
    }
}

impl Leader {
    /// Publishes the outcome to every waiter and ends the flight.
    pub fn complete(self, outcome: Result<CacheValue, CacheError>) {
        self.tx.send_replace(Some(outcome));
        // Drop removes the entry.
    }
}

impl Drop for Leader {
    fn drop(&mut self) {
        let mut map = self.flights.map.lock();
        if map.get(&self.key).is_some_and(|(id, _)| *id == self.id) {
            map.remove(&self.key);
        }
    }
}

/// Waits for the leader. `None` means the leader was cancelled: retry.
pub(crate) async fn wait(mut rx: watch::Receiver<Outcome>) -> Option<Result<CacheValue, CacheError>> {
    match rx.wait_for(|o| o.is_some()).await {
        Ok(o) => o.clone(),
        Err(_) => None,
    }
}
