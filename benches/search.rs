//! Search benchmarks; prints its figures. Needs the model: `bash models/fetch.sh`.
//!
//! `cargo bench --bench search` (env `SEARCH_BENCH_CHUNKS`, default 10000: corpus size).
//! Measures: embedding sentences/s (beside Python onnxruntime on the same files when
//! `python3 -c "import onnxruntime, tokenizers, numpy"` works), indexing docs/s through the
//! service, query latency p50/p99 per mode, HNSW recall@10 against exact search, and RSS.

use hearth::search::{Embedder, SearchRequest};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

const ADJ: &[&str] = &["quick", "lazy", "bright", "silent", "ancient", "modern", "fragile", "heavy", "gentle", "noisy", "rusty", "golden"];
const NOUN: &[&str] = &[
    "engine",
    "river",
    "garden",
    "server",
    "violin",
    "mountain",
    "invoice",
    "kitten",
    "satellite",
    "bakery",
    "harbor",
    "library",
    "tractor",
    "glacier",
    "market",
    "compiler",
];
const VERB: &[&str] = &["repairs", "watches", "crosses", "builds", "paints", "measures", "delivers", "protects", "cleans", "studies"];
const PLACE: &[&str] = &["city", "valley", "office", "station", "forest", "island", "factory", "school", "museum", "airport"];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as usize
    }
    fn pick<'a>(&mut self, l: &[&'a str]) -> &'a str {
        l[self.next() % l.len()]
    }
}

fn sentence(r: &mut Rng) -> String {
    format!("The {} {} {} the {} {} near the {}.", r.pick(ADJ), r.pick(NOUN), r.pick(VERB), r.pick(ADJ), r.pick(NOUN), r.pick(PLACE))
}

