//! The embedded vector index: unit vectors in one flat array, an HNSW graph (hnsw_rs)
//! over them, tombstones for deletes and a background rebuild that compacts.
//!
//! Invariants:
//! - A *slot* holds one chunk's vector; a deleted or replaced chunk's slot becomes a
//!   tombstone (`None`) and is never returned by a search.
//! - Below `exact_below` live vectors, or before the first graph exists, searches scan
//!   exactly; otherwise the graph is walked (tombstones and filtered-out documents
//!   dropped from an over-asked unfiltered walk), falling back to an exact scan when
//!   that leaves fewer hits than asked.
//! - The graph is derived state: it is rebuilt from the vectors (themselves rebuilt from
//!   redb at start) whenever tombstones exceed the configured ratio.

pub use super::distance::DotDistance;
use super::distance::dot;
use crate::search::config::VectorDbConfig;
use hnsw_rs::prelude::Hnsw;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// One chunk found by a vector search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VectorHit {
    /// The document's number.
    pub doc: u32,
    /// The chunk's index within the document.
    pub chunk: u32,
    /// Cosine similarity to the query, -1..=1.
    pub score: f32,
}

/// Facts about the index for stats and readiness.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct VectorStats {
    /// Vectors of live chunks.
    pub vectors: usize,
    /// Points in the HNSW graph (live and tombstoned); 0 when there is no graph.
    pub graph_points: usize,
    /// Tombstoned points still in the graph.
    pub tombstones: usize,
    /// Vector length (0 before the first vector).
    pub dimension: usize,
}

type Graph = Hnsw<'static, f32, DotDistance>;

struct Inner {
    dim: usize,
    /// slot -> (doc, chunk); `None` is a tombstone.
    slots: Vec<Option<(u32, u32)>>,
    /// slot * dim .. (slot + 1) * dim
    vectors: Vec<f32>,
    by_doc: HashMap<u32, Vec<u32>>,
    live: usize,
    graph: Option<Arc<Graph>>,
    /// Slots `< graph_len` were inserted into the graph (later ones are inserted as added).
    graph_len: usize,
    graph_tombstones: usize,
}

/// The vector index. All methods are blocking (call them off the async executor).
pub struct VectorIndex {
    inner: RwLock<Inner>,
    cfg: VectorDbConfig,
    rebuild: parking_lot::Mutex<()>,
}

impl VectorIndex {
    /// An empty index.
    pub fn new(cfg: VectorDbConfig) -> Self {
        let inner = Inner {
            dim: 0,
            slots: Vec::new(),
            vectors: Vec::new(),
            by_doc: HashMap::new(),
            live: 0,
            graph: None,
            graph_len: 0,
            graph_tombstones: 0,
        };
        VectorIndex { inner: RwLock::new(inner), cfg, rebuild: parking_lot::Mutex::new(()) }
    }

    /// Replaces the vectors of `doc` (one per chunk, unit length, all of one dimension).
    pub fn put(&self, doc: u32, vectors: &[Vec<f32>]) {
        let mut g = self.inner.write();
        g.remove(doc);
        if vectors.is_empty() {
            return;
        }
        if g.dim == 0 {
            g.dim = vectors[0].len();
        }
        let dim = g.dim;
        let mut slots = Vec::with_capacity(vectors.len());
        for (i, v) in vectors.iter().enumerate() {
            if v.len() != dim {
                tracing::warn!(doc, expected = dim, got = v.len(), "skipping a vector of the wrong dimension");
                continue;
            }
            let slot = g.slots.len() as u32;
            g.slots.push(Some((doc, i as u32)));
            g.vectors.extend_from_slice(v);
            slots.push(slot);
        }
        g.live += slots.len();
        if let Some(graph) = g.graph.clone() {
            let items: Vec<(&[f32], usize)> = slots.iter().map(|&s| (g.vector(s), s as usize)).collect();
            if items.len() > 1 {
                graph.parallel_insert_slice(&items);
            } else if let Some(&(v, id)) = items.first() {
                graph.insert_slice((v, id));
            }
            g.graph_len = g.slots.len();
        }
        g.by_doc.insert(doc, slots);
    }

    /// Removes `doc`'s vectors (tombstones them in the graph).
    pub fn remove(&self, doc: u32) {
        self.inner.write().remove(doc);
    }

