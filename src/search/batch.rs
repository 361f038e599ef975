//! Large index batches run as jobs (`search.index_batch`) with progress.

use super::SearchService;
use super::error::SearchError;
use super::model::Document;
use crate::jobs::{EnqueueRequest, JobFailure};
use std::sync::Arc;

/// Name of the batch-indexing job.
pub const JOB_NAME: &str = "search.index_batch";

impl SearchService {
    /// Validates a batch (field names `documents[i].…`) without indexing it.
    pub fn validate_batch(&self, docs: &[Document]) -> Result<(), SearchError> {
        let cfg = self.config();
        if docs.is_empty() {
            return Err(SearchError::invalid("documents", "must not be empty"));
        }
        if docs.len() > cfg.max_batch_docs {
            return Err(SearchError::invalid("documents", format!("at most {} documents per batch", cfg.max_batch_docs)));
        }
        for (i, d) in docs.iter().enumerate() {
            d.validate(&format!("documents[{i}]."), cfg)?;
        }
        Ok(())
    }

    /// Queues a validated batch as a job; returns the job id.
    pub async fn enqueue_batch(&self, docs: Vec<Document>) -> Result<String, SearchError> {
        self.validate_batch(&docs)?;
        let payload = serde_json::json!({ "documents": docs });
        let job = self.jobs().enqueue(EnqueueRequest::new(JOB_NAME, payload)).await.map_err(|e| SearchError::Index(e.to_string()))?;
        Ok(job.job_id)
    }

    /// Registers the batch-indexing job handler (called from `new`).
    pub(super) fn register_job(&self) {
        // A weak handle: the queue must not keep the service (and the store) alive.
        let weak = self.downgrade();
        self.jobs().handler(JOB_NAME, move |ctx, payload| {
            let me = weak.upgrade();
            async move {
                let Some(me) = me else { return Err(JobFailure::retry("search service is shutting down")) };
                let docs: Vec<Document> = serde_json::from_value(payload.get("documents").cloned().unwrap_or_default())
                    .map_err(|e| JobFailure { message: format!("bad payload: {e}"), retry: false })?;
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<f32>();
                let progress_ctx = ctx.clone();
                let forward = tokio::spawn(async move {
                    while let Some(p) = rx.recv().await {
                        progress_ctx.progress((p as f64 * 90.0).min(90.0), Some("embedding")).await;
                    }
                });
                let cb: Arc<dyn Fn(f32) + Send + Sync> = Arc::new(move |p| {
                    let _ = tx.send(p);
                });
                let result = me.index_batch(docs, Some(cb)).await;
                let _ = forward.await;
                match result {
                    Ok(n) => {
                        ctx.progress(100.0, Some("indexed")).await;
                        Ok(serde_json::json!({ "indexed": n }))
                    }
                    Err(e @ SearchError::Invalid { .. }) => Err(JobFailure { message: e.to_string(), retry: false }),
                    Err(e) => Err(JobFailure { message: e.to_string(), retry: true }),
                }
            }
        });
    }
}
