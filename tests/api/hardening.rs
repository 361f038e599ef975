//! Hostile and unlucky callers (issue "Hardening"): slow or idle connections, oversized
//! request heads, too many streams or connections, credentials in URLs, and the
//! authorization rules route by route. Each test failed on the code before the fix.

use crate::common::{TestServer, assert_error, split};
use crate::foundation::{ADMIN, READER, with_keys};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads until the peer closes; returns what arrived and how long it took. Gives up after
/// `limit` (then the connection was NOT closed).
async fn until_closed(conn: &mut TcpStream, limit: Duration) -> Option<(Vec<u8>, Duration)> {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout_at((start + limit).into(), conn.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some((got, start.elapsed())),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn slow_silent_and_idle_connections_are_closed_after_the_header_timeout() {
    let s = TestServer::start_with(|c| c.server.header_timeout_seconds = 1).await;
    // Nothing sent at all.
    let mut silent = TcpStream::connect(s.addr).await.unwrap();
    // A partial request head (slowloris).
    let mut partial = TcpStream::connect(s.addr).await.unwrap();
    partial.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    // A keep-alive connection that went idle after one request.
    let mut idle = TcpStream::connect(s.addr).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    for (name, conn) in [("silent", &mut silent), ("partial head", &mut partial), ("idle keep-alive", &mut idle)] {
        let closed = until_closed(conn, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "a {name} connection must be closed by the header timeout");
    }
}

#[tokio::test]
async fn oversized_heads_get_json_errors_and_every_response_is_nosniff() {
    let s = TestServer::start().await;
    let long = format!("/api/jobs?name={}", "a".repeat(9000));
    let r = s.client.get(s.url(&long)).send().await.unwrap();
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let (st, body) = split(r).await;
    assert_eq!(assert_error(st, &body, 414), "uri_too_long");
    let r = s.client.get(s.url("/healthz")).header("x-big", "b".repeat(20_000)).send().await.unwrap();
    let (st, body) = split(r).await;
    assert_eq!(assert_error(st, &body, 431), "headers_too_large");
    for path in ["/healthz", "/api/nope", "/api/jobs"] {
        let r = s.client.get(s.url(path)).send().await.unwrap();
        assert_eq!(r.headers().get("x-content-type-options").map(|v| v.to_str().unwrap()), Some("nosniff"), "{path}");
    }
}

#[tokio::test]
async fn a_caller_holds_at_most_its_share_of_streams() {
    let s = TestServer::start_with(|c| c.server.max_streams_per_caller = 2).await;
    let url = s.ws_url("/ws/progress");
    let (a, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    let (b, _) = tokio_tungstenite::connect_async(url.as_str()).await.unwrap();
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
            assert_eq!(resp.status(), 429);
            let body: serde_json::Value = serde_json::from_slice(resp.body().as_deref().unwrap_or_default()).unwrap();
            assert_eq!(body["error"]["code"], "too_many_streams");
        }
        other => panic!("a third stream must be refused with 429, got {:?}", other.map(|_| ())),
    }
    // SSE counts against the same share.
    s.post("/api/progress", json!({"id": "p1"})).await;
    let r = s.client.get(s.url("/api/progress/p1/events")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    drop(a);
    // The slot comes back once the server has seen the close.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok(_) => break,
            Err(_) if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(50)).await,
            Err(e) => panic!("a closed stream must free its slot: {e}"),
        }
    }
    drop(b);
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_for_a_free_slot() {
    let s = TestServer::start_with(|c| {
        c.server.max_connections = 2;
        c.server.header_timeout_seconds = 30;
    })
    .await;
    let held1 = TcpStream::connect(s.addr).await.unwrap();
    let held2 = TcpStream::connect(s.addr).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c = reqwest::Client::builder().timeout(Duration::from_millis(700)).build().unwrap();
    assert!(c.get(s.url("/healthz")).send().await.is_err(), "a third connection is not served while two are open");
    drop(held1);
    let mut served = false;
    for _ in 0..50 {
        if c.get(s.url("/healthz")).send().await.is_ok_and(|r| r.status() == 200) {
            served = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(served, "once a connection closes, a waiting client is served");
    drop(held2);
}

#[tokio::test]
async fn credentials_in_urls_count_only_on_stream_routes_and_search_is_a_read() {
    let s = TestServer::start_with(with_keys).await;
    let c = &s.client;
    let r = c.get(s.url(&format!("/api/jobs?token={ADMIN}"))).send().await.unwrap();
    assert_eq!(r.status(), 401, "an admin key in the query of a REST route is not accepted");
    let (ws, _) = tokio_tungstenite::connect_async(s.ws_url(&format!("/ws/progress?token={ADMIN}"))).await.expect("streams accept ?token=");
    drop(ws);
    let r = c.post(s.url("/api/search")).bearer_auth(READER).json(&json!({"query": "x", "mode": "keyword"})).send().await.unwrap();
    assert_eq!(r.status(), 200, "a read-only key may search");
    let r = c.post(s.url("/api/search/index")).bearer_auth(READER).json(&json!({"id": "d", "content": "x"})).send().await.unwrap();
    assert_eq!(r.status(), 403, "a read-only key may not index");
}