    /// The vectors of `doc`, in chunk order.
    pub fn doc_vectors(&self, doc: u32) -> Vec<Vec<f32>> {
        let g = self.inner.read();
        g.by_doc.get(&doc).map(|slots| slots.iter().map(|&s| g.vector(s).to_vec()).collect()).unwrap_or_default()
    }

    /// Counts.
    pub fn stats(&self) -> VectorStats {
        let g = self.inner.read();
        VectorStats {
            vectors: g.live,
            graph_points: if g.graph.is_some() { g.graph_len } else { 0 },
            tombstones: g.graph_tombstones,
            dimension: g.dim,
        }
    }

    /// The `k` chunks most similar to `query` among documents `allow` accepts.
    pub fn search(&self, query: &[f32], k: usize, allow: Option<&(dyn Fn(u32) -> bool + Sync)>) -> Vec<VectorHit> {
        let g = self.inner.read();
        if k == 0 || g.live == 0 || query.len() != g.dim {
            return Vec::new();
        }
        if let Some(graph) = g.graph.as_ref().filter(|_| g.live >= self.cfg.exact_below)
            && let Some(hits) = g.graph_search(graph, query, k, allow, self.cfg.hnsw_ef_search)
        {
            return hits;
        }
        g.exact(query, k, allow)
    }

    /// Top-`k` through the graph alone, whatever the index size (benchmarks compare it
    /// with the exact scan); `None` when there is no graph yet or it found fewer than `k`.
    pub fn search_graph(&self, query: &[f32], k: usize) -> Option<Vec<VectorHit>> {
        let g = self.inner.read();
        let graph = g.graph.as_ref()?;
        if k == 0 || g.live == 0 || query.len() != g.dim {
            return Some(Vec::new());
        }
        g.graph_search(graph, query, k, None, self.cfg.hnsw_ef_search)
    }

    /// Exact top-`k` by brute force (for measuring the graph's recall).
    pub fn search_exact(&self, query: &[f32], k: usize) -> Vec<VectorHit> {
        let g = self.inner.read();
        if query.len() != g.dim {
            return Vec::new();
        }
        g.exact(query, k, None)
    }

    /// Whether a (re)build of the graph is due.
    pub fn needs_rebuild(&self) -> bool {
        let g = self.inner.read();
        if g.live < self.cfg.exact_below {
            return false;
        }
        match &g.graph {
            None => true,
            Some(_) => g.graph_tombstones as f32 > self.cfg.rebuild_tombstone_ratio * g.graph_len.max(1) as f32,
        }
    }

    /// Builds a fresh graph over the live vectors and compacts the slots. The build runs
    /// without blocking searches or writes; only the final swap takes the write lock.
    pub fn rebuild(&self) {
        let _one = self.rebuild.lock();
        let (snapshot, vectors, dim) = {
            let g = self.inner.read();
            let live: Vec<u32> = (0..g.slots.len() as u32).filter(|&s| g.slots[s as usize].is_some()).collect();
            let mut vectors = Vec::with_capacity(live.len() * g.dim);
            for &s in &live {
                vectors.extend_from_slice(g.vector(s));
            }
            (live, vectors, g.dim)
        };
        if dim == 0 || snapshot.is_empty() {
            return;
        }
        let graph =
            Graph::new(self.cfg.hnsw_m.clamp(4, 256), snapshot.len().max(1024) * 2, 16, self.cfg.hnsw_ef_construction.max(8), DotDistance);
        let items: Vec<(&[f32], usize)> = vectors.chunks_exact(dim).enumerate().map(|(i, v)| (v, i)).collect();
        graph.parallel_insert_slice(&items);
        drop(items);
        let mut g = self.inner.write();
        // Renumber: snapshot slots first (in the graph), then slots added since.
        let old_len = g.slots.len();
        let mut remap: Vec<Option<u32>> = vec![None; old_len];
        let mut slots = Vec::with_capacity(g.live);
        let mut vecs = Vec::with_capacity(g.live * dim);
        let mut tombstones = 0;
        for &old in &snapshot {
            let s = g.slots[old as usize];
            if s.is_none() {
                tombstones += 1;
            } else {
                remap[old as usize] = Some(slots.len() as u32);
            }
            slots.push(s);
            vecs.extend_from_slice(&vectors[(slots.len() - 1) * dim..slots.len() * dim]);
        }
        let first_new = snapshot.last().map(|&s| s as usize + 1).unwrap_or(0);
        let mut added = Vec::new();
        for old in first_new..old_len {
            if let Some(v) = g.slots[old] {
                remap[old] = Some(slots.len() as u32);
                added.push(slots.len());
                slots.push(Some(v));
                vecs.extend_from_slice(g.vector(old as u32));
            }
        }
        let graph = Arc::new(graph);
        let items: Vec<(&[f32], usize)> = added.iter().map(|&s| (&vecs[s * dim..(s + 1) * dim], s)).collect();
        if !items.is_empty() {
            graph.parallel_insert_slice(&items);
        }
        drop(items);
        for list in g.by_doc.values_mut() {
            list.retain_mut(|s| match remap[*s as usize] {
                Some(n) => {
                    *s = n;
                    true
                }
                None => false,
            });
        }
        g.slots = slots;
        g.vectors = vecs;
        g.graph_len = g.slots.len();
        g.graph_tombstones = tombstones;
        g.graph = Some(graph);
    }
}

