//! Fusion of keyword and semantic rankings into one document ranking.
//!
//! Inputs are per-document best-chunk scores from each retriever, best first. Both
//! methods treat a document missing from one list as contributing nothing from it.

use super::model::Fusion;
use std::collections::HashMap;

/// A document's fused score with its per-retriever inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Fused {
    /// Document number.
    pub doc: u32,
    /// Fused score.
    pub score: f32,
    /// Keyword (BM25) score, if ranked by keyword.
    pub keyword: Option<f32>,
    /// Semantic (cosine) score, if ranked semantically.
    pub semantic: Option<f32>,
}

/// Fuses two rankings (each sorted best first, one entry per document) and returns every
/// document best first; ties are broken by document number for determinism.
pub fn fuse(keyword: &[(u32, f32)], semantic: &[(u32, f32)], fusion: Fusion) -> Vec<Fused> {
    let mut by_doc: HashMap<u32, Fused> = HashMap::new();
    let entry = |m: &mut HashMap<u32, Fused>, d: u32| *m.entry(d).or_insert(Fused { doc: d, score: 0.0, keyword: None, semantic: None });
    for &(d, s) in keyword {
        let mut e = entry(&mut by_doc, d);
        e.keyword = Some(s);
        by_doc.insert(d, e);
    }
    for &(d, s) in semantic {
        let mut e = entry(&mut by_doc, d);
        e.semantic = Some(s);
        by_doc.insert(d, e);
    }
    match fusion {
        Fusion::Rrf { k, keyword_weight, semantic_weight } => {
            for (rank, &(d, _)) in keyword.iter().enumerate() {
                by_doc.get_mut(&d).into_iter().for_each(|e| e.score += keyword_weight / (k + rank as f32 + 1.0));
            }
            for (rank, &(d, _)) in semantic.iter().enumerate() {
                by_doc.get_mut(&d).into_iter().for_each(|e| e.score += semantic_weight / (k + rank as f32 + 1.0));
            }
        }
        Fusion::Weighted { semantic_ratio } => {
            let kn = minmax(keyword);
            let sn = minmax(semantic);
            for e in by_doc.values_mut() {
                let k = e.keyword.map(|s| kn(s)).unwrap_or(0.0);
                let s = e.semantic.map(|s| sn(s)).unwrap_or(0.0);
                e.score = semantic_ratio * s + (1.0 - semantic_ratio) * k;
            }
        }
    }
    let mut out: Vec<Fused> = by_doc.into_values().collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.doc.cmp(&b.doc)));
    out
}

/// Min-max normalisation over `list`'s scores; a single score (or all equal) maps to 1.
fn minmax(list: &[(u32, f32)]) -> impl Fn(f32) -> f32 + use<> {
    let lo = list.iter().map(|x| x.1).fold(f32::INFINITY, f32::min);
    let hi = list.iter().map(|x| x.1).fold(f32::NEG_INFINITY, f32::max);
    move |s| if hi > lo { (s - lo) / (hi - lo) } else { 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rrf_sums_weighted_reciprocal_ranks() {
        let kw = [(1, 9.0), (2, 5.0)];
        let se = [(2, 0.9), (3, 0.8)];
        let out = fuse(&kw, &se, Fusion::Rrf { k: 60.0, keyword_weight: 1.0, semantic_weight: 1.0 });
        assert_eq!(out[0].doc, 2);
        assert!((out[0].score - (1.0 / 62.0 + 1.0 / 61.0)).abs() < 1e-6);
        assert_eq!(out[0].keyword, Some(5.0));
        assert_eq!(out[0].semantic, Some(0.9));
        assert_eq!(out[1].doc, 1);
        assert_eq!(out[2].doc, 3);
        let only_sem = fuse(&kw, &se, Fusion::Rrf { k: 60.0, keyword_weight: 0.0, semantic_weight: 1.0 });
        assert_eq!(only_sem[0].doc, 2);
        assert_eq!(only_sem.last().unwrap().score, 0.0);
    }

    #[test]
    fn weighted_normalises_then_mixes() {
        let kw = [(1, 10.0), (2, 6.0), (3, 2.0)];
        let se = [(3, 0.9), (1, 0.5)];
        let out = fuse(&kw, &se, Fusion::Weighted { semantic_ratio: 0.5 });
        // doc1: 0.5*1 + 0.5*0 = 0.5; doc2: 0.5*0.5 + 0 = 0.25; doc3: 0.5*0 + 0.5*1 = 0.5
        let s = |d| out.iter().find(|f| f.doc == d).unwrap().score;
        assert!((s(1) - 0.5).abs() < 1e-6 && (s(2) - 0.25).abs() < 1e-6 && (s(3) - 0.5).abs() < 1e-6);
        assert_eq!(out[0].doc, 1, "ties break by doc number");
        let sem = fuse(&kw, &se, Fusion::Weighted { semantic_ratio: 1.0 });
        assert_eq!(sem[0].doc, 3);
    }
}
