//! The embedded store's in-memory list of documents: number ↔ id and metadata, so that
//! filters are evaluated without reading redb and retriever hits are named.

use crate::search::backend::{ChunkHit, DocNum, Scope};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::Arc;

/// What the store keeps in memory per document.
pub(super) struct DocMeta {
    pub(super) id: Arc<str>,
    pub(super) metadata: Arc<Map<String, Value>>,
    chunks: u32,
}

/// Every live document, by id and by number.
#[derive(Default)]
pub(super) struct Docs {
    pub(super) by_id: HashMap<Arc<str>, DocNum>,
    pub(super) by_num: HashMap<DocNum, DocMeta>,
    pub(super) chunks: usize,
}

impl Docs {
    /// Adds or replaces a document.
    pub(super) fn put(&mut self, num: DocNum, id: &str, metadata: Map<String, Value>, chunks: u32) {
        self.remove(id);
        let id: Arc<str> = Arc::from(id);
        self.by_id.insert(id.clone(), num);
        self.chunks += chunks as usize;
        self.by_num.insert(num, DocMeta { id, metadata: Arc::new(metadata), chunks });
    }

    /// Removes a document; returns its number.
    pub(super) fn remove(&mut self, id: &str) -> Option<DocNum> {
        let num = self.by_id.remove(id)?;
        if let Some(m) = self.by_num.remove(&num) {
            self.chunks -= m.chunks as usize;
        }
        Some(num)
    }

    /// The set of documents whose metadata matches `scope`'s filter, as a bitset.
    fn matching_bits(&self, scope: &Scope) -> Vec<u64> {
        let top = self.by_num.keys().copied().max().unwrap_or(0) as usize;
        let mut bits = vec![0u64; top / 64 + 1];
        for (&num, m) in &self.by_num {
            if scope.filter().matches(&m.metadata) {
                bits[num as usize / 64] |= 1 << (num % 64);
            }
        }
        bits
    }

    /// Names `hits` (document number, chunk, score) with their ids, dropping documents
    /// deleted meanwhile, and orders them best first, ties by number then chunk.
    pub(super) fn name(&self, hits: impl Iterator<Item = (DocNum, u32, f32)>) -> Vec<ChunkHit> {
        let mut out: Vec<ChunkHit> =
            hits.filter_map(|(doc, chunk, score)| Some(ChunkHit { doc, id: self.by_num.get(&doc)?.id.clone(), chunk, score })).collect();
        out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)).then(a.chunk.cmp(&b.chunk)));
        out
    }
}

/// A predicate over document numbers for the retrievers.
pub(super) type Allow = Arc<dyn Fn(DocNum) -> bool + Send + Sync>;

/// The predicate for `scope`, or `None` when it admits every document.
///
/// The filter is evaluated once per query over every document, under one read lock, into
/// a bitset memoised in the scope; the retrievers then test bits (they call the predicate
/// for every matching keyword hit and every vector candidate, from two threads at once).
/// The set is computed on first use, on the retriever's blocking thread, so the async
/// executor never does it; the other retriever waits for it rather than repeating it.
pub(super) fn allow(docs: &Arc<parking_lot::RwLock<Docs>>, scope: &Scope) -> Option<Allow> {
    let except = scope.except().map(|id| docs.read().by_id.get(id).copied());
    if scope.filter().is_empty() {
        return match except {
            None => None,
            Some(None) => None,
            Some(Some(num)) => Some(Arc::new(move |d| d != num)),
        };
    }
    let except = except.flatten();
    let (docs, scope) = (docs.clone(), scope.clone());
    Some(Arc::new(move |d: DocNum| {
        let bits = scope.matching(|| docs.read().matching_bits(&scope));
        except != Some(d) && bits.get(d as usize / 64).is_some_and(|w| (w >> (d % 64)) & 1 == 1)
    }))
}
