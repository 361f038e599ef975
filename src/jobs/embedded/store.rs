//! redb tables of the job queue and the small read/write helpers over them.
//!
//! - `jobs_jobs`: job id → encoded [`Job`] (the source of truth).
//! - `jobs_seq`: enqueue sequence → job id; orders the newest-first listing.
//! - `jobs_queues`: queue name → encoded [`QueueMeta`] (paused flag).
//! - `jobs_schedules`: schedule name → encoded [`Schedule`].
//!
//! Claims are not stored: a running job's record says `pending` (or `failed`/`scheduled`
//! from its last write) with the attempts of its last durable state, so after a crash it
//! is simply ready again (at-least-once).

use crate::jobs::model::{Job, Schedule};
use crate::store::{StoreError, codec, open_read};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};

/// Job records by id.
pub const JOBS: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs_jobs");
/// Job ids by enqueue sequence.
pub const SEQ: TableDefinition<u64, &str> = TableDefinition::new("jobs_seq");
/// Per-queue settings.
pub const QUEUES: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs_queues");
/// Recurring schedules.
pub const SCHEDULES: TableDefinition<&str, &[u8]> = TableDefinition::new("jobs_schedules");

/// Stored settings of one queue.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct QueueMeta {
    /// Claims skip a paused queue.
    pub paused: bool,
}

/// A job record ready to be written: its id, sequence and encoded bytes (encoded off the
/// writer thread so the write closure only inserts).
pub struct Encoded {
    /// Job id.
    pub id: String,
    /// Enqueue sequence.
    pub seq: u64,
    /// `codec::encode(&job)`.
    pub bytes: Vec<u8>,
}

impl Encoded {
    /// Encodes `job`.
    pub fn of(job: &Job) -> Result<Encoded, StoreError> {
        Ok(Encoded { id: job.id.clone(), seq: job.seq, bytes: codec::encode(job)? })
    }
}

/// Inserts new jobs (record and sequence entry).
pub fn insert_new(txn: &WriteTransaction, jobs: &[Encoded]) -> Result<(), StoreError> {
    let mut t = txn.open_table(JOBS)?;
    let mut s = txn.open_table(SEQ)?;
    for j in jobs {
        t.insert(j.id.as_str(), j.bytes.as_slice())?;
        s.insert(j.seq, j.id.as_str())?;
    }
    Ok(())
}

/// Overwrites existing job records.
pub fn update(txn: &WriteTransaction, jobs: &[Encoded]) -> Result<(), StoreError> {
    let mut t = txn.open_table(JOBS)?;
    for j in jobs {
        t.insert(j.id.as_str(), j.bytes.as_slice())?;
    }
    Ok(())
}

/// Deletes jobs (record and sequence entry).
pub fn delete(txn: &WriteTransaction, jobs: &[(String, u64)]) -> Result<(), StoreError> {
    let mut t = txn.open_table(JOBS)?;
    let mut s = txn.open_table(SEQ)?;
    for (id, seq) in jobs {
        t.remove(id.as_str())?;
        s.remove(*seq)?;
    }
    Ok(())
}

/// Reads one job.
pub fn get(txn: &ReadTransaction, id: &str) -> Result<Option<Job>, StoreError> {
    let Some(t) = open_read(txn, JOBS)? else { return Ok(None) };
    match t.get(id)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Every stored job, in id order (used once at start to rebuild the in-memory index).
pub fn all(txn: &ReadTransaction) -> Result<Vec<Job>, StoreError> {
    let Some(t) = open_read(txn, JOBS)? else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(t.len_hint());
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}

/// Jobs by descending sequence, strictly below `before` (all when `None`), until `visit`
/// returns false or `max_scan` rows were visited. Returns the last sequence visited.
pub fn scan_newest(
    txn: &ReadTransaction,
    before: Option<u64>,
    max_scan: usize,
    mut visit: impl FnMut(Job) -> bool,
) -> Result<Option<u64>, StoreError> {
    let (Some(s), Some(t)) = (open_read(txn, SEQ)?, open_read(txn, JOBS)?) else { return Ok(None) };
    let range = s.range(..before.unwrap_or(u64::MAX))?;
    let mut last = None;
    for (n, row) in range.rev().enumerate() {
        if n >= max_scan {
            break;
        }
        let (seq, id) = row?;
        last = Some(seq.value());
        if let Some(v) = t.get(id.value())? {
            if !visit(codec::decode(v.value())?) {
                break;
            }
        }
    }
    Ok(last)
}

/// Every queue's stored settings.
pub fn queues(txn: &ReadTransaction) -> Result<Vec<(String, QueueMeta)>, StoreError> {
    let Some(t) = open_read(txn, QUEUES)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        out.push((k.value().to_string(), codec::decode(v.value())?));
    }
    Ok(out)
}

/// Stores one queue's settings.
pub fn put_queue(txn: &WriteTransaction, name: &str, meta: &[u8]) -> Result<(), StoreError> {
    txn.open_table(QUEUES)?.insert(name, meta)?;
    Ok(())
}

/// Every stored schedule.
pub fn schedules(txn: &ReadTransaction) -> Result<Vec<Schedule>, StoreError> {
    let Some(t) = open_read(txn, SCHEDULES)? else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for row in t.iter()? {
        let (_, v) = row?;
        out.push(codec::decode(v.value())?);
    }
    Ok(out)
}

/// Stores one schedule (encoded).
pub fn put_schedule(txn: &WriteTransaction, name: &str, bytes: &[u8]) -> Result<(), StoreError> {
    txn.open_table(SCHEDULES)?.insert(name, bytes)?;
    Ok(())
}

/// Deletes one schedule.
pub fn delete_schedule(txn: &WriteTransaction, name: &str) -> Result<(), StoreError> {
    txn.open_table(SCHEDULES)?.remove(name)?;
    Ok(())
}

/// A small extension so `all` can pre-size its vector.
trait LenHint {
    fn len_hint(&self) -> usize;
}

impl<T: redb::ReadableTableMetadata> LenHint for T {
    fn len_hint(&self) -> usize {
        self.len().map(|n| n as usize).unwrap_or(0).min(1 << 20)
    }
}
