//! Search benchmarks; prints its figures. Needs the model: `bash models/fetch.sh`.
//!
//! `cargo bench --bench search` (env `SEARCH_BENCH_CHUNKS`, default 10000: corpus size;
//! `SEARCH_BENCH_100K=1`: then index real documents up to 100 000 chunks through the
//! service, about 4 minutes of embedding on 2 cores, and measure again;
//! `SEARCH_BENCH_EXACT_BELOW=n`: override `search.vector_db.exact_below`, e.g. 0 to
//! measure the graph at 10k chunks too).
//! Measures: embedding sentences/s (beside Python onnxruntime on the same files, rounds
//! interleaved so both see the same machine load, when
//! `python3 -c "import onnxruntime, tokenizers, numpy"` works), indexing docs/s through the
//! service, query latency p50/p99 per mode, the vector side alone (graph vs exact scan),
//! HNSW recall@10 against exact search, and RSS. Every document is one chunk. Also
//! `POST /v1/embeddings` (batches of 100 over HTTP) beside the in-process embedder, rounds
//! interleaved (goal: the server keeps ≥ 0.9× of the in-process sentences/s).

use hearth::search::{FastEmbedder, SearchRequest};
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

/// Python onnxruntime's rate on the same model files and sentences: the same tokenizer
/// settings (truncate at 256, pad to the longest in the batch), all cores for intra-op,
/// ORT's default (full) graph optimisation, the same batch size and mean pooling.
/// Several timed passes; the best one is printed. `None` when Python lacks the packages.
fn python_rate(models: &std::path::Path, texts: &[String], batch: usize, passes: usize) -> Option<f64> {
    let file = std::env::temp_dir().join("hearth-bench-sentences.json");
    std::fs::write(&file, serde_json::to_string(texts).ok()?).ok()?;
    let script = r#"
import json, sys, time, os
import numpy as np, onnxruntime as ort
from tokenizers import Tokenizer
d, f, b, passes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
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
best = 0.0
for _ in range(passes):
    t = time.perf_counter()
    for i in range(0, len(texts), b): run(texts[i:i + b])
    best = max(best, len(texts) / (time.perf_counter() - t))
print(best)
"#;
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(models)
        .arg(&file)
        .arg(batch.to_string())
        .arg(passes.to_string())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// The best of `passes` timed passes of our embedder over `texts` in batches of `batch`.
fn rust_rate(embedder: &FastEmbedder, texts: &[String], batch: usize, passes: usize) -> f64 {
    let mut best = 0.0f64;
    for _ in 0..passes {
        let t = Instant::now();
        for part in texts.chunks(batch) {
            embedder.embed_blocking(part).unwrap();
        }
        best = best.max(texts.len() as f64 / t.elapsed().as_secs_f64());
    }
    best
}

/// Embedding throughput beside Python: three interleaved rounds (ours, then Python's),
/// each the best of two passes; medians printed.
fn embedding_figures(embedder: &FastEmbedder, models: &std::path::Path, rng: &mut Rng) {
    let sentences: Vec<String> = (0..1000).map(|_| sentence(rng)).collect();
    embedder.embed_blocking(&sentences[..100]).unwrap();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        ours.push(rust_rate(embedder, &sentences, 100, 2));
        if let Some(py) = python_rate(models, &sentences, 100, 2) {
            theirs.push(py);
        }
    }
    let rust = pct(&mut ours, 0.5);
    if theirs.is_empty() {
        println!("embedding: {rust:.0} sentences/s (Python onnxruntime not available for comparison)");
    } else {
        let py = pct(&mut theirs, 0.5);
        println!(
            "embedding: {rust:.0} sentences/s (Python onnxruntime same files: {py:.0}/s, ratio {:.2}x; medians of 3 interleaved rounds, ours {:?}, Python {:?})",
            rust / py,
            ours.iter().map(|r| r.round()).collect::<Vec<_>>(),
            theirs.iter().map(|r| r.round()).collect::<Vec<_>>()
        );
    }
    let t = Instant::now();
    for s in sentences.iter().take(200) {
        embedder.embed_query_blocking(s).unwrap();
    }
    println!("query embedding (12-word sentences): {:.2} ms each", t.elapsed().as_secs_f64() * 1000.0 / 200.0);
}

