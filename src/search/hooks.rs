//! Extension points (seed "Plugin Hooks" for search, "Custom Embeddings"): hooks called on
//! indexing and searching, a reranker and a query expander. All run on blocking threads
//! or briefly on the executor; keep them fast or hand work off.

use super::model::{Document, SearchQuery, SearchResult};

/// Observers of indexing and searching (`on_index`, `on_search`, `on_result`).
pub trait SearchHooks: Send + Sync {
    /// A document was indexed and is searchable.
    fn on_index(&self, _doc: &Document) {}
    /// A validated query is about to run.
    fn on_search(&self, _query: &SearchQuery) {}
    /// Results are about to be returned; the hook may reorder, drop or annotate them.
    fn on_result(&self, _query: &SearchQuery, _results: &mut Vec<SearchResult>) {}
}

/// Reorders fused results (e.g. a cross-encoder). Used when `search.enable_reranking`.
pub trait Reranker: Send + Sync {
    /// Returns `results` in the new order (may drop some); runs on a blocking thread.
    fn rerank(&self, query: &str, results: Vec<SearchResult>) -> Vec<SearchResult>;
}

/// Rewrites a query before retrieval (synonyms, spelling, ...).
pub trait QueryExpander: Send + Sync {
    /// The query to run instead of `query`.
    fn expand(&self, query: &str) -> String;
}
