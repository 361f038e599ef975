//! Searching: the retrievers run in the store (in hybrid mode the keyword retrieval runs
//! beside the query's embedding), their rankings are fused, and the picked documents are
//! materialised with their best chunk as the snippet.

use super::SearchService;
use super::backend::{ChunkHit, DocNum, Scope};
use super::embed::normalize;
use super::error::SearchError;
use super::filter::Filter;
use super::fusion::{Fused, fuse};
use super::model::{Mode, Scores, SearchQuery, SearchRequest, SearchResult};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// Each picked document's id and best chunk, by number.
type BestChunks = HashMap<DocNum, (Arc<str>, u32)>;

impl SearchService {
    /// Runs a search request.
    pub async fn search(&self, req: &SearchRequest) -> Result<Vec<SearchResult>, SearchError> {
        let q = req.validate(&self.inner.config)?;
        self.run_query(q).await
    }

    /// Runs a validated query.
    pub async fn run_query(&self, mut q: SearchQuery) -> Result<Vec<SearchResult>, SearchError> {
        self.wait_loaded().await;
        let started = std::time::Instant::now();
        let (hooks, expander, reranker) = {
            let x = self.inner.ext.read();
            (x.hooks.clone(), x.expander.clone(), x.reranker.clone())
        };
        if let Some(x) = &expander {
            q.query = x.expand(&q.query);
        }
        for h in &hooks {
            h.on_search(&q);
        }
        // Without the model, a query that did not ask for semantic search by name is
        // answered by keyword search, each result saying why (`degraded`).
        let (embedder, degraded) = match q.mode {
            Mode::Keyword => (None, None),
            _ => match self.embedder_handle() {
                Ok(e) => (Some(e), None),
                Err(SearchError::Unavailable(why)) if q.keyword_fallback => {
                    q.mode = Mode::Keyword;
                    (None, Some(format!("semantic search unavailable ({why}); keyword results")))
                }
                Err(e) => return Err(e),
            },
        };
        let (store, mode) = (self.store(), q.mode);
        // One scope for both retrievers: a store evaluates the filter once per query.
        let scope = Scope::new(q.filter.clone(), None);
        let k = self.inner.config.search.candidates.max(q.limit);
        // The retrievers run at once: in hybrid mode the keyword retrieval overlaps the
        // query's embedding (the longest step) instead of adding to it.
        let keyword = async {
            if mode == Mode::Semantic {
                return Ok(Vec::new());
            }
            Ok(best_per_doc(store.keyword(&q.query, &scope, k).await?))
        };
        let semantic = async {
            let Some(e) = embedder else { return Ok(Vec::new()) };
            let qv = e.embed_query(&q.query).await?;
            Ok(best_per_doc(store.vector(&qv, &scope, k).await?))
        };
        let (keyword_hits, semantic_hits): (Result<_, SearchError>, Result<_, SearchError>) = tokio::join!(keyword, semantic);
        let (keyword_hits, semantic_hits) = (keyword_hits?, semantic_hits?);
        let fused: Vec<Fused> = match mode {
            Mode::Keyword => {
                keyword_hits.iter().map(|h| Fused { doc: h.doc, score: h.score, keyword: Some(h.score), semantic: None }).collect()
            }
            Mode::Semantic => {
                semantic_hits.iter().map(|h| Fused { doc: h.doc, score: h.score, keyword: None, semantic: Some(h.score) }).collect()
            }
            Mode::Hybrid => {
                let kl: Vec<(u32, f32)> = keyword_hits.iter().map(|h| (h.doc, h.score)).collect();
                let sl: Vec<(u32, f32)> = semantic_hits.iter().map(|h| (h.doc, h.score)).collect();
                fuse(&kl, &sl, q.fusion)
            }
        };
        // The semantic side's chunk wins when both retrievers found the document.
        let best: BestChunks = keyword_hits.iter().chain(&semantic_hits).map(|h| (h.doc, (h.id.clone(), h.chunk))).collect();
        let picked: Vec<Fused> = fused.into_iter().filter(|f| q.threshold.is_none_or(|t| f.score >= t)).take(q.limit).collect();
        let mut results = self.materialise(&picked, &best, q.highlight.then_some(q.query.as_str())).await?;
        if let Some(why) = degraded {
            results.iter_mut().for_each(|r| r.degraded = Some(why.clone()));
        }
        if self.inner.config.search.enable_reranking
            && let Some(r) = reranker
        {
            let query = q.query.clone();
            results =
                tokio::task::spawn_blocking(move || r.rerank(&query, results)).await.map_err(|e| SearchError::Index(e.to_string()))?;
        }
        for h in &hooks {
            h.on_result(&q, &mut results);
        }
        let mode_label = match mode {
            Mode::Keyword => "keyword",
            Mode::Semantic => "semantic",
            Mode::Hybrid => "hybrid",
        };
        ::metrics::counter!("hearth_search_queries_total", "mode" => mode_label).increment(1);
        ::metrics::histogram!("hearth_search_query_seconds", "mode" => mode_label).record(started.elapsed().as_secs_f64());
        Ok(results)
    }