/// `n` synthetic documents numbered from `from`, each two sentences (one chunk).
fn documents(rng: &mut Rng, from: usize, n: usize) -> Vec<hearth::search::Document> {
    (from..from + n)
        .map(|i| hearth::search::Document {
            id: format!("doc-{i}"),
            content: format!("{} {}", sentence(rng), sentence(rng)),
            metadata: serde_json::json!({"group": i % 10}).as_object().unwrap().clone(),
        })
        .collect()
}

/// Indexes `docs` through the service in batches of 500 and prints the rate.
fn index(rt: &tokio::runtime::Runtime, app: &hearth::App, docs: Vec<hearth::search::Document>) {
    let n = docs.len();
    let t = Instant::now();
    rt.block_on(async {
        for part in docs.chunks(500) {
            app.search.index_batch(part.to_vec(), None).await.unwrap();
        }
    });
    let secs = t.elapsed().as_secs_f64();
    println!("indexing: {n} docs in {secs:.1}s = {:.0} docs/s", n as f64 / secs);
    let t = Instant::now();
    let store = app.search.embedded_store().expect("the bench runs on the embedded store");
    store.rebuild_graph_if_due();
    let stats = store.vector_index().stats();
    println!("HNSW (re)build if due over {} vectors: {:.1}s; stats {stats:?}", stats.vectors, t.elapsed().as_secs_f64());
}

/// Query latency per mode through the service, the vector side alone, recall and RSS.
fn query_figures(rt: &tokio::runtime::Runtime, app: &hearth::App, embedder: &FastEmbedder, queries: &[String], label: &str) {
    let t = Instant::now();
    let qv: Vec<Vec<f32>> = queries.iter().map(|q| embedder.embed_query_blocking(q).unwrap()).collect();
    println!("[{label}] query embedding (the queries below): {:.2} ms each", t.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64);
    for mode in ["keyword", "semantic", "hybrid"] {
        let mut lat = Vec::with_capacity(queries.len());
        rt.block_on(async {
            for q in queries {
                let req = SearchRequest { query: q.clone(), mode: Some(mode.into()), ..Default::default() };
                let t = Instant::now();
                let r = app.search.search(&req).await.unwrap();
                lat.push(t.elapsed().as_secs_f64() * 1000.0);
                assert!(!r.is_empty());
            }
        });
        println!(
            "[{label}] query {mode:<8}: p50 {:.2} ms, p99 {:.2} ms ({} queries, limit 10)",
            pct(&mut lat, 0.5),
            pct(&mut lat, 0.99),
            lat.len()
        );
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
    println!("[{label}] query hybrid+filter (10% selectivity): p50 {:.2} ms, p99 {:.2} ms", pct(&mut lat, 0.5), pct(&mut lat, 0.99));

    // The vector side alone, with as many candidates as the service asks for.
    let idx = app.search.embedded_store().expect("the bench runs on the embedded store").vector_index();
    let k = hearth::search::config::QueryDefaults::default().candidates;
    let time = |f: &dyn Fn(&[f32])| {
        let mut lat: Vec<f64> = qv
            .iter()
            .map(|v| {
                let t = Instant::now();
                f(v);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        (pct(&mut lat, 0.5), pct(&mut lat, 0.99))
    };
    let (s50, s99) = time(&|v| drop(idx.search(v, k, None)));
    let group3 = |d: u32| d % 10 == 3;
    let (f50, f99) = time(&|v| drop(idx.search(v, k, Some(&group3))));
    let (e50, e99) = time(&|v| drop(idx.search_exact(v, k)));
    let graph = if idx.search_graph(&qv[0], k).is_some() {
        let (g50, g99) = time(&|v| drop(idx.search_graph(v, k)));
        format!("graph alone p50 {g50:.3} ms p99 {g99:.3} ms")
    } else {
        "no graph (below vector_db.exact_below)".to_string()
    };
    println!(
        "[{label}] vector search k={k}: as served p50 {s50:.3} ms p99 {s99:.3} ms; with a 10% filter p50 {f50:.3} ms p99 {f99:.3} ms; \
         exact scan p50 {e50:.3} ms p99 {e99:.3} ms; {graph}"
    );

    for k in [10, 100] {
        let (mut found, mut total) = (0usize, 0usize);
        for v in &qv {
            let Some(approx) = idx.search_graph(v, k) else { break };
            let exact: Vec<(u32, u32)> = idx.search_exact(v, k).iter().map(|h| (h.doc, h.chunk)).collect();
            total += exact.len();
            found += exact.iter().filter(|e| approx.iter().any(|a| (a.doc, a.chunk) == **e)).count();
        }
        if total > 0 {
            println!(
                "[{label}] HNSW recall@{k} vs exact: {:.3} ({} queries, ef_search {})",
                found as f64 / total as f64,
                qv.len(),
                hearth::search::config::VectorDbConfig::default().hnsw_ef_search
            );
        }
    }
    println!("[{label}] RSS: {:.0} MB", rss_mb());
}

/// Sentences/s through `POST /v1/embeddings` on a real server beside the in-process
/// embedder, the same 100-sentence batches, three interleaved rounds each.
fn served_embeddings(rt: &tokio::runtime::Runtime, app: &Arc<hearth::App>, embedder: &FastEmbedder, rng: &mut Rng) {
    use hearth::search::Embedder;
    let batches: Vec<Vec<String>> = (0..10)
        .map(|_| (0..100).map(|_| format!("the {} {} near the {}", rng.pick(ADJ), rng.pick(NOUN), rng.pick(PLACE))).collect())
        .collect();
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1/embeddings", listener.local_addr().unwrap());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(hearth::http::serve(listener, app.clone(), async move {
            let _ = stopped.await;
        }));
        let client = reqwest::Client::new();
        let (mut local, mut served) = (0f64, 0f64);
        for _ in 0..3 {
            let t = Instant::now();
            for b in &batches {
                embedder.embed(b).await.unwrap();
            }
            local += t.elapsed().as_secs_f64();
            let t = Instant::now();
            for b in &batches {
                let r = client.post(&url).json(&serde_json::json!({"input": b, "model": "m"})).send().await.unwrap();
                assert!(r.status().is_success());
                let _: serde_json::Value = r.json().await.unwrap();
            }
            served += t.elapsed().as_secs_f64();
        }
        let n = (3 * batches.len() * 100) as f64;
        println!(
            "embeddings, batches of 100: in-process {:.0} sentences/s, POST /v1/embeddings {:.0} sentences/s ({:.2}x)",
            n / local,
            n / served,
            local / served
        );
        let _ = stop.send(());
        let _ = server.await;
    });
}

