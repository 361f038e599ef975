//! The service's life: loading the model and opening the store in the background, the
//! backfill of vectors for documents stored without them, the store's maintenance loop,
//! and readiness.

use super::SearchService;
use super::backend::{StoreState, VectorUpdate};
use super::error::SearchError;
use super::service::ModelState;
use crate::runtime::{Background, Readiness};
use std::path::Path;
use std::time::Duration;

/// Documents read per page while looking for ones to backfill.
const BACKFILL_PAGE: usize = 256;

impl SearchService {
    /// Whether the module can serve its requests: unavailable while the store opens or
    /// when it cannot serve; degraded (keyword search only) while the embedding model
    /// loads or when it is missing.
    pub fn readiness(&self) -> Readiness {
        let status = self.store().status();
        let details = serde_json::to_value(self.stats_of(&status)).unwrap_or(serde_json::Value::Null);
        if !*self.inner.loaded.borrow() {
            return Readiness::unavailable("search index is loading").with_details(details);
        }
        match status.state {
            StoreState::Ready => {}
            StoreState::Opening => return Readiness::unavailable("search index is loading").with_details(details),
            StoreState::Unavailable(why) => return Readiness::unavailable(why).with_details(details),
        }
        match &*self.inner.model.read() {
            ModelState::Ready(_) => Readiness::ready().with_details(details),
            ModelState::Missing(why) => {
                Readiness::degraded(format!("semantic search unavailable: {why}; keyword search works")).with_details(details)
            }
            ModelState::Loading => Readiness::degraded("embedding model is loading; keyword search works").with_details(details),
        }
    }

    /// Starts loading (the model, then the store), the backfill and the store's background
    /// maintenance on `bg`. Requests wait for the load to finish.
    pub fn start(&self, bg: &Background) {
        let me = self.clone();
        let shutdown = bg.shutdown.clone();
        let maintenance = bg.clone();
        bg.spawn(async move {
            let loader = me.clone();
            if let Err(e) = tokio::task::spawn_blocking(move || loader.load_model()).await {
                tracing::error!(error = %e, "search: loading the model failed");
            }
            if let Err(e) = me.store().open().await {
                tracing::error!(error = %e, "search: opening the store failed");
            }
            me.inner.loaded.send_replace(true);
            me.backfill().await;
            me.inner.maintenance_due.notify_one();
            // Supervised: a panic while maintaining the indexes is logged, counted and the
            // loop goes on.
            maintenance.supervise("search.maintenance", move || {
                let (me, shutdown) = (me.clone(), shutdown.clone());
                async move {
                    loop {
                        tokio::select! {
                            _ = shutdown.cancelled() => break,
                            _ = me.inner.maintenance_due.notified() => {}
                            _ = tokio::time::sleep(Duration::from_secs(10)) => {}
                        }
                        me.store().maintain().await;
                    }
                }
            });
        });
    }

    /// Blocking: loads the configured model unless an embedder was set meanwhile.
    fn load_model(&self) {
        let inner = &self.inner;
        let cfg = &inner.config.embeddings;
        if !matches!(*inner.model.read(), ModelState::Loading) {
            return;
        }
        let loaded: Result<std::sync::Arc<dyn super::embed::Embedder>, SearchError> = match cfg.provider.as_str() {
            "openai" => super::openai::OpenAiEmbedder::new(super::openai::OpenAiSettings {
                base_url: cfg.base_url.clone(),
                model: cfg.model.clone(),
                dimension: cfg.dimension,
                batch_size: cfg.batch_size,
                api_key: cfg.api_key.clone(),
                timeout: std::time::Duration::from_millis(cfg.timeout_ms.max(1)),
            })
            // On the blocking pool here: the probe's request runs on the caller's runtime.
            .and_then(|e| tokio::runtime::Handle::current().block_on(e.probe()).map(|()| e))
            .map(|e| std::sync::Arc::new(e) as _),
            _ => super::embed::load_shared(Path::new(&cfg.model_dir), cfg.max_seq_length, cfg.batch_size, &cfg.model).map(|e| e as _),
        };
        let state = {
            match loaded {
                Ok(e) => ModelState::Ready(e),
                Err(e) => {
                    let why = match e {
                        SearchError::Unavailable(w) => w,
                        other => other.to_string(),
                    };
                    tracing::warn!(reason = %why, "search: semantic search unavailable; keyword search works");
                    ModelState::Missing(why)
                }
            }
        };
        let mut m = inner.model.write();
        if matches!(*m, ModelState::Loading) {
            *m = state;
        }
    }

    /// Embeds documents stored without vectors of the current model (indexed while the
    /// model was missing, or under another model), so semantic search covers every
    /// document. A document re-indexed meanwhile keeps its newer state (the store applies
    /// the vectors only if the chunks are unchanged).
    async fn backfill(&self) {
        let Ok(embedder) = self.embedder_handle() else { return };
        let model = embedder.model_id().to_string();
        let per_batch = self.inner.config.embeddings.batch_size.max(1);
        let mut after: Option<String> = None;
        loop {
            let page = match self.store().missing_vectors(&model, after.as_deref(), BACKFILL_PAGE).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "search: cannot list documents to embed");
                    return;
                }
            };
            let Some(last) = page.last() else { return };
            if after.is_none() {
                tracing::info!("search: embedding documents stored without vectors");
            }
            after = Some(last.id.clone());
            // Embedding batches of about `per_batch` chunks; a document is never split.
            let mut at = 0;
            while at < page.len() {
                let mut end = at;
                let mut texts = Vec::new();
                while end < page.len() && (end == at || texts.len() + page[end].record.chunks.len() <= per_batch) {
                    let r = &page[end].record;
                    texts.extend((0..r.chunks.len()).map(|i| r.chunk_text(i).to_string()));
                    end += 1;
                }
                let vectors = match embedder.embed(&texts).await {
                    Ok(v) if v.len() == texts.len() => v,
                    Ok(v) => {
                        tracing::error!(vectors = v.len(), texts = texts.len(), "search: backfill embedding returned a wrong count");
                        return;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "search: backfill embedding failed");
                        return;
                    }
                };
                let mut it = vectors.into_iter();
                let updates = page[at..end]
                    .iter()
                    .map(|d| VectorUpdate {
                        id: d.id.clone(),
                        hashes: d.record.hashes.clone(),
                        model: model.clone(),
                        vectors: it.by_ref().take(d.record.chunks.len()).collect(),
                    })
                    .collect();
                if let Err(e) = self.store().put_vectors(updates).await {
                    tracing::error!(error = %e, "search: storing backfilled vectors failed");
                    return;
                }
                at = end;
            }
        }
    }
}