impl Inner {
    /// Top-`k` through the graph, or `None` when the graph found fewer than `k` (the
    /// caller then scans exactly).
    ///
    /// The graph is walked without a filter, asking for enough extra neighbours to cover
    /// tombstones and filtered-out documents, which are dropped afterwards. hnsw_rs's own
    /// filtered walk is not used: it never stops early and expands until its candidate
    /// queue is empty, which measured 30x slower than an exact scan at 10k vectors with a
    /// 10% filter. A filter too selective for the over-asked walk goes to the exact scan.
    fn graph_search(
        &self,
        graph: &Graph,
        query: &[f32],
        k: usize,
        allow: Option<&(dyn Fn(u32) -> bool + Sync)>,
        ef_search: usize,
    ) -> Option<Vec<VectorHit>> {
        let want = k.min(self.live);
        let ask = if allow.is_none() && self.graph_tombstones == 0 { k } else { k * 2 + 16 };
        let mut hits: Vec<VectorHit> = graph
            .search(query, ask, ef_search.max(ask))
            .iter()
            .filter_map(|n| {
                let (doc, chunk) = self.slots.get(n.d_id).copied().flatten()?;
                if allow.is_some_and(|f| !f(doc)) {
                    return None;
                }
                Some(VectorHit { doc, chunk, score: dot(query, self.vector(n.d_id as u32)) })
            })
            .collect();
        hits.truncate(k);
        (hits.len() >= want).then_some(hits)
    }

    fn vector(&self, slot: u32) -> &[f32] {
        let s = slot as usize * self.dim;
        &self.vectors[s..s + self.dim]
    }

    fn remove(&mut self, doc: u32) {
        if let Some(slots) = self.by_doc.remove(&doc) {
            for s in slots {
                self.slots[s as usize] = None;
                self.live -= 1;
                if self.graph.is_some() && (s as usize) < self.graph_len {
                    self.graph_tombstones += 1;
                }
                let dim = self.dim;
                self.vectors[s as usize * dim..(s as usize + 1) * dim].fill(0.0);
            }
        }
        if self.live == 0 && self.graph.is_none() {
            self.slots.clear();
            self.vectors.clear();
        }
    }

