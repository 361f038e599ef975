//! The embedded L2 backend: entries in the foundation's redb store.
//!
//! Tables (all prefixed `cache_`):
//! - `cache_entries`: full key → record ([`super::record`]).
//! - `cache_expiry`: (expires_ms, key) → () — drives the sweeper and eviction.
//! - `cache_tags`: (tag, key) → () — drives `invalidate`.
//! - `cache_meta`: `entries`, `bytes` → u64 — running totals kept in the same
//!   transactions as the entries they count.
//!
//! Eviction policy: when a write takes the stored bytes (key + record) over
//! `l2.max_size`, entries are evicted in order of earliest expiry (Redis's `volatile-ttl`)
//! until it fits. It needs no per-read bookkeeping, so an L2 hit stays a pure read; the
//! entries evicted are those with the least remaining lifetime.
//!
//! Writes go through the group-commit writer (durable when acknowledged); reads run on
//! the blocking pool. Bulk deletes scan in read transactions and delete in batches so no
//! single writer closure runs long.

use super::CacheError;
use super::backend::{BackendEntry, CacheBackend, KeyFilter, KeyPage, Precondition, Usage, WriteOutcome};
use super::record::{self, Header};
use crate::store::{self, Store, StoreError};
use redb::{ReadableTable, TableDefinition, WriteTransaction};

const ENTRIES: TableDefinition<&str, &[u8]> = TableDefinition::new("cache_entries");
const EXPIRY: TableDefinition<(i64, &str), ()> = TableDefinition::new("cache_expiry");
const TAGS: TableDefinition<(&str, &str), ()> = TableDefinition::new("cache_tags");
const META: TableDefinition<&str, u64> = TableDefinition::new("cache_meta");

/// Keys per batch of a bulk delete.
const BATCH: usize = 512;
/// Values above this size are compressed on the blocking pool rather than inline.
const INLINE_COMPRESS_LIMIT: usize = 64 * 1024;

/// L2 in redb.
#[derive(Clone)]
pub struct EmbeddedBackend {
    store: Store,
    max_bytes: u64,
    compress_above: Option<usize>,
}

impl EmbeddedBackend {
    /// A backend on `store` holding at most `max_bytes`, compressing values longer than
    /// `compress_above` bytes (None: never).
    pub fn new(store: Store, max_bytes: u64, compress_above: Option<usize>) -> Self {
        EmbeddedBackend { store, max_bytes, compress_above }
    }
}

/// The tables of one write transaction plus the running totals.
struct Tables<'t> {
    entries: redb::Table<'t, &'static str, &'static [u8]>,
    expiry: redb::Table<'t, (i64, &'static str), ()>,
    tags: redb::Table<'t, (&'static str, &'static str), ()>,
    meta: redb::Table<'t, &'static str, u64>,
    count: u64,
    bytes: u64,
}

impl<'t> Tables<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, StoreError> {
        let meta = txn.open_table(META)?;
        let count = meta.get("entries")?.map(|v| v.value()).unwrap_or(0);
        let bytes = meta.get("bytes")?.map(|v| v.value()).unwrap_or(0);
        Ok(Tables { entries: txn.open_table(ENTRIES)?, expiry: txn.open_table(EXPIRY)?, tags: txn.open_table(TAGS)?, meta, count, bytes })
    }

    /// Removes `key` with its index rows; returns whether it existed.
    fn remove(&mut self, key: &str) -> Result<bool, StoreError> {
        let Some(old) = self.entries.remove(key)? else { return Ok(false) };
        let rec = old.value();
        let size = (key.len() + rec.len()) as u64;
        match record::split(rec) {
            Ok((h, _)) => {
                self.expiry.remove((h.expires_ms, key))?;
                for t in &h.tags {
                    self.tags.remove((t.as_str(), key))?;
                }
            }
            Err(e) => tracing::warn!(key, error = %e, "removing a corrupt cache record; its index rows stay until swept"),
        }
        drop(old);
        self.count = self.count.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(size);
        Ok(true)
    }

    fn insert(&mut self, key: &str, rec: &[u8], h: &Header) -> Result<(), StoreError> {
        self.entries.insert(key, rec)?;
        self.expiry.insert((h.expires_ms, key), ())?;
        for t in &h.tags {
            self.tags.insert((t.as_str(), key), ())?;
        }
        self.count += 1;
        self.bytes += (key.len() + rec.len()) as u64;
        Ok(())
    }

    /// The key with the earliest expiry other than `except`.
    fn earliest_except(&self, except: &str) -> Result<Option<String>, StoreError> {
        for row in self.expiry.iter()? {
            let (k, _) = row?;
            let (_, key) = k.value();
            if key != except {
                return Ok(Some(key.to_owned()));
            }
        }
        Ok(None)
    }

    fn save(mut self) -> Result<(), StoreError> {
        self.meta.insert("entries", self.count)?;
        self.meta.insert("bytes", self.bytes)?;
        Ok(())
    }
}

