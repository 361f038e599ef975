//! The storage backend trait (seed "Extensibility Points: Custom Storage").
//!
//! The tracker keeps running progress in memory and calls the backend for everything
//! durable. Implementations must honour the version rule: a stored record is never
//! replaced by one with a lower or equal `version`, and a coalesced snapshot never
//! recreates a record that was deleted. The embedded default is
//! [`super::store::RedbProgressStorage`].

use super::error::ProgressError;
use super::model::{ProgressRecord, ProgressStatus};
use chrono::{DateTime, Utc};

/// Which records [`ProgressStorage::list`] returns.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ListQuery {
    /// Only records in this state.
    pub status: Option<ProgressStatus>,
    /// Only ids strictly greater than this (the cursor: the last id of the previous page).
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// Durable storage of progress records.
#[async_trait::async_trait]
pub trait ProgressStorage: Send + Sync + 'static {
    /// Stores a new record durably; [`ProgressError::AlreadyExists`] when the id is taken.
    async fn insert(&self, rec: &ProgressRecord) -> Result<(), ProgressError>;

    /// Replaces the stored record durably by a newer version of it. [`ProgressError::NotFound`]
    /// when it no longer exists, [`ProgressError::Conflict`] when the stored version is not older.
    async fn save(&self, rec: &ProgressRecord) -> Result<(), ProgressError>;

    /// Persists intermediate snapshots in one batch. Each one is skipped when its record is
    /// gone or the stored version is not older. Returns how many were written.
    async fn save_coalesced(&self, recs: Vec<ProgressRecord>) -> Result<usize, ProgressError>;

    /// The stored record, if any.
    async fn load(&self, id: &str) -> Result<Option<ProgressRecord>, ProgressError>;

    /// Records ordered by id, filtered and paged by `query`.
    async fn list(&self, query: ListQuery) -> Result<Vec<ProgressRecord>, ProgressError>;

    /// Removes a record; false when there was none.
    async fn delete(&self, id: &str) -> Result<bool, ProgressError>;

    /// Removes up to `limit` records in terminal `status` that finished before
    /// `finished_before`, returning their ids.
    async fn remove_finished(
        &self,
        status: ProgressStatus,
        finished_before: DateTime<Utc>,
        limit: usize,
    ) -> Result<Vec<String>, ProgressError>;
}