fn rss_mb() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        / 1024.0
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn python_rate(models: &std::path::Path, texts: &[String], batch: usize) -> Option<f64> {
    let file = std::env::temp_dir().join("hearth-bench-sentences.json");
    std::fs::write(&file, serde_json::to_string(texts).ok()?).ok()?;
    let script = r#"
import json, sys, time, os
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
d, f, b = sys.argv[1], sys.argv[2], int(sys.argv[3])
texts = json.load(open(f))
tok = Tokenizer.from_file(os.path.join(d, "tokenizer.json"))
tok.enable_truncation(256); tok.enable_padding()
so = ort.SessionOptions(); so.intra_op_num_threads = os.cpu_count()
s = ort.InferenceSession(os.path.join(d, "model.onnx"), so)
def run(batch):
    enc = tok.encode_batch(batch)
    ids = np.array([e.ids for e in enc], dtype=np.int64); am = np.array([e.attention_mask for e in enc], dtype=np.int64)
    out = s.run(None, {"input_ids": ids, "attention_mask": am, "token_type_ids": np.zeros_like(ids)})[0]
    m = am[:, :, None].astype(np.float32); v = (out * m).sum(1) / m.sum(1)
    return v / np.linalg.norm(v, axis=1, keepdims=True)
run(texts[:b])
t = time.perf_counter()
for i in range(0, len(texts), b): run(texts[i:i + b])
print(len(texts) / (time.perf_counter() - t))
"#;
    let out = std::process::Command::new("python3").arg("-c").arg(script).arg(models).arg(&file).arg(batch.to_string()).output().ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

fn main() {
    let chunks: usize = std::env::var("SEARCH_BENCH_CHUNKS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = hearth::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.search.embeddings.model_dir = models.display().to_string();
    let app = rt.block_on(hearth::App::build(config)).expect("app");
    let embedder: Arc<dyn Embedder> = rt.block_on(async {
        for _ in 0..600 {
            if let Ok(e) = app.search.embedder_handle() {
                return e;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("model not loaded: {:?}", app.search.stats_now().semantic_unavailable_reason);
    });
    println!("search bench: {chunks} chunks, model {}", embedder.model_id());
    println!("RSS after model load: {:.0} MB", rss_mb());

    // 1. Embedding throughput, Rust vs Python on the same files and sentences.
    let mut rng = Rng(0x9E3779B97F4A7C15);
    let sentences: Vec<String> = (0..1000).map(|_| sentence(&mut rng)).collect();
    embedder.embed(&sentences[..100].to_vec()).unwrap();
    let t = Instant::now();
    for part in sentences.chunks(100) {
        embedder.embed(part).unwrap();
    }
    let rust_rate = sentences.len() as f64 / t.elapsed().as_secs_f64();
    match python_rate(&models, &sentences, 100) {
        Some(py) => {
            println!("embedding: {rust_rate:.0} sentences/s (Python onnxruntime same files: {py:.0}/s, ratio {:.2}x)", rust_rate / py)
        }
        None => println!("embedding: {rust_rate:.0} sentences/s (Python onnxruntime not available for comparison)"),
    }
    let t = Instant::now();
    for s in sentences.iter().take(200) {
        embedder.embed_query(s).unwrap();
    }
    println!("query embedding: {:.2} ms each", t.elapsed().as_secs_f64() * 1000.0 / 200.0);

    // 2. Indexing through the service (chunk, embed, redb, tantivy, HNSW).
    let docs: Vec<hearth::search::Document> = (0..chunks)
        .map(|i| hearth::search::Document {
            id: format!("doc-{i}"),
            content: format!("{} {}", sentence(&mut rng), sentence(&mut rng)),
            metadata: serde_json::json!({"group": i % 10}).as_object().unwrap().clone(),
        })
        .collect();
    let t = Instant::now();
    rt.block_on(async {
        for part in docs.chunks(500) {
            app.search.index_batch(part.to_vec(), None).await.unwrap();
        }
    });
    let secs = t.elapsed().as_secs_f64();
    println!("indexing: {} docs in {secs:.1}s = {:.0} docs/s", docs.len(), docs.len() as f64 / secs);
    let t = Instant::now();
    app.search.rebuild_graph_if_due();
    println!(
        "HNSW build over {} vectors: {:.1}s; stats {:?}",
        app.search.vector_index().stats().vectors,
        t.elapsed().as_secs_f64(),
        app.search.vector_index().stats()
    );

    // 3. Query latency per mode.
    let queries: Vec<String> = (0..200).map(|_| format!("{} {} in the {}", rng.pick(ADJ), rng.pick(NOUN), rng.pick(PLACE))).collect();
    for mode in ["keyword", "semantic", "hybrid"] {
        let mut lat = Vec::with_capacity(queries.len());
        rt.block_on(async {
            for q in &queries {
                let req = SearchRequest { query: q.clone(), mode: Some(mode.into()), ..Default::default() };
                let t = Instant::now();
                let r = app.search.search(&req).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(!r.is_empty());
            }
        });
        println!("query {mode:<8}: p50 {:.2} ms, p99 {:.2} ms ({} queries, limit 10)", pct(&mut lat, 0.5), pct(&mut lat, 0.99), lat.len());
    }
    let mut lat = Vec::new();
    rt.block_on(async {
        for q in queries.iter().take(100) {
            let req = SearchRequest {
                query: q.clone(),
                mode: Some("hybrid".into()),
                filters: Some(serde_json::json!({"group": 3})),
                ..Default::default()
            };
            let t = Instant::now();
            app.search.search(&req).await.unwrap();
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    });
    println!("query hybrid+filter (10% selectivity): p50 {:.2} ms, p99 {:.2} ms", pct(&mut lat, 0.5), pct(&mut lat, 0.99));

    // 4. HNSW recall@10 against exact search.
    let idx = app.search.vector_index();
    let (mut found, mut total) = (0usize, 0usize);
    for q in queries.iter().take(100) {
        let v = embedder.embed_query(q).unwrap();
        let exact: Vec<(u32, u32)> = idx.search_exact(&v, 10).iter().map(|h| (h.doc, h.chunk)).collect();
        let approx: Vec<(u32, u32)> = idx.search(&v, 10, None).iter().map(|h| (h.doc, h.chunk)).collect();
        total += exact.len();
        found += exact.iter().filter(|e| approx.contains(e)).count();
    }
    println!(
        "HNSW recall@10 vs exact: {:.3} (ef_search {})",
        found as f64 / total as f64,
        hearth::search::config::VectorDbConfig::default().hnsw_ef_search
    );
    println!("RSS at {chunks} chunks: {:.0} MB", rss_mb());

    // 5. Optional: the vector side at 100k chunks (real 10k embeddings, each also perturbed
    // 9 times and re-normalised), with real query embeddings.
    if std::env::var("SEARCH_BENCH_100K").is_ok() {
        let base: Vec<Vec<f32>> = (0..chunks as u32).flat_map(|d| idx.doc_vectors(d)).collect();
        let big = hearth::search::vector::VectorIndex::new(hearth::search::config::VectorDbConfig::default());
        let mut n = 0u32;
        for copy in 0..10 {
            for v in &base {
                let w: Vec<f32> =
                    v.iter().map(|x| if copy == 0 { *x } else { x + (rng.next() % 1000) as f32 / 1000.0 * 0.04 - 0.02 }).collect();
                big.put(n, &[hearth::search::embed::normalize(w)]);
                n += 1;
            }
        }
        let t = Instant::now();
        big.rebuild();
        println!("100k: HNSW build over {} vectors {:.1}s", big.stats().vectors, t.elapsed().as_secs_f64());
        let qv: Vec<Vec<f32>> = queries.iter().map(|q| embedder.embed_query(q).unwrap()).collect();
        let mut lat = Vec::new();
        let (mut found, mut total) = (0usize, 0usize);
        for v in &qv {
            let t = Instant::now();
            let approx = big.search(v, 10, None);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
            let exact = big.search_exact(v, 10);
            total += exact.len();
            found += exact.iter().filter(|e| approx.iter().any(|a| a.doc == e.doc)).count();
        }
        println!(
            "100k: vector search p50 {:.2} ms, p99 {:.2} ms; recall@10 {:.3}",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            found as f64 / total as f64
        );
        let mut lat = Vec::new();
        for v in qv.iter().take(50) {
            let t = Instant::now();
            big.search_exact(v, 10);
            lat.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        println!("100k: exact scan p50 {:.2} ms", pct(&mut lat, 0.5));
        println!("RSS with the 100k-vector index: {:.0} MB", rss_mb());
    }
    rt.block_on(app.shutdown());
}