    /// Exact top-`k` among documents `allow` accepts; `allow` is called for every live slot
    /// before its dot product, so it must be cheap.
    fn exact(&self, query: &[f32], k: usize, allow: Option<&(dyn Fn(u32) -> bool + Sync)>) -> Vec<VectorHit> {
        let mut top: Vec<VectorHit> = Vec::with_capacity(k + 1);
        let mut floor = f32::NEG_INFINITY;
        for (slot, v) in self.vectors.chunks_exact(self.dim.max(1)).enumerate() {
            let Some((doc, chunk)) = self.slots[slot] else { continue };
            // The predicate first: callers pass cheap ones (the service's is a bitset), and
            // a selective filter then skips most dot products.
            if allow.is_some_and(|f| !f(doc)) {
                continue;
            }
            let score = dot(query, v);
            if top.len() == k && score <= floor {
                continue;
            }
            let at = top.partition_point(|h| h.score >= score);
            top.insert(at, VectorHit { doc, chunk, score });
            top.truncate(k);
            if top.len() == k {
                floor = top[k - 1].score;
            }
        }
        top
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::embed::normalize;

    fn rand_vecs(n: usize, dim: usize, seed: u64) -> Vec<Vec<f32>> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                normalize(
                    (0..dim)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            (x % 2000) as f32 / 1000.0 - 1.0
                        })
                        .collect(),
                )
            })
            .collect()
    }

    fn cfg(exact_below: usize) -> VectorDbConfig {
        VectorDbConfig { exact_below, ..Default::default() }
    }

    #[test]
    fn exact_search_honours_filters_and_deletes() {
        let idx = VectorIndex::new(cfg(1000));
        let v = rand_vecs(50, 16, 7);
        for d in 0..50u32 {
            idx.put(d, &v[d as usize..d as usize + 1]);
        }
        let hits = idx.search(&v[3], 5, None);
        assert_eq!(hits[0].doc, 3);
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        idx.remove(3);
        assert!(idx.search(&v[3], 50, None).iter().all(|h| h.doc != 3));
        let even = |d: u32| d % 2 == 0;
        let hits = idx.search(&v[5], 10, Some(&even));
        assert_eq!(hits.len(), 10);
        assert!(hits.iter().all(|h| h.doc % 2 == 0));
        assert_eq!(idx.stats().vectors, 49);
    }

    #[test]
    fn graph_search_matches_exact_closely_and_survives_rebuilds() {
        let idx = VectorIndex::new(cfg(100));
        let v = rand_vecs(1500, 32, 11);
        for (d, chunk) in v.chunks(3).enumerate() {
            idx.put(d as u32, chunk);
        }
        assert!(idx.needs_rebuild());
        idx.rebuild();
        assert!(!idx.needs_rebuild());
        for d in 0..200u32 {
            idx.remove(d);
        }
        assert!(idx.needs_rebuild(), "{:?}", idx.stats());
        idx.put(10_000, &v[..2]);
        idx.rebuild();
        let s = idx.stats();
        assert_eq!(s.tombstones, 0);
        assert_eq!(s.vectors, 1500 - 600 + 2);
        let (mut found, mut total) = (0, 0);
        for q in v.iter().step_by(37).take(30) {
            let exact: Vec<(u32, u32)> = idx.search_exact(q, 10).iter().map(|h| (h.doc, h.chunk)).collect();
            let approx: Vec<(u32, u32)> = idx.search(q, 10, None).iter().map(|h| (h.doc, h.chunk)).collect();
            assert!(approx.iter().all(|(d, _)| *d >= 200), "deleted docs never come back");
            total += exact.len();
            found += exact.iter().filter(|e| approx.contains(e)).count();
        }
        assert!(found as f32 / total as f32 >= 0.9, "recall {found}/{total}");
        assert_eq!(idx.doc_vectors(10_000).len(), 2);
    }
    #[test]
    fn graph_search_applies_filters_and_tombstones_at_any_selectivity() {
        let idx = VectorIndex::new(cfg(100));
        let v = rand_vecs(3000, 32, 23);
        for (d, x) in v.iter().enumerate() {
            idx.put(d as u32, std::slice::from_ref(x));
        }
        idx.rebuild();
        for d in (0..3000u32).step_by(7) {
            idx.remove(d);
        }
        assert!(idx.stats().tombstones > 0);
        // Loose (half the documents) and selective (1%) filters: the first is served by
        // the over-asked walk, the second falls back to the exact scan.
        let half = |d: u32| d % 2 == 0;
        let rare = |d: u32| d % 100 == 1;
        for allow in [&half as &(dyn Fn(u32) -> bool + Sync), &rare] {
            let (mut found, mut total) = (0, 0);
            for q in v.iter().step_by(101) {
                let hits = idx.search(q, 20, Some(allow));
                assert_eq!(hits.len(), 20);
                assert!(hits.iter().all(|h| allow(h.doc) && h.doc % 7 != 0), "only live, allowed documents");
                assert!(hits.windows(2).all(|w| w[0].score >= w[1].score - 1e-6), "best first");
                let exact: Vec<u32> = idx.inner.read().exact(q, 20, Some(allow)).iter().map(|h| h.doc).collect();
                total += exact.len();
                found += exact.iter().filter(|d| hits.iter().any(|h| h.doc == **d)).count();
            }
            assert!(found as f32 / total as f32 >= 0.9, "recall {found}/{total}");
        }
    }
}
