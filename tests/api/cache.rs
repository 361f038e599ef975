//! Integration tests of the cache module: the HTTP API on a real server.

use crate::common::{Child, TestServer, assert_error};
use serde_json::{Value, json};
use std::time::Duration;

/// PUT a raw body with an optional content type; returns status and JSON answer.
async fn put(s: &TestServer, path: &str, body: impl Into<reqwest::Body>, content_type: Option<&str>) -> (u16, Value) {
    let mut r = s.client.put(s.url(path)).body(body);
    if let Some(ct) = content_type {
        r = r.header("content-type", ct);
    }
    crate::common::split(r.send().await.unwrap()).await
}

/// A `hearth serve` child on `dir` with the given cache key prefix. (Env values are read
/// as YAML, so a prefix ending in `:` must be quoted.)
async fn child(dir: &std::path::Path, prefix: &str) -> Child {
    Child::spawn(dir, &[("HEARTH__CACHE__L2__KEY_PREFIX", &format!("'{prefix}'"))]).await
}

/// GET a raw value from a child process.
async fn child_get(c: &Child, key: &str) -> (u16, String, String, Vec<u8>) {
    let r = reqwest::get(format!("{}/api/cache/{key}", c.base)).await.unwrap();
    let status = r.status().as_u16();
    let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (ct, tier) = (h("content-type"), h("x-cache"));
    (status, ct, tier, r.bytes().await.unwrap().to_vec())
}

/// GET a raw value: status, content type, tier header, body bytes.
async fn get_raw(s: &TestServer, path: &str) -> (u16, String, String, Vec<u8>) {
    let r = s.client.get(s.url(path)).send().await.unwrap();
    let status = r.status().as_u16();
    let h = |n: &str| r.headers().get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let (ct, tier) = (h("content-type"), h("x-cache"));
    (status, ct, tier, r.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn put_get_delete_keep_the_body_and_its_content_type() {
    let s = TestServer::start().await;
    let (st, b) = put(&s, "/api/cache/greeting?ttl=60&tags=a,b", "hello", Some("text/plain; charset=utf-8")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["key"], "greeting");
    assert_eq!(b["bytes"], 5);
    assert_eq!(b["ttl"], 60.0);
    assert_eq!(b["tags"], json!(["a", "b"]));
    let (st, ct, tier, body) = get_raw(&s, "/api/cache/greeting").await;
    assert_eq!((st, ct.as_str(), tier.as_str(), body.as_slice()), (200, "text/plain; charset=utf-8", "l1", &b"hello"[..]));

    // Binary without a content type comes back byte for byte as octet-stream.
    let bin: Vec<u8> = (0..=255u8).collect();
    assert_eq!(put(&s, "/api/cache/blob", bin.clone(), None).await.0, 200);
    let (st, ct, _, body) = get_raw(&s, "/api/cache/blob").await;
    assert_eq!((st, ct.as_str(), body), (200, "application/octet-stream", bin));

    // JSON is stored as bytes, not re-encoded.
    let doc = br#"{ "b": 1,  "a": [true] }"#.to_vec();
    assert_eq!(put(&s, "/api/cache/doc", doc.clone(), Some("application/json")).await.0, 200);
    let (_, ct, _, body) = get_raw(&s, "/api/cache/doc").await;
    assert_eq!((ct.as_str(), body), ("application/json", doc));

    let (st, b) = s.delete("/api/cache/greeting").await;
    assert_eq!((st, &b["deleted"]), (200, &json!(true)), "{b}");
    let (st, b) = s.get("/api/cache/greeting").await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
    let (st, b) = s.delete("/api/cache/greeting").await;
    assert_eq!((st, &b["deleted"]), (200, &json!(false)));
    assert!(s.app.cache.get("greeting").await.unwrap().is_none(), "gone from the Rust API too");
}

#[tokio::test]
async fn keys_are_one_percent_encoded_segments() {
    let s = TestServer::start().await;
    assert_eq!(put(&s, "/api/cache/user:42%2Fprofile%20v2", "p", Some("text/plain")).await.0, 200);
    let v = s.app.cache.get("user:42/profile v2").await.unwrap().expect("decoded key");
    assert_eq!(v.data().as_ref(), b"p");
    assert_eq!(get_raw(&s, "/api/cache/user:42%2Fprofile%20v2").await.0, 200);
    s.app.cache.set("from-rust", hearth::cache::CacheValue::new("r"), None, &[]).await.unwrap();
    assert_eq!(get_raw(&s, "/api/cache/from-rust").await.3, b"r");
}

/// Restarts are real processes killed with SIGKILL: what was acknowledged is on disk, and
/// each `l2.key_prefix` sees only its own keys.
#[tokio::test]
async fn values_survive_a_crash_and_restart_within_their_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let big = "compressible line of text\n".repeat(500);
    let mut a = child(dir.path(), "app1:").await;
    let client = reqwest::Client::new();
    let r = client.put(format!("{}/api/cache/persist?ttl=600&tags=keep", a.base)).header("content-type", "text/csv").body(big.clone());
    assert_eq!(r.send().await.unwrap().status(), 200);
    a.kill();

    let mut b = child(dir.path(), "app2:").await;
    assert_eq!(child_get(&b, "persist").await.0, 404, "another prefix does not see the key");
    b.kill();

    let a = child(dir.path(), "app1:").await;
    let (st, ct, tier, body) = child_get(&a, "persist").await;
    assert_eq!((st, ct.as_str(), tier.as_str()), (200, "text/csv", "l2"));
    assert_eq!(body, big.as_bytes());
    assert_eq!(child_get(&a, "persist").await.2, "l1", "promoted after the L2 hit");
    let stats: Value = reqwest::get(format!("{}/api/cache/stats", a.base)).await.unwrap().json().await.unwrap();
    assert!(stats["l2"]["bytes"].as_u64().unwrap() < big.len() as u64 / 4, "compressed in L2: {stats}");
    let r = client.post(format!("{}/api/cache/invalidate", a.base)).json(&json!({"tags": ["keep"]})).send().await.unwrap();
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["invalidated"], 1, "the tag index survived the crash");
    assert_eq!(child_get(&a, "persist").await.0, 404);
}

