//! Hostile and unlucky callers (issue "Hardening"): slow or idle connections, oversized
//! request heads, too many streams or connections, credentials in URLs, and the
//! authorization rules route by route. Each test failed on the code before the fix.

use crate::common::{TestServer, assert_error, split};
use crate::foundation::{ADMIN, READER, with_keys};
use serde_json::json;
use std::sync::Arc;
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

/// A real small filesystem (tmpfs) for disk-full tests, when this process may mount one
/// (root on Linux); `None` otherwise, and the test says it was skipped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(megabytes: u32) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            eprintln!("SKIPPED: cannot mount a tmpfs here (needs root); the fault-injection tests in src/store cover this");
            return None;
        }
        Some(Tmpfs { dir })
    }

    fn path(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// Fills the filesystem until `leave` bytes are free; returns the filler's path.
    fn fill_leaving(&self, leave: u64) -> std::path::PathBuf {
        let filler = self.path().join("filler");
        let free = fs4::available_space(self.path()).unwrap();
        let f = std::fs::File::create(&filler).unwrap();
        f.set_len(0).unwrap();
        use std::io::Write;
        let mut w = std::io::BufWriter::new(f);
        let chunk = vec![7u8; 1 << 16];
        let mut left = free.saturating_sub(leave);
        while left > 0 {
            let n = left.min(chunk.len() as u64) as usize;
            if w.write_all(&chunk[..n]).is_err() {
                break;
            }
            left -= n as u64;
        }
        let _ = w.flush();
        filler
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(self.dir.path()).status();
    }
}

async fn enqueue(s: &TestServer, n: usize, payload_bytes: usize) -> (u16, serde_json::Value) {
    s.post("/api/jobs", json!({"name": "fill", "queue": "q", "payload": {"n": n, "pad": "x".repeat(payload_bytes)}})).await
}

#[tokio::test]
async fn a_full_disk_refuses_writes_with_507_keeps_reads_and_recovers_when_space_is_freed() {
    let Some(fs) = Tmpfs::mount(64) else { return };
    let data = fs.path().join("data");
    let s = TestServer::start_in(&data, |c| {
        c.server.min_free_disk_bytes = 8 << 20;
        c.job_queue.workers.clear();
        c.modules.search.enabled = false;
    })
    .await;
    let (st, first) = enqueue(&s, 0, 10).await;
    assert_eq!(st, 201, "{first}");
    let id = first["job_id"].as_str().unwrap().to_string();

    let filler = fs.fill_leaving(4 << 20);
    let (st, body) = enqueue(&s, 1, 10).await;
    assert_eq!(assert_error(st, &body, 507), "storage_full");
    let (st, _) = s.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(st, 200, "reads keep working while the disk is full");
    let (st, ready) = s.get("/readyz").await;
    assert_eq!(st, 200, "a full disk degrades hearth; it still serves reads: {ready}");
    assert_eq!(ready["modules"]["store"]["status"], "degraded");
    assert!(ready["modules"]["store"]["reason"].as_str().unwrap().contains("full"), "{ready}");

    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (st, body) = enqueue(&s, 2, 10).await;
        if st == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "writes must resume once space is freed, got {st} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, ready) = s.get("/readyz").await;
    assert_eq!(ready["modules"]["store"]["status"], "ready");
    s.stop().await;
}

