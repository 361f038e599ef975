//! The export-record seam: where export records and their pending work live.
//!
//! An export record ([`ExportJob`]) is what `GET /api/exports/{id}` shows; its work
//! ([`Work`]: the sources to render, the webhook secret) is what the job handler reads and
//! is never shown. The service owns every rule of the life cycle; a store keeps the data.
//!
//! **Updates are compare-and-set on the whole record** ([`ExportRecordStore::swap`]): the
//! service reads a record, computes the next one and asks the store to replace it only if
//! it is still the one read, retrying otherwise ([`update`]). Every backend can do that
//! atomically (redb in one write transaction, Redis in one Lua script or WATCH/MULTI,
//! SQL with `UPDATE .. WHERE`), whereas an "update by a Rust closure" could only run
//! inside an embedded store. The whole record is the expected value (no version field), so
//! the API's record shape stays as it is and no update can be lost.
//!
//! Invariants every implementation keeps (checked by [`super::conformance::records`]):
//! - a write is acknowledged only once it is durable;
//! - an insert stores the record and its work together (both or neither), and refuses an
//!   id that exists with [`ExportError::Conflict`];
//! - a swap applies only when the stored record equals the expected one, and a swap to a
//!   final status ([`ExportStatus::is_final`]) drops the work in the same atomic step;
//! - lists are in descending id order (ids are UUIDv7, so newest first), filtered before
//!   the limit is applied;
//! - a store that cannot reach its backend returns [`ExportError::Unavailable`] (503).

use super::error::ExportError;
use super::record::{ExportJob, ExportStatus, Work};
use async_trait::async_trait;

/// Filters of a listing ([`crate::export::ExportService::list`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListFilter {
    /// Only this source type.
    pub source_type: Option<String>,
    /// Only this status.
    pub status: Option<ExportStatus>,
    /// Only exports created by this user.
    pub user_id: Option<String>,
    /// At most this many (newest first). The service turns 0 into its default; a store
    /// returns at most `limit`.
    pub limit: usize,
}

impl ListFilter {
    /// Whether `job` passes the filters (not the limit).
    pub fn matches(&self, job: &ExportJob) -> bool {
        self.source_type.as_deref().is_none_or(|t| job.source_type == t)
            && self.status.is_none_or(|s| job.status == s)
            && self.user_id.as_deref().is_none_or(|u| job.user_id.as_deref() == Some(u))
    }
}

/// The outcome of [`ExportRecordStore::swap`].
#[derive(Debug, Clone, PartialEq)]
pub enum Swap {
    /// The stored record was the expected one and is now the new one.
    Applied,
    /// The stored record was not the expected one; nothing was written. Carries the
    /// stored record (`None`: there is no record with that id).
    Stale(Option<Box<ExportJob>>),
}

/// Durable storage of export records and their pending work.
///
/// Called a few times per export, so it is an `async_trait` object:
/// `Arc<dyn ExportRecordStore>`.
#[async_trait]
pub trait ExportRecordStore: Send + Sync + 'static {
    /// Stores a new record with its work, atomically and durably.
    /// [`ExportError::Conflict`] (and nothing written) when the id exists.
    async fn insert(&self, record: &ExportJob, work: &Work) -> Result<(), ExportError>;

    /// The record with this id, if any.
    async fn get(&self, id: &str) -> Result<Option<ExportJob>, ExportError>;

    /// The pending work of an export; `None` once the export is final or deleted.
    async fn work(&self, id: &str) -> Result<Option<Work>, ExportError>;

    /// The records passing `filter`, in descending id order (newest first), at most
    /// `filter.limit`.
    async fn list(&self, filter: &ListFilter) -> Result<Vec<ExportJob>, ExportError>;

    /// Replaces the record `expected.id` by `next` if it still equals `expected`
    /// (compare-and-set); when `next` is final, its work is removed in the same step.
    /// `next.id` equals `expected.id`.
    async fn swap(&self, expected: &ExportJob, next: &ExportJob) -> Result<Swap, ExportError>;

    /// Removes a record and its work; false when there was none.
    async fn delete(&self, id: &str) -> Result<bool, ExportError>;
}

/// Compare-and-set rounds before [`update`] gives up (only a store that never applies a
/// swap, or an export changed non-stop by other writers, gets there).
const MAX_ROUNDS: usize = 1000;

/// Applies `f` to the stored record and stores the result, atomically with respect to
/// other updates: read, compute, [`ExportRecordStore::swap`], and again from the newer
/// record when another writer came first (so `f` may run more than once and must only
/// compute). Returns the record as stored afterwards (unchanged when `f` returns `None`),
/// or `None` when the export does not exist.
pub async fn update(
    store: &dyn ExportRecordStore,
    id: &str,
    f: impl Fn(ExportJob) -> Option<ExportJob>,
) -> Result<Option<ExportJob>, ExportError> {
    let Some(mut current) = store.get(id).await? else { return Ok(None) };
    for _ in 0..MAX_ROUNDS {
        let Some(next) = f(current.clone()) else { return Ok(Some(current)) };
        match store.swap(&current, &next).await? {
            Swap::Applied => return Ok(Some(next)),
            Swap::Stale(Some(newer)) => current = *newer,
            Swap::Stale(None) => return Ok(None),
        }
    }
    Err(ExportError::Conflict(format!("export {id} kept changing; update abandoned after {MAX_ROUNDS} attempts")))
}
