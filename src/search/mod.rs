//! Hybrid search (seed "6. Search Module"), fully offline.
//!
//! Documents are chunked ([`chunk`]), each chunk embedded by an [`embed::Embedder`] (a
//! local ONNX model by default) and indexed twice: BM25 in tantivy ([`keyword`]) and as
//! a vector in an HNSW graph ([`vector`]). A query runs one or both retrievers with the
//! metadata [`filter`] applied inside each, fuses the rankings ([`fusion`]), and returns
//! documents scored by their best chunk.
//!
//! Invariants:
//! - redb ([`store`]) is the source of truth for documents and their vectors; the
//!   tantivy index and the HNSW graph are derived and rebuilt at start when missing or
//!   stale. A document is acknowledged only once it is durable and searchable.
//! - A missing model or ONNX Runtime never stops hearth: keyword search works, semantic
//!   and hybrid requests fail with `Unavailable` naming the missing file.
//! - Index writes are serialised (store write, then in-memory and keyword updates in the
//!   same order), so the derived indexes always converge on the store's state.

pub mod batch;
pub mod chunk;
pub mod config;
pub mod distance;
pub mod embed;
pub mod error;
pub mod eval;
pub mod filter;
pub mod fusion;
pub mod hooks;
pub mod keyword;
pub mod model;
mod service;
pub mod store;
pub mod vector;

pub use embed::{Embedder, FastEmbedder};
pub use error::SearchError;
pub use hooks::{QueryExpander, Reranker, SearchHooks};
pub use model::{Document, Fusion, Mode, Scores, SearchQuery, SearchRequest, SearchResult};
pub use service::{SearchService, SearchStats};
