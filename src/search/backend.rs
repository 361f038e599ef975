//! The search-store seam: where documents, their chunks, the keyword index and the chunk
//! vectors live, so that a cluster backend (PostgreSQL + pgvector, Qdrant) can hold all of
//! it and every node answers a query the same way.
//!
//! The service above it keeps what does not depend on where the data lives: chunking,
//! embedding (with its cache), fusion, hooks, the batch job, readiness, metrics and
//! events. The embedded implementation ([`super::embedded`]) is redb (the source of truth)
//! plus tantivy, an HNSW graph and an in-memory document map derived from it.
//!
//! Invariants every implementation keeps (checked by `search::conformance::run`):
//! - **Read after write.** A write is acknowledged only once it is durable and visible to
//!   both retrievers and to [`SearchStore::get`] (on every node, for a cluster backend).
//! - **Replace, never merge.** An upsert replaces the document's content, metadata,
//!   chunks and vectors: text or vectors of its previous chunks never match again.
//! - **Numbers.** The store gives each document a [`DocNum`] on its first upsert, keeps
//!   it across re-upserts and never gives it to another document; results are fused and
//!   deduplicated by it, and equal scores are ordered by it.
//! - **Filters inside retrieval.** Both retrievers return the best `k` chunks *among the
//!   documents in [`Scope`]*, with exactly the semantics of [`Filter::matches`] on the
//!   document's metadata; they never take `k` first and filter afterwards.
//! - **Order.** Hits are best first; equal scores are ordered by document number, then
//!   chunk index. Keyword scores are BM25-like (higher is better; their values differ
//!   between backends, their order must not); vector scores are the dot product of the
//!   query with the chunk's unit vector (cosine similarity, -1..=1).
//! - **Durability.** Everything acknowledged survives closing and re-opening the storage.
//! - Backends never read a clock: times (`indexed_at`) come from the caller.
//! - An unreachable backend answers [`SearchError::Unreachable`] (HTTP 503).

use super::error::SearchError;
use super::filter::Filter;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// A document's number in its store: assigned on first upsert, stable across re-upserts,
/// never reused for another document.
pub type DocNum = u32;

/// What a store keeps about a document besides its id and vectors. The embedded store
/// encodes it as is with the versioned codec, so its fields are part of its file format.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocRecord {
    /// The document's number; assigned by the store (ignored by upserts).
    pub doc: DocNum,
    /// The full content.
    pub content: String,
    /// Metadata object, matched by filters.
    #[serde(with = "crate::store::codec::json_map")]
    pub metadata: Map<String, Value>,
    /// Byte ranges of the chunks in `content`, in order.
    pub chunks: Vec<(u32, u32)>,
    /// Content hash of each chunk (the embedding-cache key, with the model id).
    pub hashes: Vec<[u8; 16]>,
    /// Model id the vectors were computed with; empty when the document has no vectors.
    pub model: String,
    /// When it was indexed (unix ms), as given by the caller.
    pub indexed_at: i64,
}

impl DocRecord {
    /// The text of chunk `i` (empty when out of range).
    pub fn chunk_text(&self, i: usize) -> &str {
        self.chunks.get(i).map(|&(s, e)| self.content.get(s as usize..e as usize).unwrap_or("")).unwrap_or("")
    }
}

/// A document with its chunks and their vectors, as written to and read from a store.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredDoc {
    /// The caller's id.
    pub id: String,
    /// Content, metadata and chunks.
    pub record: DocRecord,
    /// One unit vector per chunk (all of one dimension), or none: a document without
    /// vectors is found by keyword retrieval only.
    pub vectors: Option<Vec<Vec<f32>>>,
}

/// Vectors computed later for a stored document (the backfill after a model appears).
#[derive(Debug, Clone, PartialEq)]
pub struct VectorUpdate {
    /// The document.
    pub id: String,
    /// Chunk hashes the vectors were computed from: the update applies only if the stored
    /// document still has exactly these (it was not re-indexed meanwhile).
    pub hashes: Vec<[u8; 16]>,
    /// Model id of the vectors.
    pub model: String,
    /// One vector per chunk.
    pub vectors: Vec<Vec<f32>>,
}

/// One chunk found by a retriever.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkHit {
    /// The document's number.
    pub doc: DocNum,
    /// The document's id.
    pub id: Arc<str>,
    /// The chunk's index within the document.
    pub chunk: u32,
    /// Keyword: BM25-like, higher is better. Vector: cosine similarity.
    pub score: f32,
}

/// The documents a query may return: a metadata filter, optionally minus one document.
/// Cheap to clone; the retrievers of one query share one, so a backend can evaluate it
/// once per query (see [`Scope::matching`]).
#[derive(Clone, Default)]
pub struct Scope(Arc<ScopeInner>);

#[derive(Default)]
struct ScopeInner {
    filter: Filter,
    except: Option<String>,
    matching: OnceLock<Vec<u64>>,
}

