//! Retrieval quality on a BEIR-format data set (the measures behind `hearth eval`, whose
//! command half is `src/cli/eval.rs`).
//!
//! Reads `corpus.jsonl` (`{"_id", "title"?, "text"}`), `queries.jsonl` (`{"_id", "text"}`)
//! and `qrels.tsv` (`query-id corpus-id score`, with a header line), indexes the corpus in a
//! temporary data directory, runs every query in each mode and prints nDCG@10 and
//! recall@100 computed as BEIR does with pytrec_eval (trec_eval semantics):
//! - a run is ranked by score descending, ties by document id descending (trec_eval);
//! - gain is the graded relevance (values ≤ 0 are not relevant), discount `log2(rank + 1)`;
//!   the ideal DCG uses the judged relevances sorted descending, cut at 10;
//! - recall@100 = relevant retrieved in the top 100 / all relevant;
//! - a document whose id equals the query id is dropped (BEIR's `ignore_identical_ids`);
//! - the mean is over the queries that have judgements and at least one retrieved document.

use super::model::SearchRequest;
use std::collections::HashMap;
use std::path::PathBuf;

/// Relevance judgements: query id -> document id -> grade.
pub type Qrels = HashMap<String, HashMap<String, i64>>;

/// nDCG@k of one ranked run (document id, score) against one query's judgements.
pub fn ndcg_at(run: &[(String, f32)], rels: &HashMap<String, i64>, k: usize) -> f64 {
    let ranked = trec_order(run);
    let dcg: f64 = ranked.iter().take(k).enumerate().map(|(i, (d, _))| gain(rels.get(d.as_str()).copied()) / ((i + 2) as f64).log2()).sum();
    let mut ideal: Vec<i64> = rels.values().copied().filter(|&r| r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal.iter().take(k).enumerate().map(|(i, &r)| r as f64 / ((i + 2) as f64).log2()).sum();
    if idcg > 0.0 { dcg / idcg } else { 0.0 }
}

/// Recall@k of one run.
pub fn recall_at(run: &[(String, f32)], rels: &HashMap<String, i64>, k: usize) -> f64 {
    let relevant = rels.values().filter(|&&r| r > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = trec_order(run).iter().take(k).filter(|(d, _)| rels.get(d.as_str()).is_some_and(|&r| r > 0)).count();
    found as f64 / relevant as f64
}

fn gain(r: Option<i64>) -> f64 {
    r.filter(|&r| r > 0).unwrap_or(0) as f64
}

fn trec_order(run: &[(String, f32)]) -> Vec<(String, f32)> {
    let mut v = run.to_vec();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| b.0.cmp(&a.0)));
    v
}

/// Mean nDCG@10 and recall@100 over `runs` (query id -> run), as BEIR averages them.
pub fn evaluate(runs: &HashMap<String, Vec<(String, f32)>>, qrels: &Qrels) -> (f64, f64, usize) {
    let (mut ndcg, mut recall, mut n) = (0.0, 0.0, 0);
    for (q, run) in runs {
        let Some(rels) = qrels.get(q) else { continue };
        let run: Vec<(String, f32)> = run.iter().filter(|(d, _)| d != q).cloned().collect();
        if run.is_empty() {
            continue;
        }
        ndcg += ndcg_at(&run, rels, 10);
        recall += recall_at(&run, rels, 100);
        n += 1;
    }
    if n == 0 { (0.0, 0.0, 0) } else { (ndcg / n as f64, recall / n as f64, n) }
}

fn read_jsonl(path: &PathBuf) -> Result<Vec<serde_json::Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| format!("{}:{}: {e}", path.display(), i + 1)))
        .collect()
}

fn str_field(v: &serde_json::Value, key: &str) -> String {
    match v.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

/// Parses a BEIR qrels file (tab or space separated, optional header).
pub fn parse_qrels(text: &str) -> Result<Qrels, String> {
    let mut out: Qrels = HashMap::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split(['\t', ' ']).filter(|c| !c.is_empty()).collect();
        if cols.is_empty() {
            continue;
        }
        if cols.len() < 3 {
            return Err(format!("qrels line {}: expected query-id, corpus-id, score", i + 1));
        }
        let Ok(score) = cols[cols.len() - 1].parse::<i64>() else {
            if i == 0 {
                continue; // header
            }
            return Err(format!("qrels line {}: score is not an integer", i + 1));
        };
        out.entry(cols[0].to_string()).or_default().insert(cols[cols.len() - 2].to_string(), score);
    }
    Ok(out)
}

/// A BEIR data set read from its three files.
pub struct BeirSet {
    /// Documents (title prepended to text as "Title. Text").
    pub docs: Vec<super::Document>,
    /// (query id, text) of the queries that have judgements.
    pub queries: Vec<(String, String)>,
    /// Judgements.
    pub qrels: Qrels,
}

impl BeirSet {
    /// Reads `corpus.jsonl`, `queries.jsonl` and `qrels.tsv`.
    pub fn read(corpus: &PathBuf, queries: &PathBuf, qrels: &PathBuf) -> Result<BeirSet, String> {
        let qrels = parse_qrels(&std::fs::read_to_string(qrels).map_err(|e| format!("cannot read {}: {e}", qrels.display()))?)?;
        let docs = read_jsonl(corpus)?
            .iter()
            .map(|d| {
                let title = str_field(d, "title");
                let text = str_field(d, "text");
                let content = if title.is_empty() { text } else { format!("{title}. {text}") };
                super::Document { id: str_field(d, "_id"), content, metadata: Default::default() }
            })
            .filter(|d| !d.content.trim().is_empty())
            .collect();
        let queries = read_jsonl(queries)?
            .iter()
            .map(|q| (str_field(q, "_id"), str_field(q, "text")))
            .filter(|(id, _)| qrels.contains_key(id))
            .collect();
        Ok(BeirSet { docs, queries, qrels })
    }
}

