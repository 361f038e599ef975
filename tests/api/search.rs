//! Integration tests of the search module, with the real model from `models/`
//! (run `bash models/fetch.sh` first).

mod custom_store;
mod embeddings;
mod pytrec;

use crate::common::{Child, TestServer, assert_error, split};
use serde_json::{Value, json};

async fn index(s: &TestServer, id: &str, content: &str, metadata: Value) {
    let (st, body) = s.post("/api/search/index", json!({"id": id, "content": content, "metadata": metadata})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body, json!({"success": true}));
}

async fn search(s: &TestServer, body: Value) -> Vec<Value> {
    let (st, out) = s.post("/api/search", body.clone()).await;
    assert_eq!(st, 200, "{body} -> {out}");
    out.as_array().unwrap_or_else(|| panic!("not an array: {out}")).clone()
}

fn ids(results: &[Value]) -> Vec<String> {
    results.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

const PETS: &[(&str, &str)] = &[
    ("cat", "The cat sat on the mat and purred while the sun warmed the room."),
    ("revenue", "Quarterly revenue grew by twelve percent thanks to strong enterprise sales."),
    ("car", "The automobile stopped working on the highway, so we called a tow truck."),
    ("recipe", "Whisk the eggs with sugar, fold in the flour and bake for twenty minutes."),
];

async fn pets(s: &TestServer) {
    for (id, text) in PETS {
        index(s, id, text, json!({"kind": id})).await;
    }
}

#[tokio::test]
async fn the_real_model_puts_kitten_near_cat_and_far_from_revenue() {
    let s = TestServer::start().await;
    let (_, stats) = s.get("/api/search/stats").await;
    assert_eq!(stats["semantic_ready"], true, "model must load from models/ (run bash models/fetch.sh): {stats}");
    let e = s.app.search.embedder_handle().expect("embedder");
    let v = e.embed(&["cat".into(), "kitten".into(), "revenue".into()]).await.unwrap();
    assert_eq!(v[0].len(), 384);
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let (near, far) = (dot(&v[0], &v[1]), dot(&v[0], &v[2]));
    // Python onnxruntime + tokenizers on the same files gives 0.7863 and 0.3152 for these words.
    assert!((near - 0.7863).abs() < 0.01 && (far - 0.3152).abs() < 0.01, "cos(cat,kitten)={near} cos(cat,revenue)={far}");

    pets(&s).await;
    let r = search(&s, json!({"query": "a small kitten", "mode": "semantic"})).await;
    assert_eq!(r[0]["id"], "cat", "{r:?}");
    assert!(r[0]["scores"]["semantic"].as_f64().unwrap() > r[1]["scores"]["semantic"].as_f64().unwrap());
    assert!(r[0]["scores"]["keyword"].is_null());
    assert_eq!(r[0]["metadata"], json!({"kind": "cat"}));
    assert_eq!(r[0]["content"], PETS[0].1);
}

#[tokio::test]
async fn hybrid_finds_a_paraphrase_that_keyword_search_misses() {
    let s = TestServer::start().await;
    pets(&s).await;
    let q = "my car broke down on the road";
    let kw = search(&s, json!({"query": "vehicle broke down", "mode": "keyword"})).await;
    assert!(!ids(&kw).contains(&"car".to_string()), "keyword cannot match a paraphrase: {kw:?}");
    for mode in ["hybrid", "semantic"] {
        let r = search(&s, json!({"query": "vehicle broke down", "mode": mode})).await;
        assert_eq!(r[0]["id"], "car", "{mode}: {r:?}");
    }
    // Default request = hybrid; both scores present for a doc both retrievers found.
    let r = search(&s, json!({"query": q})).await;
    assert_eq!(r[0]["id"], "car");
    assert!(r[0]["scores"]["semantic"].is_number() && r[0]["scores"]["keyword"].is_number(), "{r:?}");
    // RRF and weighted fusion both work and respect the limit.
    let r =
        search(&s, json!({"query": q, "fusion": {"method": "rrf", "k": 10, "weights": {"keyword": 0.5, "semantic": 2}}, "limit": 2})).await;
    assert_eq!(r.len(), 2);
    assert_eq!(r[0]["id"], "car");
    let r = search(&s, json!({"query": q, "fusion": {"method": "weighted", "semantic_ratio": 0.0}})).await;
    assert!(r.iter().all(|x| x["scores"]["keyword"].is_number() || x["score"].as_f64() == Some(0.0)), "{r:?}");
    // Highlighting wraps matching (stemmed) terms.
    let r = search(&s, json!({"query": "purring cats", "mode": "keyword", "highlight": true})).await;
    assert_eq!(r[0]["id"], "cat");
    let c = r[0]["content"].as_str().unwrap();
    assert!(c.contains("<em>cat</em>") && c.contains("<em>purred</em>"), "{c}");
    // Threshold drops weak results.
    let all = search(&s, json!({"query": "kitten", "mode": "semantic"})).await;
    let strong = search(&s, json!({"query": "kitten", "mode": "semantic", "threshold": 0.3})).await;
    assert!(strong.len() < all.len() && !strong.is_empty(), "{strong:?}");
    assert!(strong.iter().all(|x| x["score"].as_f64().unwrap() >= 0.3));
}

#[tokio::test]
async fn filters_apply_inside_both_retrievers() {
    let s = TestServer::start().await;
    let mut docs = Vec::new();
    for i in 0..40 {
        docs.push(
            json!({"id": format!("ml-{i}"), "content": format!("Machine learning model training tips number {i}: tune the learning rate."),
            "metadata": {"author": "ann", "year": 2020 + (i % 3), "date": format!("2024-0{}-15", 1 + i % 9), "tags": ["ml"]}}),
        );
    }
    docs.push(json!({"id": "bob-garden", "content": "Gardening in spring: a little learning about tomato plants.",
        "metadata": {"author": "bob", "year": 2019, "date": "2023-05-01", "tags": ["garden", "ml"]}}));
    let (st, body) = s.post("/api/search/index/batch", json!({"documents": docs})).await;
    assert_eq!(st, 200, "{body}");
    assert_eq!(body["indexed"], 41);
    for mode in ["keyword", "semantic", "hybrid"] {
        // Bob's doc is a weak match that a post-filter over the top 10 would lose.
        let r = search(&s, json!({"query": "machine learning training", "mode": mode, "limit": 10, "filters": {"author": "bob"}})).await;
        assert_eq!(ids(&r), vec!["bob-garden"], "{mode}");
        let r = search(&s, json!({"query": "learning", "mode": mode, "limit": 100, "filters": {"year": {"gte": 2021, "lt": 2022}}})).await;
        assert!(!r.is_empty() && r.iter().all(|x| x["metadata"]["year"] == 2021), "{mode}: {r:?}");
        let r = search(&s, json!({"query": "learning", "mode": mode, "limit": 100, "filters": {"date": {"lt": "2024-01-01"}}})).await;
        assert_eq!(ids(&r), vec!["bob-garden"], "{mode}");
        let r = search(&s, json!({"query": "learning", "mode": mode, "limit": 100, "filters": {"tags": {"in": ["garden", "x"]}, "author": ["bob", "carl"]}})).await;
        assert_eq!(ids(&r), vec!["bob-garden"], "{mode}");
        let r = search(&s, json!({"query": "learning", "mode": mode, "filters": {"author": "nobody"}})).await;
        assert!(r.is_empty());
    }
}

#[tokio::test]
async fn delete_reindex_and_similar() {
    let s = TestServer::start().await;
    pets(&s).await;
    index(&s, "kitten", "A kitten is a young cat that loves to play with yarn.", json!({})).await;
    let (st, sim) = s.get("/api/search/cat/similar?limit=2").await;
    assert_eq!(st, 200, "{sim}");
    let sim = sim.as_array().unwrap().clone();
    assert_eq!(sim.len(), 2);
    assert_eq!(sim[0]["id"], "kitten", "{sim:?}");
    assert!(!ids(&sim).contains(&"cat".to_string()));
    let (st, sim) = s.get("/api/search/cat/similar?limit=100").await;
    assert_eq!(st, 200);
    assert!(!ids(sim.as_array().unwrap()).contains(&"cat".to_string()), "never the document itself");

    // Re-indexing replaces: the old text no longer matches, the new one does.
    index(&s, "recipe", "Tomato soup: simmer tomatoes with basil and garlic.", json!({"v": 2})).await;
    assert!(search(&s, json!({"query": "whisk eggs flour", "mode": "keyword"})).await.is_empty());
    let r = search(&s, json!({"query": "basil soup", "mode": "keyword"})).await;
    assert_eq!(ids(&r), vec!["recipe"]);
    assert_eq!(r[0]["metadata"], json!({"v": 2}));
    let (_, stats) = s.get("/api/search/stats").await;
    assert_eq!(stats["documents"], 5, "{stats}");

    let (st, body) = s.delete("/api/search/cat").await;
    assert_eq!((st, body), (200, json!({"success": true})));
    for mode in ["keyword", "semantic", "hybrid"] {
        let r = search(&s, json!({"query": "cat sat on the mat", "mode": mode, "limit": 100})).await;
        assert!(!ids(&r).contains(&"cat".to_string()), "{mode}: deleted doc returned");
    }
    let (st, body) = s.delete("/api/search/cat").await;
    assert_eq!(assert_error(st, &body, 404), "not_found");
    let (st, body) = s.get("/api/search/cat/similar").await;
    assert_eq!(assert_error(st, &body, 404), "not_found");
    let (_, stats) = s.get("/api/search/stats").await;
    assert_eq!(stats["documents"], 4);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field() {
    let s = TestServer::start_with(|c| c.search.max_content_bytes = 1000).await;
    let cases = [
        (json!({"query": "  "}), "query"),
        (json!({"query": "x", "limit": 0}), "limit"),
        (json!({"query": "x", "limit": -3}), "limit"),
        (json!({"query": "x", "limit": 100000}), "limit"),
        (json!({"query": "x", "mode": "fuzzy"}), "mode"),
        (json!({"query": "x", "fusion": {"method": "magic"}}), "fusion.method"),
        (json!({"query": "x", "fusion": {"method": "weighted", "semantic_ratio": 2}}), "fusion.semantic_ratio"),
        (json!({"query": "x", "fusion": {"method": "rrf", "weights": {"bm25": 1}}}), "fusion.weights.bm25"),
        (json!({"query": "x", "filters": {"year": {"between": [1, 2]}}}), "filters.year.between"),
        (json!({"query": "x", "filters": {"year": {"gte": "soon"}}}), "filters.year.gte"),
        (json!({"query": "x", "filters": [1]}), "filters"),
        (json!({"query": "x", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (st, out) = s.post("/api/search", body.clone()).await;
        assert_error(st, &out, 400);
        assert_eq!(out["error"]["field"], field, "{body} -> {out}");
    }
    let big = "word ".repeat(300);
    for (body, field) in [
        (json!({"id": "a", "content": big}), "content"),
        (json!({"id": "", "content": "x"}), "id"),
        (json!({"id": "a", "content": ""}), "content"),
        (json!({"id": "a"}), "content"),
    ] {
        let (st, out) = s.post("/api/search/index", body.clone()).await;
        assert_error(st, &out, 400);
        assert_eq!(out["error"]["field"], field, "{body} -> {out}");
    }
    let (st, out) =
        s.post("/api/search/index/batch", json!({"documents": [{"id": "a", "content": "ok"}, {"id": "b", "content": " "}]})).await;
    assert_error(st, &out, 400);
    assert_eq!(out["error"]["field"], "documents[1].content");
    let (st, out) = s.post("/api/search/index/batch", json!({"documents": []})).await;
    assert_error(st, &out, 400);
    let (st, out) = s.get("/api/search/a/similar?limit=0").await;
    assert_eq!(assert_error(st, &out, 400), "invalid_query");
    // Nothing was indexed by the rejected requests.
    let (_, stats) = s.get("/api/search/stats").await;
    assert_eq!(stats["documents"], 0);
}

#[tokio::test]
async fn without_the_model_keyword_search_works_and_semantic_says_why() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let s = TestServer::start_with(move |c| c.search.embeddings.model_dir = dir).await;
    index(&s, "a", "Invoices are due at the end of the month.", json!({})).await;
    let r = search(&s, json!({"query": "invoices", "mode": "keyword"})).await;
    assert_eq!(ids(&r), vec!["a"]);
    // Asked for semantic search by name: 503 naming the missing file.
    for body in [json!({"query": "invoices", "mode": "semantic"}), json!({"query": "invoices", "hybrid": false})] {
        let (st, out) = s.post("/api/search", body).await;
        assert_eq!(assert_error(st, &out, 503), "service_unavailable");
        assert!(out["error"]["message"].as_str().unwrap().contains("model.onnx"), "{out}");
    }
    // No mode, or hybrid: keyword results, each marked degraded with the reason.
    for body in [json!({"query": "invoices"}), json!({"query": "invoices", "hybrid": true}), json!({"query": "invoices", "mode": "hybrid"})]
    {
        let (st, out) = s.post("/api/search", body.clone()).await;
        assert_eq!(st, 200, "{body}: {out}");
        assert_eq!(ids(out.as_array().unwrap()), vec!["a"], "{body}");
        let why = out[0]["degraded"].as_str().unwrap_or_default();
        assert!(why.contains("model.onnx") && why.contains("keyword"), "{body}: {out}");
        assert!(out[0]["scores"]["semantic"].is_null(), "{out}");
    }
    let r = search(&s, json!({"query": "invoices", "mode": "keyword"})).await;
    assert!(r[0].get("degraded").is_none(), "an explicit keyword search is not degraded: {r:?}");
    let (st, out) = s.get("/api/search/a/similar").await;
    assert_error(st, &out, 503);
    let (st, ready) = s.get("/readyz").await;
    assert_eq!(st, 200, "keyword-only search is degraded, not down: {ready}");
    assert_eq!(ready["status"], "degraded");
    let search = &ready["modules"]["search"];
    assert_eq!(search["status"], "degraded");
    assert_eq!(search["ready"], true);
    let reason = search["reason"].as_str().unwrap();
    assert!(reason.contains("model.onnx") && reason.contains("keyword search works"), "{reason}");
    let (_, stats) = s.get("/api/search/stats").await;
    assert_eq!(stats["semantic_ready"], false);
    assert_eq!(stats["documents"], 1);
}

#[tokio::test]
async fn a_large_batch_runs_as_a_job() {
    let s = TestServer::start_with(|c| c.search.batch_job_above = 3).await;
    let docs: Vec<Value> =
        (0..8).map(|i| json!({"id": format!("d{i}"), "content": format!("Document number {i} about astronomy and stars.")})).collect();
    let (st, body) = s.post("/api/search/index/batch", json!({"documents": docs})).await;
    assert_eq!(st, 202, "{body}");
    let job = body["job_id"].as_str().expect("job id").to_string();
    let mut status = Value::Null;
    for _ in 0..200 {
        let (_, j) = s.get(&format!("/api/jobs/{job}")).await;
        status = j["status"].clone();
        if status == "completed" || status == "dead" || status == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "completed");
    let r = search(&s, json!({"query": "astronomy stars", "mode": "keyword", "limit": 100})).await;
    assert_eq!(r.len(), 8);
}

/// HTTP against a `hearth serve` child process.
async fn call(base: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut r = reqwest::Client::new().request(method, format!("{base}{path}"));
    if let Some(b) = body {
        r = r.json(&b);
    }
    split(r.send().await.unwrap()).await
}

async fn child_search(c: &Child, body: Value) -> Vec<String> {
    let (st, out) = call(&c.base, reqwest::Method::POST, "/api/search", Some(body)).await;
    assert_eq!(st, 200, "{out}");
    ids(out.as_array().unwrap())
}

async fn child_index(c: &Child, id: &str, content: &str) {
    let (st, out) = call(&c.base, reqwest::Method::POST, "/api/search/index", Some(json!({"id": id, "content": content}))).await;
    assert_eq!(st, 200, "{out}");
}

#[tokio::test]
async fn acknowledged_documents_survive_sigkill_and_indexes_are_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut c = Child::spawn(&data, &[]).await;
    for (id, text) in PETS {
        child_index(&c, id, text).await;
    }
    c.kill();
    // Lose the derived keyword index entirely: it must come back from redb.
    std::fs::remove_dir_all(data.join("search").join("tantivy")).unwrap();
    let mut c = Child::spawn(&data, &[]).await;
    assert_eq!(child_search(&c, json!({"query": "quarterly revenue", "mode": "keyword"})).await, vec!["revenue"]);
    assert_eq!(child_search(&c, json!({"query": "a small kitten", "mode": "semantic"})).await[0], "cat");
    let (st, _) = call(&c.base, reqwest::Method::DELETE, "/api/search/car", None).await;
    assert_eq!(st, 200);
    child_index(&c, "recipe", "Tomato soup: simmer tomatoes with basil.").await;
    c.kill();
    // The index left by a SIGKILL is stale or current; either way the store wins.
    let c = Child::spawn(&data, &[]).await;
    assert!(child_search(&c, json!({"query": "automobile highway tow", "mode": "keyword"})).await.is_empty());
    assert!(child_search(&c, json!({"query": "whisk eggs flour", "mode": "keyword"})).await.is_empty());
    assert_eq!(child_search(&c, json!({"query": "basil soup", "mode": "hybrid"})).await[0], "recipe");
    let (_, stats) = call(&c.base, reqwest::Method::GET, "/api/search/stats", None).await;
    assert_eq!((stats["documents"].as_u64(), stats["vectors"].as_u64()), (Some(3), Some(3)), "{stats}");
}

#[tokio::test]
async fn documents_indexed_without_the_model_are_embedded_once_it_is_there() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let empty = dir.path().join("no-model");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = Child::spawn(&data, &[("HEARTH__SEARCH__EMBEDDINGS__MODEL_DIR", empty.to_str().unwrap())]).await;
    child_index(&c, "cat", PETS[0].1).await;
    child_index(&c, "revenue", PETS[1].1).await;
    let (st, _) = call(&c.base, reqwest::Method::POST, "/api/search", Some(json!({"query": "kitten", "mode": "semantic"}))).await;
    assert_eq!(st, 503);
    c.kill();
    let c = Child::spawn(&data, &[]).await;
    let mut stats = Value::Null;
    for _ in 0..400 {
        stats = call(&c.base, reqwest::Method::GET, "/api/search/stats", None).await.1;
        if stats["vectors"] == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(stats["vectors"], 2, "{stats}");
    assert_eq!(child_search(&c, json!({"query": "a small kitten", "mode": "semantic"})).await[0], "cat");
    let (st, sim) = call(&c.base, reqwest::Method::GET, "/api/search/cat/similar", None).await;
    assert_eq!(st, 200);
    assert_eq!(ids(sim.as_array().unwrap()), vec!["revenue"]);
}

#[tokio::test]
async fn the_eval_set_scores_hybrid_at_least_as_well_as_either_retriever() {
    let s = TestServer::start().await;
    let dir = crate::common::repo_path("tests/api/search/eval");
    let set = hearth::search::eval::BeirSet::read(&dir.join("corpus.jsonl"), &dir.join("queries.jsonl"), &dir.join("qrels.tsv")).unwrap();
    assert_eq!((set.docs.len(), set.queries.len()), (70, 30));
    let scores =
        hearth::search::eval::evaluate_service(&s.app.search, &set, &["keyword", "semantic", "hybrid"], &|_, _, _| {}).await.unwrap();
    let ndcg = |m: &str| scores.iter().find(|x| x.mode == m).unwrap().ndcg10;
    // Measured: keyword 0.927, semantic 0.984, hybrid (weighted, ratio 0.75) 0.994.
    assert!(ndcg("keyword") > 0.85 && ndcg("semantic") > 0.9, "{scores:?}");
    assert!(ndcg("hybrid") >= ndcg("semantic") && ndcg("hybrid") >= ndcg("keyword"), "{scores:?}");
    assert!(scores.iter().all(|x| x.queries == 30 && x.recall100 > 0.99), "{scores:?}");
}

#[tokio::test]
async fn hooks_expander_and_reranker_are_called() {
    use hearth::search::{QueryExpander, Reranker, SearchHooks, SearchQuery, SearchResult};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Default)]
    struct Counts {
        index: AtomicUsize,
        search: AtomicUsize,
        result: AtomicUsize,
    }
    impl SearchHooks for Counts {
        fn on_index(&self, _doc: &hearth::search::Document) {
            self.index.fetch_add(1, Ordering::SeqCst);
        }
        fn on_search(&self, q: &SearchQuery) {
            assert_eq!(q.query, "automobile", "the hook sees the expanded query");
            self.search.fetch_add(1, Ordering::SeqCst);
        }
        fn on_result(&self, _q: &SearchQuery, results: &mut Vec<SearchResult>) {
            self.result.fetch_add(results.len(), Ordering::SeqCst);
            for r in results.iter_mut() {
                r.metadata.insert("seen_by_hook".into(), json!(true));
            }
        }
    }
    struct Synonyms;
    impl QueryExpander for Synonyms {
        fn expand(&self, q: &str) -> String {
            if q == "auto" { "automobile".to_string() } else { q.to_string() }
        }
    }
    struct Reverse;
    impl Reranker for Reverse {
        fn rerank(&self, _q: &str, mut r: Vec<SearchResult>) -> Vec<SearchResult> {
            r.reverse();
            r
        }
    }

    let s = TestServer::start_with(|c| c.search.search.enable_reranking = true).await;
    let counts = Arc::new(Counts::default());
    s.app.search.add_hooks(counts.clone());
    s.app.search.set_query_expander(Arc::new(Synonyms));
    pets(&s).await;
    assert_eq!(counts.index.load(Ordering::SeqCst), 4);
    let r = search(&s, json!({"query": "auto", "mode": "keyword"})).await;
    assert_eq!(ids(&r), vec!["car"], "expanded to a word only the car document has");
    assert_eq!(r[0]["metadata"]["seen_by_hook"], true);
    assert_eq!((counts.search.load(Ordering::SeqCst), counts.result.load(Ordering::SeqCst)), (1, 1));
    let before = ids(&search(&s, json!({"query": "automobile", "mode": "semantic", "limit": 3})).await);
    s.app.search.set_reranker(Arc::new(Reverse));
    let after = ids(&search(&s, json!({"query": "automobile", "mode": "semantic", "limit": 3})).await);
    assert_eq!(after, before.into_iter().rev().collect::<Vec<_>>());
}

#[tokio::test]
async fn unchanged_chunks_are_not_embedded_again_and_custom_embedders_plug_in() {
    use hearth::search::{Embedder, SearchError};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A toy embedder: letter frequencies, counting the texts it is asked to embed.
    struct Letters(AtomicUsize);
    #[async_trait::async_trait]
    impl Embedder for Letters {
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SearchError> {
            self.0.fetch_add(texts.len(), Ordering::SeqCst);
            Ok(texts
                .iter()
                .map(|t| {
                    let mut v = vec![0.0f32; 26];
                    t.bytes().filter(u8::is_ascii_lowercase).for_each(|b| v[(b - b'a') as usize] += 1.0);
                    hearth::search::embed::normalize(v)
                })
                .collect())
        }
        fn dimension(&self) -> usize {
            26
        }
        fn model_id(&self) -> &str {
            "letters"
        }
    }

    let s = TestServer::start_with(|c| {
        c.search.chunking.size = 40;
        c.search.chunking.overlap = 0;
    })
    .await;
    let e = Arc::new(Letters(AtomicUsize::new(0)));
    s.app.search.set_embedder(e.clone());
    let text = "Alpha beta gamma delta. Epsilon zeta eta theta. Iota kappa lambda mu.";
    index(&s, "a", text, json!({})).await;
    let first = e.0.load(Ordering::SeqCst);
    assert_eq!(first, 3, "one chunk per sentence: no two fit in 40 characters");
    index(&s, "a", text, json!({"v": 2})).await;
    index(&s, "b", text, json!({})).await;
    assert_eq!(e.0.load(Ordering::SeqCst), first, "same chunks: nothing re-embedded");
    index(&s, "a", &format!("{text} Nu xi omicron."), json!({})).await;
    assert_eq!(e.0.load(Ordering::SeqCst), first + 1, "only the changed chunk is embedded");
    let r = search(&s, json!({"query": "alpha beta gamma", "mode": "semantic"})).await;
    assert_eq!(r.len(), 2);
    let (_, stats) = s.get("/api/search/stats").await;
    assert_eq!((stats["dimension"].as_u64(), stats["model"].as_str()), (Some(26), Some("letters")), "{stats}");
}