#[tokio::test]
async fn bad_input_is_a_400_or_413_naming_the_field() {
    let s = TestServer::start_with(|c| {
        c.cache.max_entry_bytes = 1024;
        c.server.body_limit = 4096;
    })
    .await;
    let field = |b: &Value| b["error"]["field"].as_str().unwrap_or("").to_string();
    for (path, want) in [
        ("/api/cache/", "key"),
        (&*format!("/api/cache/{}", "k".repeat(1025)), "key"),
        ("/api/cache/k?ttl=-5", "ttl"),
        ("/api/cache/k?ttl=0", "ttl"),
        ("/api/cache/k?ttl=abc", "ttl"),
        ("/api/cache/k?ttl=99999999999", "ttl"),
        ("/api/cache/k?ttl=99999999999999999999999", "ttl"),
        ("/api/cache/k?tags=ok,a%01b", "tags"),
    ] {
        let (st, b) = put(&s, path, "v", Some("text/plain")).await;
        assert_error(st, &b, 400);
        assert_eq!(field(&b), want, "{path}: {b}");
    }
    let (st, b) = put(&s, "/api/cache/big", vec![b'x'; 2000], Some("text/plain")).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    assert_eq!(field(&b), "value");
    let (st, b) = put(&s, "/api/cache/bigger", vec![b'x'; 5000], Some("text/plain")).await;
    assert_error(st, &b, 413);
    assert_eq!(field(&b), "body");
    let (st, b) = s.get("/api/cache/").await;
    assert_error(st, &b, 400);
    let (st, b) = s.delete("/api/cache?pattern=user:%5B").await;
    assert_error(st, &b, 400);
    assert_eq!(field(&b), "pattern", "{b}");
    let (st, b) = s.delete("/api/cache").await;
    assert_error(st, &b, 400);
    assert_eq!(field(&b), "pattern", "{b}");
    let (st, b) = s.post("/api/cache/invalidate", json!({"tags": []})).await;
    assert_error(st, &b, 400);
    assert_eq!(field(&b), "tags");
    let (st, b) = s.post("/api/cache/invalidate", json!({"tags": "user"})).await;
    assert_error(st, &b, 400);
    assert_eq!(field(&b), "tags");
    let (st, b) = s.post("/api/cache/invalidate", json!({})).await;
    assert_error(st, &b, 400);
    // `stats` and `invalidate` are routes of their own, so they are not usable keys over HTTP.
    let (st, b) = put(&s, "/api/cache/stats", "v", None).await;
    assert_eq!(assert_error(st, &b, 405), "method_not_allowed");
    // Nothing was stored by the rejected requests.
    assert_eq!(s.app.cache.get_stats().await.unwrap().l2.entries, 0);
}

