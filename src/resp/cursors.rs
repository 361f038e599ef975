//! `SCAN` cursors. Redis clients treat a cursor as an integer (redis-py parses it, redis-cli
//! reads it with `strtoull`) while the cache's listing cursors are strings, so the
//! endpoint hands out numbers standing for them. The table is shared by every connection
//! (a client's pool may continue a scan on another connection) and bounded: the oldest
//! cursors are forgotten first, and a forgotten one is refused as Redis refuses a bad
//! cursor.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};

/// Cursors remembered at once.
const CAPACITY: usize = 10_000;

/// Numbers standing for listing cursors.
pub struct Cursors {
    inner: Mutex<Table>,
}

struct Table {
    next: u64,
    by_number: HashMap<u64, String>,
    order: VecDeque<u64>,
}

impl Default for Cursors {
    fn default() -> Self {
        // Numbers start at a random point so a restarted server does not resume an old scan.
        let next = (rand::random::<u64>() >> 16).max(1);
        Cursors { inner: Mutex::new(Table { next, by_number: HashMap::new(), order: VecDeque::new() }) }
    }
}

impl Cursors {
    /// A number (never 0, which means "start" and "done") standing for `cursor`.
    pub fn save(&self, cursor: String) -> u64 {
        let mut t = self.inner.lock();
        let n = t.next;
        t.next = t.next.checked_add(1).unwrap_or(1);
        if t.order.len() == CAPACITY
            && let Some(old) = t.order.pop_front()
        {
            t.by_number.remove(&old);
        }
        t.by_number.insert(n, cursor);
        t.order.push_back(n);
        n
    }

    /// The cursor `n` stands for, if it is remembered.
    pub fn get(&self, n: u64) -> Option<String> {
        self.inner.lock().by_number.get(&n).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_stand_for_cursors_until_forgotten() {
        let c = Cursors::default();
        let first = c.save("a".into());
        assert_ne!(first, 0);
        assert_eq!(c.get(first).as_deref(), Some("a"));
        assert_eq!(c.get(first.wrapping_add(12_345)), None, "an unknown number stands for nothing");
        for i in 0..CAPACITY {
            c.save(i.to_string());
        }
        assert_eq!(c.get(first), None, "the oldest cursor is forgotten past the capacity");
    }
}