    /// Documents most similar to `id` (never `id` itself), by its mean chunk vector.
    pub async fn similar(&self, id: &str, limit: usize) -> Result<Vec<SearchResult>, SearchError> {
        self.wait_loaded().await;
        let doc = self.store().get(&[id.to_string()], true).await?.pop().flatten().ok_or_else(|| SearchError::NotFound(id.to_string()))?;
        let vs = doc.vectors.unwrap_or_default();
        if vs.is_empty() {
            self.embedder_handle()?;
            return Err(SearchError::Unavailable("this document has no vectors yet (indexed while the model was missing)".into()));
        }
        let mut mean = vec![0.0f32; vs[0].len()];
        for v in &vs {
            mean.iter_mut().zip(v).for_each(|(m, x)| *m += x);
        }
        let scope = Scope::new(Filter::default(), Some(id.to_string()));
        let k = self.inner.config.search.candidates.max(limit);
        let hits = best_per_doc(self.store().vector(&normalize(mean), &scope, k).await?);
        let fused: Vec<Fused> =
            hits.iter().take(limit).map(|h| Fused { doc: h.doc, score: h.score, keyword: None, semantic: Some(h.score) }).collect();
        let best: BestChunks = hits.iter().map(|h| (h.doc, (h.id.clone(), h.chunk))).collect();
        self.materialise(&fused, &best, None).await
    }

    /// Loads the picked documents and builds results with their best chunk, highlighted
    /// with the matches of `highlight` when given. A document deleted (or deleted and
    /// indexed again) since it was retrieved is left out.
    async fn materialise(&self, picked: &[Fused], best: &BestChunks, highlight: Option<&str>) -> Result<Vec<SearchResult>, SearchError> {
        let (chosen, ids): (Vec<(&Fused, u32)>, Vec<String>) =
            picked.iter().filter_map(|f| best.get(&f.doc).map(|(id, chunk)| ((f, *chunk), id.to_string()))).unzip();
        let docs = self.store().get(&ids, false).await?;
        let mut out = Vec::with_capacity(docs.len());
        for ((f, chunk), doc) in chosen.into_iter().zip(docs) {
            let Some(doc) = doc.filter(|d| d.record.doc == f.doc) else { continue };
            let text = doc.record.chunk_text(chunk as usize);
            let content = match highlight {
                Some(q) => highlight_ranges(text, &self.store().matching_ranges(q, text)),
                None => text.to_string(),
            };
            out.push(SearchResult {
                id: doc.id,
                score: f.score,
                content,
                metadata: doc.record.metadata,
                scores: Scores { keyword: f.keyword, semantic: f.semantic },
                degraded: None,
            });
        }
        Ok(out)
    }
}

/// Keeps each document's best chunk; the store returns hits best first.
fn best_per_doc(mut hits: Vec<ChunkHit>) -> Vec<ChunkHit> {
    let mut seen = HashSet::new();
    hits.retain(|h| seen.insert(h.doc));
    hits
}

/// Wraps each range of `text` in `<em>`…`</em>`.
fn highlight_ranges(text: &str, ranges: &[std::ops::Range<usize>]) -> String {
    let mut out = String::with_capacity(text.len() + ranges.len() * 9);
    let mut at = 0;
    for r in ranges {
        if r.start < at || r.end > text.len() {
            continue;
        }
        out.push_str(&text[at..r.start]);
        out.push_str("<em>");
        out.push_str(&text[r.clone()]);
        out.push_str("</em>");
        at = r.end;
    }
    out.push_str(&text[at..]);
    out
}