#[tokio::test]
async fn entries_expire_after_their_ttl() {
    let s = TestServer::start().await;
    assert_eq!(put(&s, "/api/cache/short?ttl=1", "x", None).await.0, 200);
    assert_eq!(put(&s, "/api/cache/long?ttl=600", "y", None).await.0, 200);
    assert_eq!(get_raw(&s, "/api/cache/short").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(get_raw(&s, "/api/cache/short").await.0, 404);
    assert_eq!(get_raw(&s, "/api/cache/long").await.0, 200);
    assert_eq!(s.app.cache.sweep_expired().await.unwrap(), 1);
    let (_, stats) = s.get("/api/cache/stats").await;
    assert_eq!(stats["l2"]["entries"], 1);
}

#[tokio::test]
async fn invalidate_by_tags_and_delete_by_pattern() {
    let s = TestServer::start().await;
    for (k, tags) in [("user:1", "user,profile"), ("user:2", "user"), ("post:1", "post"), ("user:10", "")] {
        assert_eq!(put(&s, &format!("/api/cache/{k}?tags={tags}"), k, None).await.0, 200);
    }
    let (st, b) = s.post("/api/cache/invalidate", json!({"tags": ["profile", "nothing"]})).await;
    assert_eq!((st, &b["invalidated"]), (200, &json!(1)), "{b}");
    assert_eq!(get_raw(&s, "/api/cache/user:1").await.0, 404);
    assert_eq!(get_raw(&s, "/api/cache/user:2").await.0, 200);
    let (st, b) = s.delete("/api/cache?pattern=user:%3F").await;
    assert_eq!((st, &b["deleted"]), (200, &json!(1)), "user:? matches user:2 only: {b}");
    let (st, b) = s.delete("/api/cache?pattern=user:*").await;
    assert_eq!((st, &b["deleted"]), (200, &json!(1)), "{b}");
    assert_eq!(get_raw(&s, "/api/cache/user:10").await.0, 404);
    assert_eq!(get_raw(&s, "/api/cache/post:1").await.0, 200);
}

#[tokio::test]
async fn stats_and_metrics_count_hits_and_misses_per_tier() {
    let s = TestServer::start().await;
    put(&s, "/api/cache/a", "1", None).await;
    get_raw(&s, "/api/cache/a").await;
    get_raw(&s, "/api/cache/a").await;
    get_raw(&s, "/api/cache/missing").await;
    let (st, b) = s.get("/api/cache/stats").await;
    assert_eq!(st, 200);
    assert_eq!((b["hits"].as_u64(), b["misses"].as_u64()), (Some(2), Some(1)), "{b}");
    assert!((b["hit_rate"].as_f64().unwrap() - 2.0 / 3.0).abs() < 1e-9);
    assert_eq!((b["l1"]["hits"].as_u64(), b["l1"]["misses"].as_u64()), (Some(2), Some(1)));
    assert_eq!((b["l2"]["hits"].as_u64(), b["l2"]["misses"].as_u64()), (Some(0), Some(1)));
    assert_eq!((b["entries"].as_u64(), b["l1"]["entries"].as_u64()), (Some(1), Some(1)));
    for k in ["bytes", "evictions", "capacity_bytes"] {
        assert!(b["l1"][k].is_u64() && b["l2"][k].is_u64(), "{k} in {b}");
    }
    // The background loop publishes the counters to /metrics every second.
    let mut text = String::new();
    for _ in 0..40 {
        text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
        if text.contains("hearth_cache_hits_total{tier=\"l1\"}") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for needle in [
        "# HELP hearth_cache_hits_total",
        "hearth_cache_hits_total{tier=\"l1\"}",
        "hearth_cache_misses_total{tier=\"l2\"}",
        "# HELP hearth_cache_bytes",
        "hearth_cache_entries{tier=\"l2\"}",
    ] {
        assert!(text.contains(needle), "missing {needle} in /metrics");
    }
    // The cache's metrics pass promtool's lint (HELP present, counters end in _total).
    let ours: String = text.lines().filter(|l| l.contains("hearth_cache_")).map(|l| format!("{l}\n")).collect();
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed (.ci/run installs Debian's prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(ours.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool: {}{}\n{ours}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn incr_counts_atomically_and_refuses_what_is_not_a_counter() {
    let s = TestServer::start().await;
    let (st, b) = s.post("/api/cache/hits/incr", json!(null)).await;
    assert_eq!((st, &b["key"], &b["value"]), (200, &json!("hits"), &json!(1)), "{b}");
    let (st, b) = s.post("/api/cache/hits/incr?by=41", json!(null)).await;
    assert_eq!((st, &b["value"]), (200, &json!(42)), "{b}");
    let (st, ct, _, body) = get_raw(&s, "/api/cache/hits").await;
    assert_eq!((st, ct.as_str(), body.as_slice()), (200, "text/plain", &b"42"[..]), "a counter is decimal text");
    let (st, b) = s.post("/api/cache/hits/incr?by=-50", json!(null)).await;
    assert_eq!((st, &b["value"]), (200, &json!(-8)));
    // Concurrent increments lose nothing.
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (c, url) = (s.client.clone(), s.url("/api/cache/race/incr?by=2"));
            tokio::spawn(async move { c.post(url).send().await.unwrap().status().as_u16() })
        })
        .collect();
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    assert_eq!(get_raw(&s, "/api/cache/race").await.3, b"40");
    // A new counter takes the ttl; an existing one keeps its own.
    let (st, _) = s.post("/api/cache/short/incr?ttl=30", json!(null)).await;
    assert_eq!(st, 200);
    let ttl: f64 = head_header(&s, "/api/cache/short", "x-cache-ttl").await.parse().unwrap();
    assert!(ttl > 25.0 && ttl <= 30.0, "ttl {ttl}");
    s.post("/api/cache/short/incr?ttl=9999", json!(null)).await;
    let ttl: f64 = head_header(&s, "/api/cache/short", "x-cache-ttl").await.parse().unwrap();
    assert!(ttl <= 30.0, "an increment keeps an existing key's TTL ({ttl})");
    put(&s, "/api/cache/word", "hello", Some("text/plain")).await;
    let (st, b) = s.post("/api/cache/word/incr", json!(null)).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    put(&s, "/api/cache/big", i64::MAX.to_string(), None).await;
    let (st, b) = s.post("/api/cache/big/incr", json!(null)).await;
    assert_eq!(assert_error(st, &b, 409), "conflict", "overflow");
    assert_eq!(get_raw(&s, "/api/cache/big").await.3, i64::MAX.to_string().into_bytes(), "a refused increment changes nothing");
    let (st, b) = s.post("/api/cache/x/incr?by=abc", json!(null)).await;
    assert_eq!(assert_error(st, &b, 400), "invalid_query");
    assert_eq!(b["error"]["field"], "by");
    let (st, b) = s.post("/api/cache/x/incr?ttl=0", json!(null)).await;
    assert_eq!((assert_error(st, &b, 400), &b["error"]["field"]), ("invalid_query".into(), &json!("ttl")));
}

/// One header of a HEAD request (panics unless 200).
async fn head_header(s: &TestServer, path: &str, name: &str) -> String {
    let r = s.client.head(s.url(path)).send().await.unwrap();
    assert_eq!(r.status(), 200, "HEAD {path}");
    r.headers().get(name).and_then(|v| v.to_str().ok()).unwrap_or_else(|| panic!("no {name} on HEAD {path}")).to_string()
}

#[tokio::test]
async fn nx_sets_only_absent_keys_and_head_reports_the_ttl() {
    let s = TestServer::start().await;
    let (st, b) = put(&s, "/api/cache/lock?nx=true&ttl=120&tags=locks", "owner-a", Some("text/plain")).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!((&b["key"], &b["bytes"], &b["tags"]), (&json!("lock"), &json!(7), &json!(["locks"])));
    assert!(b["ttl"].as_f64().unwrap() > 119.0, "{b}");
    let (st, b) = put(&s, "/api/cache/lock?nx=true", "owner-b", Some("text/plain")).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    assert_eq!(get_raw(&s, "/api/cache/lock").await.3, b"owner-a", "the holder keeps the key");
    let (st, _) = put(&s, "/api/cache/lock?nx=false", "owner-c", Some("text/plain")).await;
    assert_eq!(st, 200, "nx=false is a plain set");
    // HEAD: the GET headers without the body.
    let r = s.client.head(s.url("/api/cache/lock")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    assert_eq!((h("content-type").as_str(), h("content-length").as_str()), ("text/plain", "7"));
    assert!(!h("x-cache-expires-at").is_empty());
    let ttl: f64 = h("x-cache-ttl").parse().unwrap();
    assert!(ttl > 3500.0 && ttl <= 3600.0, "a plain set took the default TTL: {ttl}");
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(s.client.head(s.url("/api/cache/nope")).send().await.unwrap().status(), 404);
    // GET carries the TTL too.
    let r = s.client.get(s.url("/api/cache/lock")).send().await.unwrap();
    assert!(r.headers().get("x-cache-ttl").is_some());
}

#[tokio::test]
async fn mget_reads_many_keys_in_order_with_their_ttl() {
    let s = TestServer::start().await;
    put(&s, "/api/cache/a?ttl=60", "alpha", Some("text/plain")).await;
    put(&s, "/api/cache/bin", vec![0xffu8, 0x00, 0x10], None).await;
    let (st, b) = s.post("/api/cache/mget", json!({"keys": ["a", "missing", "bin"]})).await;
    assert_eq!(st, 200, "{b}");
    let e = &b["entries"];
    assert_eq!(
        (&e[0]["key"], &e[0]["found"], &e[0]["value"], &e[0]["encoding"]),
        (&json!("a"), &json!(true), &json!("alpha"), &json!("utf8"))
    );
    assert_eq!(e[0]["content_type"], "text/plain");
    assert!(e[0]["ttl"].as_f64().unwrap() > 55.0 && e[0]["expires_at"].is_string());
    assert_eq!((&e[1]["found"], &e[1]["value"], &e[1]["ttl"]), (&json!(false), &Value::Null, &Value::Null));
    assert_eq!((&e[2]["value"], &e[2]["encoding"]), (&json!("/wAQ"), &json!("base64")), "bytes that are not UTF-8 come as base64");
    let (st, b) = s.post("/api/cache/mget", json!({"keys": []})).await;
    assert_eq!((assert_error(st, &b, 400), &b["error"]["field"]), ("invalid_field".into(), &json!("keys")));
    let (st, b) = s.post("/api/cache/mget", json!({"keys": ["ok", ""]})).await;
    assert_eq!((assert_error(st, &b, 400), &b["error"]["field"]), ("invalid_field".into(), &json!("keys[1]")));
    let many: Vec<String> = (0..1001).map(|i| format!("k{i}")).collect();
    let (st, b) = s.post("/api/cache/mget", json!({ "keys": many })).await;
    assert_eq!(assert_error(st, &b, 400), "invalid_field");
}

#[tokio::test]
async fn keys_are_listed_by_pattern_page_by_page() {
    let s = TestServer::start().await;
    for i in 0..12 {
        put(&s, &format!("/api/cache/user:{i}"), "u", None).await;
    }
    put(&s, "/api/cache/order:1", "o", None).await;
    put(&s, "/api/cache/gone?ttl=1", "g", None).await;
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    let mut pages = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/cache?pattern=user:*&count=5&cursor={c}"),
            None => "/api/cache?pattern=user:*&count=5".to_string(),
        };
        let (st, b) = s.get(&path).await;
        assert_eq!(st, 200, "{b}");
        pages += 1;
        let keys = b["keys"].as_array().unwrap();
        assert!(keys.len() <= 5, "a page examines at most count entries");
        seen.extend(keys.iter().map(|k| k.as_str().unwrap().to_string()));
        match b["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
        assert!(pages < 10, "the listing ends");
    }
    seen.sort();
    let mut expected: Vec<String> = (0..12).map(|i| format!("user:{i}")).collect();
    expected.sort();
    assert_eq!(seen, expected, "every matching key once, nothing else");
    assert!(pages >= 3, "12 keys in pages of 5");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (st, b) = s.get("/api/cache").await;
    assert_eq!(st, 200);
    let all: Vec<&str> = b["keys"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect();
    assert_eq!(all.len(), 13, "the default pattern is *, and an expired key is not listed: {all:?}");
    assert!(b["cursor"].is_null());
    for (q, field) in [("count=0", "count"), ("count=1001", "count"), ("count=abc", "count"), ("pattern=", "pattern")] {
        let (st, b) = s.get(&format!("/api/cache?{q}")).await;
        assert_eq!((assert_error(st, &b, 400), &b["error"]["field"]), ("invalid_query".into(), &json!(field)), "{q}");
    }
}