impl Scope {
    /// Documents matching `filter`, except the one with id `except` (if given).
    pub fn new(filter: Filter, except: Option<String>) -> Scope {
        Scope(Arc::new(ScopeInner { filter, except, matching: OnceLock::new() }))
    }

    /// The metadata filter.
    pub fn filter(&self) -> &Filter {
        &self.0.filter
    }

    /// The id of the document left out, if any.
    pub fn except(&self) -> Option<&str> {
        self.0.except.as_deref()
    }

    /// The numbers of the documents matching the filter as a bitset (bit `n` of word
    /// `n / 64` set for document `n`), computed by `compute` on first use and then shared
    /// by every retriever of the query. For backends that evaluate filters against an
    /// in-memory list of documents (the embedded one); others never call it.
    pub fn matching(&self, compute: impl FnOnce() -> Vec<u64>) -> &[u64] {
        self.0.matching.get_or_init(compute)
    }
}

/// Sizes and index facts for stats and readiness.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Documents held.
    pub documents: usize,
    /// Chunks held (keyword side).
    pub chunks: usize,
    /// Chunk vectors held (vector side).
    pub vectors: usize,
    /// Vector dimension (0 before the first vector).
    pub dimension: usize,
    /// Points in an approximate-search graph (0: none, or not this backend's concern).
    pub graph_points: usize,
    /// Deleted points awaiting a graph rebuild (0 where the backend has no such notion).
    pub tombstones: usize,
}

/// Whether a store can serve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreState {
    /// [`SearchStore::open`] has not finished.
    Opening,
    /// Serving.
    Ready,
    /// Cannot serve; the reason is shown by readiness as is.
    Unavailable(String),
}

/// A store's state and sizes, as readiness reports them.
#[derive(Debug, Clone, PartialEq)]
pub struct StoreStatus {
    /// Whether it can serve.
    pub state: StoreState,
    /// Sizes: exact after every write acknowledged by this handle; a cluster backend
    /// refreshes them from the shared storage at least on every [`SearchStore::maintain`].
    pub stats: StoreStats,
}

/// Where search data lives. Every method but [`SearchStore::open`],
/// [`SearchStore::status`] and [`SearchStore::matching_ranges`] may be called only after
/// `open` succeeded. One call per query or per batch: never per chunk or per vector.
#[async_trait]
pub trait SearchStore: Send + Sync + 'static {
    /// Makes the store ready to serve (opens or rebuilds what it derives from its
    /// storage). Called once, at start; an error leaves it [`StoreState::Unavailable`].
    async fn open(&self) -> Result<(), SearchError>;

    /// Writes `docs` (ids unique within the batch), each replacing any stored document of
    /// the same id with its chunks and vectors, atomically for the batch. Returns each
    /// document's number, in order.
    async fn upsert(&self, docs: Vec<StoredDoc>) -> Result<Vec<DocNum>, SearchError>;

    /// Stores vectors computed later for existing documents whose chunk hashes still
    /// equal the update's (compare-and-set: a document re-indexed meanwhile keeps its newer
    /// state). Returns, per update, whether it applied.
    async fn put_vectors(&self, updates: Vec<VectorUpdate>) -> Result<Vec<bool>, SearchError>;

    /// Removes the documents among `ids` that exist; returns their ids.
    async fn delete(&self, ids: &[String]) -> Result<Vec<String>, SearchError>;

    /// Removes every document whose metadata matches `filter` (an empty filter matches
    /// every document); returns their ids.
    async fn delete_matching(&self, filter: &Filter) -> Result<Vec<String>, SearchError>;

    /// The `k` best chunks for the natural-language `query` among documents in `scope`:
    /// a chunk matches when it shares an analysed term with the query.
    async fn keyword(&self, query: &str, scope: &Scope, k: usize) -> Result<Vec<ChunkHit>, SearchError>;

    /// The `k` chunks whose vectors are most similar to the unit vector `query` among
    /// documents in `scope` (the approximation a graph allows; exact below its size).
    async fn vector(&self, query: &[f32], scope: &Scope, k: usize) -> Result<Vec<ChunkHit>, SearchError>;

    /// The documents with these ids, in order (`None` for a missing one), with their
    /// vectors when `vectors` is true.
    async fn get(&self, ids: &[String], vectors: bool) -> Result<Vec<Option<StoredDoc>>, SearchError>;

    /// Up to `limit` documents that have chunks but no vectors of `model`, with ids after
    /// `after`, in id order (without their vectors).
    async fn missing_vectors(&self, model: &str, after: Option<&str>, limit: usize) -> Result<Vec<StoredDoc>, SearchError>;

    /// Byte ranges in `text` of the words that match a word of `query` under the keyword
    /// retriever's analysis (for highlighting snippets). Never waits on I/O.
    fn matching_ranges(&self, query: &str, text: &str) -> Vec<Range<usize>>;

    /// State and sizes, for readiness and stats. Never waits on I/O.
    fn status(&self) -> StoreStatus;

    /// Background housekeeping, called after writes and every few seconds (the embedded
    /// store rebuilds its graph when deletes have worn it).
    async fn maintain(&self);
}