/// Up to `BATCH` keys found by `scan` in a read transaction.
async fn scan_keys<F>(store: &Store, scan: F) -> Result<Vec<String>, CacheError>
where
    F: FnOnce(&redb::ReadTransaction) -> Result<Vec<String>, StoreError> + Send + 'static,
{
    Ok(store.read(move |txn| scan(txn)).await?)
}

impl EmbeddedBackend {
    /// Deletes those of `keys` still present, in one transaction; returns how many.
    async fn delete_keys(&self, keys: Vec<String>) -> Result<u64, CacheError> {
        Ok(self
            .store
            .write(move |txn| -> Result<u64, StoreError> {
                let mut t = Tables::open(txn)?;
                let mut n = 0;
                for k in &keys {
                    if t.remove(k)? {
                        n += 1;
                    }
                }
                t.save()?;
                Ok(n)
            })
            .await?)
    }
}

#[async_trait::async_trait]
impl CacheBackend for EmbeddedBackend {
    async fn get(&self, key: &str, now_ms: i64) -> Result<Option<BackendEntry>, CacheError> {
        let key = key.to_owned();
        Ok(self
            .store
            .read(move |txn| -> Result<Option<BackendEntry>, StoreError> {
                let Some(t) = store::open_read(txn, ENTRIES)? else { return Ok(None) };
                let Some(rec) = t.get(key.as_str())? else { return Ok(None) };
                let rec = rec.value();
                let (h, _) = record::split(rec)?;
                if h.expires_ms <= now_ms {
                    return Ok(None);
                }
                record::decode(rec).map(Some)
            })
            .await?)
    }

    async fn set(&self, key: &str, entry: BackendEntry, precondition: Precondition) -> Result<WriteOutcome, CacheError> {
        let compress = self.compress_above;
        let rec = if entry.value.len() > INLINE_COMPRESS_LIMIT && compress.is_some() {
            tokio::task::spawn_blocking(move || record::encode(&entry, compress))
                .await
                .map_err(|e| CacheError::Backend(format!("compression task failed: {e}")))??
        } else {
            record::encode(&entry, compress)?
        };
        let size = (key.len() + rec.len()) as u64;
        if size > self.max_bytes {
            return Err(CacheError::TooLarge(format!(
                "stored entry of {size} bytes exceeds the L2 capacity (cache.l2.max_size = {})",
                self.max_bytes
            )));
        }
        let (header, _) = record::split(&rec)?;
        let key = key.to_owned();
        let max = self.max_bytes;
        Ok(self
            .store
            .write(move |txn| -> Result<WriteOutcome, StoreError> {
                if !precondition() {
                    return Ok(WriteOutcome::default());
                }
                let mut t = Tables::open(txn)?;
                let existed = t.remove(&key)?;
                t.insert(&key, &rec, &header)?;
                let mut evicted = 0;
                while t.bytes > max {
                    let Some(victim) = t.earliest_except(&key)? else { break };
                    t.remove(&victim)?;
                    evicted += 1;
                }
                t.save()?;
                Ok(WriteOutcome { applied: true, existed, evicted })
            })
            .await?)
    }

    async fn delete(&self, key: &str, precondition: Precondition) -> Result<WriteOutcome, CacheError> {
        let key = key.to_owned();
        Ok(self
            .store
            .write(move |txn| -> Result<WriteOutcome, StoreError> {
                if !precondition() {
                    return Ok(WriteOutcome::default());
                }
                let mut t = Tables::open(txn)?;
                let existed = t.remove(&key)?;
                t.save()?;
                Ok(WriteOutcome { applied: true, existed, evicted: 0 })
            })
            .await?)
    }

    async fn delete_tagged(&self, tags: &[String]) -> Result<u64, CacheError> {
        let mut total = 0;
        for tag in tags {
            loop {
                let tag2 = tag.clone();
                let pairs = scan_keys(&self.store, move |txn| {
                    let Some(t) = store::open_read(txn, TAGS)? else { return Ok(vec![]) };
                    let mut out = Vec::new();
                    for row in t.range((tag2.as_str(), "")..)? {
                        let (k, _) = row?;
                        let (tg, key) = k.value();
                        if tg != tag2 || out.len() >= BATCH {
                            break;
                        }
                        out.push(key.to_owned());
                    }
                    Ok(out)
                })
                .await?;
                if pairs.is_empty() {
                    break;
                }
                let full = pairs.len() == BATCH;
                let tag3 = tag.clone();
                total += self
                    .store
                    .write(move |txn| -> Result<u64, StoreError> {
                        let mut t = Tables::open(txn)?;
                        let mut n = 0;
                        for k in &pairs {
                            if t.remove(k)? {
                                n += 1;
                            }
                            // Drops an orphan index row too, so the scan always progresses.
                            t.tags.remove((tag3.as_str(), k.as_str()))?;
                        }
                        t.save()?;
                        Ok(n)
                    })
                    .await?;
                if !full {
                    break;
                }
            }
        }
        Ok(total)
    }

