//! Hybrid search (seed "6. Search Module"), fully offline.
//!
//! Documents are chunked ([`chunk`]), each chunk embedded by an [`embed::Embedder`] (a
//! local ONNX model by default) and written to a [`SearchStore`] ([`backend`]), which
//! indexes them twice: for keyword retrieval (BM25) and as vectors. A query runs one or
//! both retrievers in the store with the metadata [`filter`] applied inside each, fuses
//! the rankings ([`fusion`]), and returns documents scored by their best chunk.
//!
//! The service is split by concern: [`SearchService`]'s state in `service.rs`, its start,
//! backfill and readiness in `lifecycle.rs`, indexing in `ingest.rs`, searching in
//! `query.rs`. The default store is [`embedded`] (redb + tantivy + HNSW in the data
//! directory); `conformance` is the suite every store passes (tests and the `conformance`
//! feature).
//!
//! Invariants:
//! - The store acknowledges a document only once it is durable and searchable; the
//!   embedded store derives its tantivy index and HNSW graph from redb and rebuilds them
//!   at start when missing or stale.
//! - A missing model or ONNX Runtime never stops hearth: keyword search works, semantic
//!   and hybrid requests fail with `Unavailable` naming the missing file.

pub mod backend;
pub mod batch;
pub mod chunk;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod embed;
pub mod embedded;
pub mod error;
pub mod eval;
pub mod filter;
pub mod fusion;
pub mod hooks;
mod ingest;
mod lifecycle;
pub mod model;
pub mod openai;
mod query;
mod service;

pub use backend::{ChunkHit, DocNum, DocRecord, Scope, SearchStore, StoreState, StoreStats, StoreStatus, StoredDoc, VectorUpdate};
pub use embed::{Embedder, FastEmbedder};
pub use embedded::EmbeddedStore;
pub use error::SearchError;
pub use hooks::{QueryExpander, Reranker, SearchHooks};
pub use ingest::Progress;
pub use model::{Document, Fusion, MAX_ID_BYTES, Mode, Scores, SearchQuery, SearchRequest, SearchResult};
pub use service::{SearchService, SearchStats, StoreHandle};