#[tokio::test]
async fn redb_running_out_of_space_mid_commit_loses_nothing_acknowledged_and_recovers() {
    let Some(fs) = Tmpfs::mount(48) else { return };
    let data = fs.path().join("data");
    let tweak = |c: &mut hearth::Config| {
        // No margin: redb itself meets ENOSPC.
        c.server.min_free_disk_bytes = 0;
        c.job_queue.workers.clear();
        c.modules.search.enabled = false;
    };
    let s = TestServer::start_in(&data, tweak).await;
    let filler = fs.fill_leaving(3 << 20);
    let mut acknowledged = Vec::new();
    let mut refused = None;
    for n in 0..400 {
        let (st, body) = enqueue(&s, n, 32 * 1024).await;
        match st {
            201 => acknowledged.push(body["job_id"].as_str().unwrap().to_string()),
            507 | 503 => {
                refused = Some(st);
                break;
            }
            other => panic!("a full disk must answer 507 or 503, never {other}: {body}"),
        }
    }
    assert!(refused.is_some(), "the disk never filled ({} jobs written)", acknowledged.len());
    std::fs::remove_file(&filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (st, body) = enqueue(&s, 999, 10).await;
        if st == 201 {
            acknowledged.push(body["job_id"].as_str().unwrap().to_string());
            break;
        }
        assert!(Instant::now() < deadline, "writes must resume once space is freed, got {st} {body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    s.stop().await;
    let s = TestServer::start_in(&data, tweak).await;
    for id in &acknowledged {
        let (st, _) = s.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(st, 200, "acknowledged job {id} was lost");
    }
    s.stop().await;
}

/// A receiver on loopback that counts the requests it gets and answers `status`
/// (with a redirect to another local port for 307).
async fn counting_receiver(status: u16) -> (String, Arc<std::sync::atomic::AtomicUsize>) {
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let h = hits.clone();
    let app = axum::Router::new().fallback(move || {
        let h = h.clone();
        async move {
            h.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let mut r = axum::response::Response::new(axum::body::Body::empty());
            *r.status_mut() = axum::http::StatusCode::from_u16(status).unwrap();
            if status == 307 {
                r.headers_mut().insert("location", "http://127.0.0.1:1/".parse().unwrap());
            }
            r
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("{port}"), hits)
}

async fn export_with_webhook(s: &TestServer, url: &str) -> (u16, serde_json::Value) {
    let src = json!({"title": "t", "segments": [{"start": 0.0, "end": 1.0, "text": "hi"}]});
    s.post("/api/exports", json!({"source_type": "transcript", "source": src, "format": "srt", "webhook_url": url})).await
}

/// The webhook delivery job of an export, once it ended.
async fn delivery_of(s: &TestServer) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (_, list) = s.get("/api/jobs?name=hearth.webhook").await;
        if let Some(j) = list["jobs"].as_array().and_then(|a| a.first())
            && ["completed", "dead"].contains(&j["status"].as_str().unwrap_or(""))
        {
            return j.clone();
        }
        assert!(Instant::now() < deadline, "the delivery did not end: {list}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A host name (not `localhost`) that resolves to a loopback address on this machine.
async fn loopback_name() -> Option<String> {
    let own = std::fs::read_to_string("/etc/hostname").unwrap_or_default().trim().to_string();
    for name in [own.as_str(), "ip6-localhost", "ip6-loopback", "localhost.localdomain"] {
        if name.is_empty() {
            continue;
        }
        if let Ok(mut addrs) = tokio::net::lookup_host((name, 80)).await
            && addrs.all(|a| a.ip().is_loopback())
        {
            return Some(name.to_string());
        }
    }
    None
}

#[tokio::test]
async fn caller_chosen_urls_cannot_reach_internal_addresses() {
    let s = TestServer::start().await;
    let (port, hits) = counting_receiver(200).await;
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://0x7f.1:{port}/hook"),
        format!("http://2130706433:{port}/hook"),
        format!("http://[::1]:{port}/hook"),
        "http://169.254.169.254/latest/meta-data".to_string(),
        format!("http://user:pw@example.com:{port}/hook"),
    ] {
        let (st, body) = export_with_webhook(&s, &url).await;
        assert_eq!(assert_error(st, &body, 400), "invalid_field", "{url}");
        assert_eq!(body["error"]["field"], "webhook_url", "{url}");
    }
    // A name that resolves to loopback passes the syntax check, and is refused when the
    // delivery connects; the job records a category, not the network's answer.
    let Some(name) = loopback_name().await else {
        eprintln!("SKIPPED the DNS half: no host name resolves to loopback here");
        return;
    };
    let (st, body) = export_with_webhook(&s, &format!("http://{name}:{port}/hook")).await;
    assert_eq!(st, 202, "{body}");
    let job = delivery_of(&s).await;
    assert_eq!(job["status"], "dead", "{job}");
    let error = job["errors"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("destination not allowed"), "{error}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "the internal receiver was never reached");
}

#[tokio::test]
async fn deliveries_follow_no_redirects_and_store_no_raw_errors() {
    let s = TestServer::start_with(|c| c.outbound.allow_private = true).await;
    let (port, hits) = counting_receiver(307).await;
    let (st, _) = export_with_webhook(&s, &format!("http://127.0.0.1:{port}/hook")).await;
    assert_eq!(st, 202);
    let job = delivery_of(&s).await;
    assert_eq!(job["status"], "dead", "a redirect fails the delivery for good: {job}");
    assert!(job["errors"][0]["error"].as_str().unwrap().contains("redirects are not followed"), "{job}");
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 1, "only the first URL was requested");
}