    async fn delete_matching(&self, scan_prefix: &str, filter: KeyFilter) -> Result<u64, CacheError> {
        let mut total = 0;
        let mut cursor = scan_prefix.to_owned();
        let mut inclusive = true;
        loop {
            let (prefix, from, f) = (scan_prefix.to_owned(), cursor.clone(), filter.clone());
            let (keys, last, done) = self
                .store
                .read(move |txn| -> Result<(Vec<String>, Option<String>, bool), StoreError> {
                    let Some(t) = store::open_read(txn, ENTRIES)? else { return Ok((vec![], None, true)) };
                    let mut keys = Vec::new();
                    let mut last = None;
                    let mut scanned = 0;
                    for row in t.range(from.as_str()..)? {
                        let (k, _) = row?;
                        let k = k.value();
                        if !inclusive && k == from {
                            continue;
                        }
                        if !k.starts_with(prefix.as_str()) {
                            return Ok((keys, None, true));
                        }
                        if f(k) {
                            keys.push(k.to_owned());
                        }
                        scanned += 1;
                        if keys.len() >= BATCH || scanned >= BATCH * 8 {
                            last = Some(k.to_owned());
                            break;
                        }
                    }
                    let done = last.is_none();
                    Ok((keys, last, done))
                })
                .await?;
            if !keys.is_empty() {
                total += self.delete_keys(keys).await?;
            }
            match (done, last) {
                (false, Some(l)) => {
                    cursor = l;
                    inclusive = false;
                }
                _ => return Ok(total),
            }
        }
    }

    /// Walks `cache_entries` in key order; the cursor is the last key examined, so each
    /// key present for the whole listing is listed exactly once.
    async fn list_keys(
        &self,
        scan_prefix: &str,
        filter: KeyFilter,
        cursor: Option<&str>,
        count: usize,
        now_ms: i64,
    ) -> Result<KeyPage, CacheError> {
        let (prefix, after) = (scan_prefix.to_owned(), cursor.map(str::to_owned));
        let count = count.max(1);
        Ok(self
            .store
            .read(move |txn| -> Result<KeyPage, StoreError> {
                let Some(t) = store::open_read(txn, ENTRIES)? else { return Ok(KeyPage::default()) };
                let from = match &after {
                    Some(a) if a.as_str() > prefix.as_str() => a.as_str(),
                    _ => prefix.as_str(),
                };
                let mut page = KeyPage::default();
                let (mut examined, mut last) = (0, None);
                for row in t.range(from..)? {
                    let (k, rec) = row?;
                    let k = k.value();
                    if after.as_deref() == Some(k) {
                        continue;
                    }
                    if !k.starts_with(prefix.as_str()) {
                        break;
                    }
                    if examined == count {
                        // There is at least one more key: the next page starts after `last`.
                        page.next = last.take();
                        break;
                    }
                    examined += 1;
                    let live = record::split(rec.value()).is_ok_and(|(h, _)| h.expires_ms > now_ms);
                    if live && filter(k) {
                        page.keys.push(k.to_owned());
                    }
                    last = Some(k.to_owned());
                }
                Ok(page)
            })
            .await?)
    }

    async fn sweep(&self, now_ms: i64) -> Result<u64, CacheError> {
        let mut total = 0;
        loop {
            let rows = self
                .store
                .read(move |txn| -> Result<Vec<(i64, String)>, StoreError> {
                    let Some(t) = store::open_read(txn, EXPIRY)? else { return Ok(vec![]) };
                    let mut out = Vec::new();
                    for row in t.iter()? {
                        let (k, _) = row?;
                        let (exp, key) = k.value();
                        if exp > now_ms || out.len() >= BATCH {
                            break;
                        }
                        out.push((exp, key.to_owned()));
                    }
                    Ok(out)
                })
                .await?;
            if rows.is_empty() {
                return Ok(total);
            }
            let full = rows.len() == BATCH;
            total += self
                .store
                .write(move |txn| -> Result<u64, StoreError> {
                    let mut t = Tables::open(txn)?;
                    let mut n = 0;
                    for (exp, k) in &rows {
                        let expired = match t.entries.get(k.as_str())? {
                            Some(rec) => record::split(rec.value()).map(|(h, _)| h.expires_ms <= now_ms).unwrap_or(true),
                            None => false,
                        };
                        if expired && t.remove(k)? {
                            n += 1;
                        }
                        // An index row whose entry is gone (or was corrupt) must not stall the sweep.
                        t.expiry.remove((*exp, k.as_str()))?;
                    }
                    t.save()?;
                    Ok(n)
                })
                .await?;
            if !full {
                return Ok(total);
            }
        }
    }

    async fn usage(&self) -> Result<Usage, CacheError> {
        Ok(self
            .store
            .read(|txn| -> Result<Usage, StoreError> {
                let Some(m) = store::open_read(txn, META)? else { return Ok(Usage::default()) };
                let entries = m.get("entries")?.map(|v| v.value()).unwrap_or(0);
                let bytes = m.get("bytes")?.map(|v| v.value()).unwrap_or(0);
                Ok(Usage { entries, bytes })
            })
            .await?)
    }

    fn capacity(&self) -> u64 {
        self.max_bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_redb_backend_passes_the_conformance_suite() {
        let harness = crate::conformance::TempDb::on_store(|store| EmbeddedBackend::new(store, 64 * 1024, Some(1024)));
        super::super::conformance::run(harness).await;
    }
}