fn main() {
    let chunks: usize = std::env::var("SEARCH_BENCH_CHUNKS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000);
    let models = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut config = hearth::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.search.embeddings.model_dir = models.display().to_string();
    if let Some(n) = std::env::var("SEARCH_BENCH_EXACT_BELOW").ok().and_then(|v| v.parse().ok()) {
        config.search.vector_db.exact_below = n;
    }
    let e = config.search.embeddings.clone();
    let app = rt.block_on(hearth::App::build(config)).expect("app");
    rt.block_on(async {
        for _ in 0..600 {
            if app.search.embedder_handle().is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("model not loaded: {:?}", app.search.stats_now().semantic_unavailable_reason);
    });
    // The app's own instance (one per process and settings), for the direct measurements.
    let embedder: Arc<FastEmbedder> =
        hearth::search::embed::load_shared(&models, e.max_seq_length, e.batch_size, &e.model).expect("the app's model");
    println!("search bench: {chunks} chunks, model {}", hearth::search::Embedder::model_id(&*embedder));
    println!("RSS after model load: {:.0} MB", rss_mb());

    let mut rng = Rng(0x9E3779B97F4A7C15);
    embedding_figures(&*embedder, &models, &mut rng);

    served_embeddings(&rt, &app, &*embedder, &mut rng);

    index(&rt, &app, documents(&mut rng, 0, chunks));
    let queries: Vec<String> = (0..200).map(|_| format!("{} {} in the {}", rng.pick(ADJ), rng.pick(NOUN), rng.pick(PLACE))).collect();
    query_figures(&rt, &app, &*embedder, &queries, &format!("{chunks} chunks"));

    if std::env::var("SEARCH_BENCH_100K").is_ok_and(|v| v != "0") && chunks < 100_000 {
        index(&rt, &app, documents(&mut rng, chunks, 100_000 - chunks));
        query_figures(&rt, &app, &*embedder, &queries, "100000 chunks");
    }
    rt.block_on(app.shutdown());
}
