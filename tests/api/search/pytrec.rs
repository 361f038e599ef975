//! `hearth eval` metrics against pytrec_eval (the library BEIR uses), on random runs.
//! Needs `pip install pytrec-eval-terrier`; without it the test fails with instructions
//! unless `HEARTH_SKIP_PYTREC=1`.

use hearth::search::eval::{Qrels, ndcg_at, recall_at};
use serde_json::{Value, json};
use std::collections::HashMap;

#[test]
fn ndcg_and_recall_match_pytrec_eval() {
    let probe = std::process::Command::new("python3").args(["-c", "import pytrec_eval"]).output();
    if !probe.as_ref().is_ok_and(|o| o.status.success()) {
        if std::env::var("HEARTH_SKIP_PYTREC").is_ok() {
            eprintln!("pytrec_eval not installed; skipped by HEARTH_SKIP_PYTREC");
            return;
        }
        panic!("pytrec_eval is not installed: pip install pytrec-eval-terrier (or set HEARTH_SKIP_PYTREC=1)");
    }
    let mut x: u64 = 0x2545F4914F6CDD1D;
    let mut rnd = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    let mut qrels: Qrels = HashMap::new();
    let mut runs: HashMap<String, Vec<(String, f32)>> = HashMap::new();
    for q in 0..40 {
        let qid = format!("q{q}");
        let rels = qrels.entry(qid.clone()).or_default();
        for _ in 0..1 + rnd(8) {
            rels.insert(format!("d{}", rnd(60)), rnd(4) as i64);
        }
        // Scores on a coarse grid so ties (broken by doc id) occur.
        let run: Vec<(String, f32)> = (0..rnd(120)).map(|_| (format!("d{}", rnd(60)), rnd(10) as f32 / 4.0)).collect();
        let mut dedup: HashMap<String, f32> = HashMap::new();
        for (d, s) in run {
            dedup.insert(d, s);
        }
        runs.insert(qid, dedup.into_iter().collect());
    }
    let input = json!({
        "qrels": qrels,
        "run": runs.iter().map(|(q, r)| (q.clone(), r.iter().map(|(d, s)| (d.clone(), *s as f64)).collect::<HashMap<_, _>>())).collect::<HashMap<_, _>>(),
    });
    let script = "import json,sys,pytrec_eval\nd=json.load(sys.stdin)\nrun={q:r for q,r in d['run'].items() if r}\nev=pytrec_eval.RelevanceEvaluator(d['qrels'],{'ndcg_cut.10','recall.100'})\nprint(json.dumps(ev.evaluate(run)))";
    let mut child = std::process::Command::new("python3")
        .args(["-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    let theirs: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut compared = 0;
    for (q, run) in &runs {
        if run.is_empty() {
            continue;
        }
        let t = &theirs[q];
        let (n, r) = (ndcg_at(run, &qrels[q], 10), recall_at(run, &qrels[q], 100));
        assert!((n - t["ndcg_cut_10"].as_f64().unwrap()).abs() < 1e-9, "{q}: ndcg {n} vs {}", t["ndcg_cut_10"]);
        assert!((r - t["recall_100"].as_f64().unwrap()).abs() < 1e-9, "{q}: recall {r} vs {}", t["recall_100"]);
        compared += 1;
    }
    assert!(compared > 30);
}
