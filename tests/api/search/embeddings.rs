//! hearth as an OpenAI-compatible embedding server (`POST /v1/embeddings`), and a second
//! hearth using it through the `openai` embedder.

use crate::common::{TestServer, assert_error};
use base64::Engine;
use serde_json::{Value, json};

fn vector(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    dot / (a.iter().map(|x| x * x).sum::<f32>().sqrt() * b.iter().map(|x| x * x).sum::<f32>().sqrt())
}

#[tokio::test]
async fn v1_embeddings_speaks_openais_shape_from_the_local_model() {
    let s = TestServer::start().await;
    let (st, one) = s.post("/v1/embeddings", json!({"input": "a small kitten", "model": "text-embedding-3-small"})).await;
    assert_eq!(st, 200, "{one}");
    assert_eq!(one["object"], "list");
    assert_eq!(one["data"][0]["object"], "embedding");
    assert_eq!(one["data"][0]["index"], 0);
    let v = vector(&one["data"][0]["embedding"]);
    assert_eq!(v.len(), 384);
    let local = s.app.search.embedder_handle().unwrap().embed(&["a small kitten".into()]).await.unwrap();
    assert!(cosine(&v, &local[0]) > 0.9999, "the served vector is the local model's");
    assert!(one["model"].as_str().unwrap().starts_with("all-MiniLM-L6-v2@"), "the answer names hearth's model: {one}");
    assert!(one["usage"]["prompt_tokens"].as_u64().unwrap() >= 4, "{one}");
    assert_eq!(one["usage"]["total_tokens"], one["usage"]["prompt_tokens"]);

    let long = "word ".repeat(2000);
    let (st, many) = s.post("/v1/embeddings", json!({"input": ["cat", "revenue", long], "model": "x", "encoding_format": "base64"})).await;
    assert_eq!(st, 200, "{many}");
    assert_eq!(many["data"].as_array().unwrap().len(), 3);
    let bytes = base64::engine::general_purpose::STANDARD.decode(many["data"][0]["embedding"].as_str().unwrap()).unwrap();
    let cat: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
    assert_eq!(cat.len(), 384, "base64 of little-endian f32s");
    assert!((cat.iter().map(|x| x * x).sum::<f32>() - 1.0).abs() < 1e-3, "unit length");
    let tokens = many["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(
        (256..=270).contains(&tokens),
        "the long input is truncated to the model's 256 tokens and usage counts what was embedded: {tokens}"
    );

    for (body, field) in [
        (json!({"input": "", "model": "m"}), "input[0]"),
        (json!({"input": [], "model": "m"}), "input"),
        (json!({"input": vec!["x"; 2049], "model": "m"}), "input"),
        (json!({"input": "x", "model": "m", "dimensions": 1536}), "dimensions"),
        (json!({"input": "x", "model": "m", "encoding_format": "int8"}), "encoding_format"),
    ] {
        let (st, err) = s.post("/v1/embeddings", body).await;
        assert_eq!(assert_error(st, &err, 400), "invalid_field");
        assert_eq!(err["error"]["field"], field, "{err}");
    }
    let (st, err) = s.post("/v1/embeddings", json!({"input": "y".repeat(70_000), "model": "m"})).await;
    assert_eq!(st, 413, "{err}");
}

#[tokio::test]
async fn a_hearth_embedding_through_another_hearths_api_matches_the_local_model() {
    let server = TestServer::start().await;
    let base = format!("{}/v1", server.url(""));
    let base_clone = base.clone();
    let remote = TestServer::start_with(move |c| {
        c.search.embeddings.provider = "openai".into();
        c.search.embeddings.base_url = base_clone;
        c.search.embeddings.model = "all-MiniLM-L6-v2".into();
    })
    .await;
    let (_, stats) = remote.get("/api/search/stats").await;
    assert_eq!(stats["semantic_ready"], true, "{stats}");
    let texts: Vec<String> = super::PETS.iter().map(|(_, t)| t.to_string()).collect();
    let via_api = remote.app.search.embedder_handle().unwrap().embed(&texts).await.unwrap();
    let local = server.app.search.embedder_handle().unwrap().embed(&texts).await.unwrap();
    for (a, b) in via_api.iter().zip(&local) {
        assert!(cosine(a, b) >= 0.9999, "cosine {}", cosine(a, b));
    }
    super::pets(&server).await;
    super::pets(&remote).await;
    for q in ["a small kitten", "vehicle broke down", "money made this year"] {
        let a = super::search(&server, json!({"query": q, "mode": "semantic", "limit": 10})).await;
        let b = super::search(&remote, json!({"query": q, "mode": "semantic", "limit": 10})).await;
        assert_eq!(super::ids(&a), super::ids(&b), "the same top 10 for '{q}'");
    }
}

#[tokio::test]
async fn a_remote_embedder_that_is_down_or_does_not_fit_is_a_503_never_a_500() {
    // Nothing listens here: semantic search and indexing (which embeds) are 503 naming the
    // API, never 500; keyword search keeps working.
    let port = crate::common::free_port();
    let down = TestServer::start_with(move |c| {
        c.search.embeddings.provider = "openai".into();
        c.search.embeddings.base_url = format!("http://127.0.0.1:{port}/v1");
        c.search.embeddings.timeout_ms = 500;
    })
    .await;
    let (st, err) = down.post("/api/search", json!({"query": "cat", "mode": "semantic"})).await;
    assert_eq!(st, 503, "{err}");
    assert!(err["error"]["message"].as_str().unwrap().contains(&port.to_string()), "{err}");
    let (st, err) = down.post("/api/search/index", json!({"id": "cat", "content": super::PETS[0].1})).await;
    assert_eq!(st, 503, "nothing is half-indexed while the embedder is down: {err}");
    let kw = super::search(&down, json!({"query": "cat", "mode": "keyword"})).await;
    assert!(kw.is_empty(), "{kw:?}");

    // A server whose vectors do not fit the configured dimension: semantic search is off
    // from the start, with both dimensions named.
    let server = TestServer::start().await;
    let base = format!("{}/v1", server.url(""));
    let wrong = TestServer::start_with(move |c| {
        c.search.embeddings.provider = "openai".into();
        c.search.embeddings.base_url = base;
        c.search.embeddings.dimension = 1536;
    })
    .await;
    let (st, err) = wrong.post("/api/search", json!({"query": "cat", "mode": "semantic"})).await;
    assert_eq!(st, 503, "{err}");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("384") && msg.contains("1536"), "{msg}");
}

#[tokio::test]
async fn the_openai_embedder_passes_the_embedder_conformance_suite() {
    let server = TestServer::start().await;
    let e = hearth::search::openai::OpenAiEmbedder::new(hearth::search::openai::OpenAiSettings {
        base_url: format!("{}/v1", server.url("")),
        model: "all-MiniLM-L6-v2".into(),
        dimension: 384,
        batch_size: 2,
        api_key: None,
        timeout: std::time::Duration::from_secs(30),
    })
    .unwrap();
    hearth::search::conformance::embedder(&e).await;
}
