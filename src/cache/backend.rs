//! The L2 backend trait (seed: `CacheBackend`), so a Redis backend can replace the
//! embedded redb one without touching the cache logic.
//!
//! Keys given to a backend are full keys (with `l2.key_prefix`). A backend must never
//! return an entry whose expiry is at or before `now_ms`, must apply a write only if its
//! precondition holds at the moment it is applied (atomically for the embedded backend;
//! best effort for remote ones), and acknowledges a write only once it is durable.

use super::{CacheError, CacheValue};
use std::sync::Arc;

/// An entry as stored in and returned by a backend.
#[derive(Debug, Clone)]
pub struct BackendEntry {
    /// The value.
    pub value: CacheValue,
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// Tags for `invalidate`.
    pub tags: Vec<String>,
}

/// A check evaluated right before a write is applied; `false` skips the write.
pub type Precondition = Box<dyn FnOnce() -> bool + Send>;

/// A predicate over full keys, for pattern deletes.
pub type KeyFilter = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// Size and eviction counters of a backend.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Entries held (including expired ones not yet swept).
    pub entries: u64,
    /// Bytes held.
    pub bytes: u64,
}

/// What a write did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Whether the precondition held and the write was applied.
    pub applied: bool,
    /// For deletes: whether the key existed. For sets: whether it replaced an entry.
    pub existed: bool,
    /// Entries evicted to make room.
    pub evicted: u64,
}

/// One page of [`CacheBackend::list_keys`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyPage {
    /// Full keys of live entries that passed the filter.
    pub keys: Vec<String>,
    /// Where the next page starts: a token of this backend's own making, to pass back as
    /// `cursor`. None when the listing is complete.
    pub next: Option<String>,
}

/// The L2 tier.
#[async_trait::async_trait]
pub trait CacheBackend: Send + Sync + 'static {
    /// The live entry under `key`, if any.
    async fn get(&self, key: &str, now_ms: i64) -> Result<Option<BackendEntry>, CacheError>;
    /// Stores `entry` under `key` if `precondition` holds, evicting others to stay within
    /// the capacity.
    async fn set(&self, key: &str, entry: BackendEntry, precondition: Precondition) -> Result<WriteOutcome, CacheError>;
    /// Removes `key` if `precondition` holds.
    async fn delete(&self, key: &str, precondition: Precondition) -> Result<WriteOutcome, CacheError>;
    /// Removes every entry carrying any of `tags`; returns how many.
    async fn delete_tagged(&self, tags: &[String]) -> Result<u64, CacheError>;
    /// Removes every entry whose key starts with `scan_prefix` and satisfies `filter`;
    /// returns how many.
    async fn delete_matching(&self, scan_prefix: &str, filter: KeyFilter) -> Result<u64, CacheError>;
    /// One page of the live (at `now_ms`) entries whose key starts with `scan_prefix` and
    /// passes `filter`: examines about `count` entries from `cursor` (None: the start;
    /// else a [`KeyPage::next`] of this backend, which it may reject as invalid). Like
    /// Redis's `SCAN`, a key present for the whole listing is listed at least once; one
    /// set or removed during it may or may not be. A page may hold no key and still have
    /// a next one.
    async fn list_keys(
        &self,
        scan_prefix: &str,
        filter: KeyFilter,
        cursor: Option<&str>,
        count: usize,
        now_ms: i64,
    ) -> Result<KeyPage, CacheError>;
    /// Removes entries expired at `now_ms`; returns how many.
    async fn sweep(&self, now_ms: i64) -> Result<u64, CacheError>;
    /// Current size.
    async fn usage(&self) -> Result<Usage, CacheError>;
    /// Configured capacity in bytes.
    fn capacity(&self) -> u64;

    /// Whether other processes (the other nodes of a cluster) write this backend too.
    /// Then each node's L1 copies must follow their writes: see [`CacheBackend::watch`].
    fn shared(&self) -> bool {
        false
    }

    /// For a shared backend: runs until `shutdown`, reporting the changes other writers
    /// make, in order — `Changed::Keys` with the full keys they set or removed, and
    /// `Changed::Gap` whenever changes may have been missed (at the start and after a
    /// reconnection), after which no L1 copy can be trusted. A private backend has
    /// nothing to report and returns at once.
    async fn watch(&self, _changed: &(dyn Fn(Changed) + Send + Sync), _shutdown: tokio_util::sync::CancellationToken) {}
}

/// A change another writer made to a shared backend (see [`CacheBackend::watch`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changed {
    /// These full keys were set or removed.
    Keys(Vec<String>),
    /// Changes may have been missed.
    Gap,
}
