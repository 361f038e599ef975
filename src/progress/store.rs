//! The embedded storage backend: progress records in hearth's redb database.
//!
//! Tables (all keyed by text):
//! - `progress_records`: id → encoded [`ProgressRecord`];
//! - `progress_by_status`: `status \0 id` → (), for listing by status;
//! - `progress_finished`: `status \0 finished_at_ms(20 digits) \0 id` → (), so the
//!   retention sweeper reads only what has expired.
//!
//! Invariant: the two indexes always describe exactly the records present; every write
//! goes through [`put`] / [`remove`], which maintain them in the same transaction.

use super::error::ProgressError;
use super::model::{ProgressRecord, ProgressStatus};
use super::storage::{ListQuery, ProgressStorage};
use crate::store::{self, Store, StoreError, codec};
use chrono::{DateTime, Utc};
use redb::{ReadableTable, TableDefinition, WriteTransaction};
use std::ops::Bound;

const RECORDS: TableDefinition<&str, &[u8]> = TableDefinition::new("progress_records");
const BY_STATUS: TableDefinition<&str, ()> = TableDefinition::new("progress_by_status");
const FINISHED: TableDefinition<&str, ()> = TableDefinition::new("progress_finished");

fn status_key(status: ProgressStatus, id: &str) -> String {
    format!("{}\0{id}", status.as_str())
}

fn millis(t: DateTime<Utc>) -> u64 {
    t.timestamp_millis().max(0) as u64
}

fn finished_key(status: ProgressStatus, at: DateTime<Utc>, id: &str) -> String {
    format!("{}\0{:020}\0{id}", status.as_str(), millis(at))
}

/// Reads and decodes the stored record for `id` inside a write transaction.
fn get(txn: &WriteTransaction, id: &str) -> Result<Option<ProgressRecord>, StoreError> {
    let t = txn.open_table(RECORDS)?;
    let v = t.get(id)?;
    match v {
        Some(bytes) => Ok(Some(codec::decode(bytes.value())?)),
        None => Ok(None),
    }
}

/// Removes `old`'s index entries (the record row itself is overwritten or removed by the caller).
fn unindex(txn: &WriteTransaction, old: &ProgressRecord) -> Result<(), StoreError> {
    txn.open_table(BY_STATUS)?.remove(status_key(old.status, &old.id).as_str())?;
    if let Some(at) = old.finished_at {
        txn.open_table(FINISHED)?.remove(finished_key(old.status, at, &old.id).as_str())?;
    }
    Ok(())
}

/// Writes `rec` (already encoded as `bytes`) replacing `old`, keeping the indexes exact.
fn put(txn: &WriteTransaction, old: Option<&ProgressRecord>, rec: &ProgressRecord, bytes: &[u8]) -> Result<(), StoreError> {
    if let Some(old) = old {
        unindex(txn, old)?;
    }
    txn.open_table(RECORDS)?.insert(rec.id.as_str(), bytes)?;
    txn.open_table(BY_STATUS)?.insert(status_key(rec.status, &rec.id).as_str(), ())?;
    if let Some(at) = rec.finished_at {
        txn.open_table(FINISHED)?.insert(finished_key(rec.status, at, &rec.id).as_str(), ())?;
    }
    Ok(())
}

/// Removes a stored record and its index entries.
fn remove(txn: &WriteTransaction, old: &ProgressRecord) -> Result<(), StoreError> {
    unindex(txn, old)?;
    txn.open_table(RECORDS)?.remove(old.id.as_str())?;
    Ok(())
}

/// Outcome of a guarded replace, decided inside the write transaction.
enum Saved {
    Written,
    Missing,
    Stale(u64),
}

fn save_guarded(txn: &WriteTransaction, rec: &ProgressRecord, bytes: &[u8]) -> Result<Saved, StoreError> {
    match get(txn, &rec.id)? {
        None => Ok(Saved::Missing),
        Some(old) if old.version >= rec.version => Ok(Saved::Stale(old.version)),
        Some(old) => {
            put(txn, Some(&old), rec, bytes)?;
            Ok(Saved::Written)
        }
    }
}

/// [`ProgressStorage`] on hearth's redb [`Store`] (the default backend).
#[derive(Clone)]
pub struct RedbProgressStorage {
    store: Store,
}

impl RedbProgressStorage {
    /// A backend writing through `store`'s group-commit writer.
    pub fn new(store: Store) -> Self {
        RedbProgressStorage { store }
    }
}

#[async_trait::async_trait]
impl ProgressStorage for RedbProgressStorage {
    async fn insert(&self, rec: &ProgressRecord) -> Result<(), ProgressError> {
        let bytes = codec::encode(rec)?;
        let rec = rec.clone();
        self.store
            .write(move |txn| -> Result<(), ProgressError> {
                if get(txn, &rec.id)?.is_some() {
                    return Err(ProgressError::AlreadyExists(rec.id.clone()));
                }
                put(txn, None, &rec, &bytes)?;
                Ok(())
            })
            .await
    }

