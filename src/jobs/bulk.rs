//! Bulk operations on one queue, for operators: retry every dead job, purge completed,
//! dead or cancelled jobs. Each call does a bounded amount of work ([`MAX_BULK`] jobs) so
//! that one request stays short; the answer says whether more is left, and the caller
//! repeats while it is.

use super::JobQueue;
use super::broker::{JobBroker, ListFilter};
use super::error::JobError;
use super::model::JobStatus;
use super::validate::check_queue;
use futures::StreamExt;

/// Most jobs one bulk call acts on.
pub const MAX_BULK: usize = 1000;

/// Retries run concurrently (so that the embedded broker commits them in shared writes).
const RETRY_CONCURRENCY: usize = 64;

/// What a bulk call did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BulkOutcome {
    /// Jobs retried or deleted.
    pub count: usize,
    /// Jobs found but changed by someone else meanwhile (left as they are).
    pub skipped: usize,
    /// More jobs may match: call again.
    pub more: bool,
}

impl JobQueue {
    /// Revives up to [`MAX_BULK`] dead jobs of `queue` (attempts reset, ready now), newest
    /// first, each as [`JobQueue::retry`] does. A job that changed meanwhile is skipped.
    /// Jobs retried before a storage error stay retried.
    pub async fn retry_dead(&self, queue: &str) -> Result<BulkOutcome, JobError> {
        check_queue("queue", queue)?;
        let mut ids = Vec::new();
        let mut cursor = None;
        let more = loop {
            let filter = ListFilter {
                status: Some(JobStatus::Dead),
                queue: Some(queue.to_string()),
                name: None,
                limit: MAX_BULK - ids.len(),
                cursor: cursor.take(),
            };
            let page = self.shared.broker.list(filter).await?;
            ids.extend(page.jobs.into_iter().map(|j| j.id));
            match page.next_cursor {
                Some(c) if ids.len() < MAX_BULK => cursor = Some(c),
                Some(_) => break true,
                None => break false,
            }
        };
        let mut results = futures::stream::iter(ids).map(|id| async move { self.retry(&id).await }).buffer_unordered(RETRY_CONCURRENCY);
        let mut out = BulkOutcome { more, ..Default::default() };
        let mut failure = None;
        while let Some(r) = results.next().await {
            match r {
                Ok(_) => out.count += 1,
                Err(JobError::Conflict(_) | JobError::NotFound { .. }) => out.skipped += 1,
                Err(e) => failure = Some(e),
            }
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(out),
        }
    }

    /// Deletes up to [`MAX_BULK`] jobs of `queue` in `status` (completed, dead or
    /// cancelled), in one durable write.
    pub async fn purge(&self, queue: &str, status: JobStatus) -> Result<BulkOutcome, JobError> {
        check_queue("queue", queue)?;
        if !status.is_final() {
            return Err(JobError::invalid("status", "must be completed, dead or cancelled"));
        }
        let count = self.shared.broker.delete_jobs(queue, status, MAX_BULK).await?;
        Ok(BulkOutcome { count, skipped: 0, more: count == MAX_BULK })
    }
}