/// One mode's scores.
#[derive(Debug, Clone, PartialEq)]
pub struct ModeScore {
    /// keyword, semantic or hybrid.
    pub mode: String,
    /// Mean nDCG@10.
    pub ndcg10: f64,
    /// Mean recall@100.
    pub recall100: f64,
    /// Queries averaged.
    pub queries: usize,
}

/// Indexes `set` into `search` and scores each of `modes` with the configured fusion,
/// calling `report(what, done, total)` as it goes (`indexing`, `queries (<mode>)`).
pub async fn evaluate_service(
    search: &super::SearchService,
    set: &BeirSet,
    modes: &[&str],
    report: &(dyn Fn(&str, usize, usize) + Sync),
) -> Result<Vec<ModeScore>, String> {
    let mut indexed = 0;
    report("indexing", 0, set.docs.len());
    for part in set.docs.chunks(256) {
        search.index_batch(part.to_vec(), None).await.map_err(|e| e.to_string())?;
        indexed += part.len();
        report("indexing", indexed, set.docs.len());
    }
    let mut out = Vec::new();
    for mode in modes {
        let mut runs = HashMap::new();
        let what = format!("queries ({mode})");
        for (i, (qid, text)) in set.queries.iter().enumerate() {
            if i % 10 == 0 {
                report(&what, i, set.queries.len());
            }
            let req = SearchRequest { query: text.clone(), limit: Some(100), mode: Some(mode.to_string()), ..Default::default() };
            let res = search.search(&req).await.map_err(|e| format!("query {qid}: {e}"))?;
            runs.insert(qid.clone(), res.into_iter().map(|r| (r.id, r.score)).collect::<Vec<_>>());
        }
        report(&what, set.queries.len(), set.queries.len());
        let (ndcg10, recall100, queries) = evaluate(&runs, &set.qrels);
        out.push(ModeScore { mode: mode.to_string(), ndcg10, recall100, queries });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run_of(ids: &[(&str, f32)]) -> Vec<(String, f32)> {
        ids.iter().map(|(d, s)| (d.to_string(), *s)).collect()
    }

    #[test]
    fn ndcg_and_recall_match_hand_computed_values() {
        // Judgements: d1 grade 2, d2 grade 1, d3 grade 0 (judged not relevant), d4 grade 1.
        let rels: HashMap<String, i64> = [("d1", 2), ("d2", 1), ("d3", 0), ("d4", 1)].iter().map(|(d, r)| (d.to_string(), *r)).collect();
        // Ranked: d3, d1, x, d2 (d4 never retrieved).
        let run = run_of(&[("d3", 0.9), ("d1", 0.8), ("x", 0.7), ("d2", 0.6)]);
        // DCG = 0/log2(2) + 2/log2(3) + 0/log2(4) + 1/log2(5) = 1.261860 + 0.430677 = 1.692537
        // (pytrec_eval 0.5 gives ndcg_cut_10 = 0.5405857679, ndcg_cut_2 = 0.4796249331, recall_100 = 0.6667.)
        // IDCG = 2/log2(2) + 1/log2(3) + 1/log2(4) = 2 + 0.630930 + 0.5 = 3.130930
        let expected = (2.0 / 3f64.log2() + 1.0 / 5f64.log2()) / (2.0 + 1.0 / 3f64.log2() + 0.5);
        assert!((ndcg_at(&run, &rels, 10) - expected).abs() < 1e-12);
        assert!((ndcg_at(&run, &rels, 10) - 0.5405858).abs() < 1e-6);
        assert!((recall_at(&run, &rels, 100) - 2.0 / 3.0).abs() < 1e-12);
        // Cut at 2: DCG = 2/log2(3); IDCG = 2 + 1/log2(3).
        assert!((ndcg_at(&run, &rels, 2) - (2.0 / 3f64.log2()) / (2.0 + 1.0 / 3f64.log2())).abs() < 1e-12);
        assert!((recall_at(&run, &rels, 2) - 1.0 / 3.0).abs() < 1e-12);
    }

    #[test]
    fn ties_are_broken_by_doc_id_descending_like_trec_eval() {
        let rels: HashMap<String, i64> = [("a".to_string(), 1)].into_iter().collect();
        // Equal scores: trec_eval ranks "b" before "a".
        let run = run_of(&[("a", 1.0), ("b", 1.0)]);
        assert!((ndcg_at(&run, &rels, 10) - 1.0 / 3f64.log2()).abs() < 1e-12);
    }

    #[test]
    fn evaluate_averages_like_beir() {
        let qrels = parse_qrels("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n").unwrap();
        let mut runs = HashMap::new();
        runs.insert("q1".to_string(), run_of(&[("d1", 1.0)])); // perfect
        runs.insert("q2".to_string(), run_of(&[("q2", 5.0), ("x", 1.0), ("d2", 0.5)])); // self dropped: d2 at rank 2
        runs.insert("q3".to_string(), Vec::new()); // no results: not averaged
        runs.insert("q9".to_string(), run_of(&[("d1", 1.0)])); // no judgements: ignored
        let (ndcg, recall, n) = evaluate(&runs, &qrels);
        assert_eq!(n, 2);
        assert!((ndcg - (1.0 + 1.0 / 3f64.log2()) / 2.0).abs() < 1e-12);
        assert!((recall - 1.0).abs() < 1e-12);
    }
}