    async fn save(&self, rec: &ProgressRecord) -> Result<(), ProgressError> {
        let bytes = codec::encode(rec)?;
        let rec = rec.clone();
        let id = rec.id.clone();
        let version = rec.version;
        let outcome = self.store.write(move |txn| -> Result<Saved, StoreError> { save_guarded(txn, &rec, &bytes) }).await?;
        match outcome {
            Saved::Written => Ok(()),
            Saved::Missing => Err(ProgressError::NotFound(id)),
            Saved::Stale(stored) => {
                Err(ProgressError::Conflict(format!("progress '{id}' changed concurrently (stored version {stored}, write {version})")))
            }
        }
    }

    async fn save_coalesced(&self, recs: Vec<ProgressRecord>) -> Result<usize, ProgressError> {
        if recs.is_empty() {
            return Ok(0);
        }
        let encoded = recs.into_iter().map(|r| codec::encode(&r).map(|b| (r, b))).collect::<Result<Vec<_>, _>>()?;
        let written = self
            .store
            .write(move |txn| -> Result<usize, StoreError> {
                let mut n = 0;
                for (rec, bytes) in &encoded {
                    if let Saved::Written = save_guarded(txn, rec, bytes)? {
                        n += 1;
                    }
                }
                Ok(n)
            })
            .await?;
        Ok(written)
    }

    async fn load(&self, id: &str) -> Result<Option<ProgressRecord>, ProgressError> {
        let id = id.to_string();
        self.store
            .read(move |txn| -> Result<Option<ProgressRecord>, StoreError> {
                let Some(t) = store::open_read(txn, RECORDS)? else { return Ok(None) };
                let v = t.get(id.as_str())?;
                v.map(|b| codec::decode(b.value())).transpose()
            })
            .await
            .map_err(ProgressError::from)
    }

    async fn list(&self, q: ListQuery) -> Result<Vec<ProgressRecord>, ProgressError> {
        self.store
            .read(move |txn| -> Result<Vec<ProgressRecord>, StoreError> {
                let Some(records) = store::open_read(txn, RECORDS)? else { return Ok(Vec::new()) };
                let mut out = Vec::new();
                match q.status {
                    None => {
                        let lower = match &q.after {
                            Some(a) => Bound::Excluded(a.as_str()),
                            None => Bound::Unbounded,
                        };
                        for row in records.range::<&str>((lower, Bound::Unbounded))? {
                            if out.len() >= q.limit {
                                break;
                            }
                            let (_, v) = row?;
                            out.push(codec::decode(v.value())?);
                        }
                    }
                    Some(status) => {
                        let Some(idx) = store::open_read(txn, BY_STATUS)? else { return Ok(Vec::new()) };
                        let lower = status_key(status, q.after.as_deref().unwrap_or(""));
                        let upper = format!("{}\u{1}", status.as_str());
                        let lower = if q.after.is_some() { Bound::Excluded(lower.as_str()) } else { Bound::Included(lower.as_str()) };
                        for row in idx.range::<&str>((lower, Bound::Excluded(upper.as_str())))? {
                            if out.len() >= q.limit {
                                break;
                            }
                            let (k, _) = row?;
                            let key = k.value();
                            let id = key.split_once('\0').map(|(_, id)| id).unwrap_or_default();
                            if let Some(v) = records.get(id)? {
                                out.push(codec::decode(v.value())?);
                            }
                        }
                    }
                }
                Ok(out)
            })
            .await
            .map_err(ProgressError::from)
    }

    async fn delete(&self, id: &str) -> Result<bool, ProgressError> {
        let id = id.to_string();
        self.store
            .write(move |txn| -> Result<bool, StoreError> {
                match get(txn, &id)? {
                    Some(old) => {
                        remove(txn, &old)?;
                        Ok(true)
                    }
                    None => Ok(false),
                }
            })
            .await
            .map_err(ProgressError::from)
    }

    async fn remove_finished(
        &self,
        status: ProgressStatus,
        finished_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, ProgressError> {
        let lower = format!("{}\0", status.as_str());
        let upper = format!("{}\0{:020}", status.as_str(), millis(finished_before));
        self.store
            .write(move |txn| -> Result<Vec<String>, StoreError> {
                let mut expired = Vec::new();
                {
                    let idx = txn.open_table(FINISHED)?;
                    for row in idx.range::<&str>((Bound::Included(lower.as_str()), Bound::Excluded(upper.as_str())))? {
                        if expired.len() >= limit {
                            break;
                        }
                        let (k, _) = row?;
                        if let Some((_, id)) = k.value().rsplit_once('\0') {
                            expired.push(id.to_string());
                        }
                    }
                }
                let mut removed = Vec::with_capacity(expired.len());
                for id in expired {
                    if let Some(old) = get(txn, &id)? {
                        remove(txn, &old)?;
                        removed.push(id);
                    }
                }
                Ok(removed)
            })
            .await
            .map_err(ProgressError::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_redb_storage_passes_the_conformance_suite() {
        super::super::conformance::run(crate::conformance::TempDb::on_store(RedbProgressStorage::new)).await;
    }
}
