//! The streaming worker protocol (`/ws/worker`): credit, acks only once durable (SIGKILL
//! after an ack), fail and retry, heartbeats, jobs given back when a socket closes, who
//! may connect, bad frames, jobs pushed as they are enqueued; and the worker examples of
//! `examples/` run against a real `hearth serve` (`ws_worker/examples.rs`).

mod examples;

use crate::common::{Child, TestServer, assert_error, split};
use crate::foundation::{ADMIN, READER, with_keys};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::collections::HashSet;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{connect_async, tungstenite::Message};

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A server without in-process pools (every job is for external workers).
async fn server(keys: bool) -> TestServer {
    TestServer::start_with(|c| {
        if keys {
            with_keys(c);
        }
        c.job_queue.workers.clear();
        c.modules.search.enabled = false;
    })
    .await
}

/// Opens `/ws/worker` at `base` (`ws://host:port`) with `key` as a bearer credential.
async fn open(base: &str, key: Option<&str>) -> Ws {
    let mut req = format!("{base}/ws/worker").into_client_request().unwrap();
    if let Some(k) = key {
        req.headers_mut().insert("authorization", format!("Bearer {k}").parse().unwrap());
    }
    connect_async(req).await.expect("the worker socket opens").0
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.expect("send");
}

/// The next JSON frame within `wait`, or `None`.
async fn next_within(ws: &mut Ws, wait: Duration) -> Option<Value> {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let msg = tokio::time::timeout_at(deadline, ws.next()).await.ok()?;
        match msg.expect("open").expect("ok") {
            Message::Text(t) => return Some(serde_json::from_str(&t).unwrap()),
            Message::Close(c) => panic!("closed: {c:?}"),
            _ => {}
        }
    }
}

/// The next JSON frame, within 10 s.
async fn next(ws: &mut Ws) -> Value {
    next_within(ws, Duration::from_secs(10)).await.expect("a frame within 10 s")
}

/// The close frame the server ends with (other frames before it are skipped), within 10 s.
async fn closed(ws: &mut Ws) -> tokio_tungstenite::tungstenite::protocol::CloseFrame {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("closed within 10 s") {
            Some(Ok(Message::Close(c))) => return c.expect("a close frame"),
            Some(Ok(_)) => {}
            other => panic!("{other:?}"),
        }
    }
}

/// Subscribes and returns the `subscribed` frame.
async fn subscribe(ws: &mut Ws, queue: &str, credit: u64, extra: Value) -> Value {
    let mut sub = json!({"op": "subscribe", "queues": [queue], "credit": credit});
    sub.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
    send(ws, sub).await;
    let f = next(ws).await;
    assert_eq!(f["op"], "subscribed", "{f}");
    f
}

/// Enqueues `n` jobs on `queue` in one batch; returns their ids.
async fn enqueue(s: &TestServer, queue: &str, n: usize, extra: Value) -> Vec<String> {
    let jobs: Vec<Value> = (0..n)
        .map(|i| {
            let mut j = json!({"name": "work", "queue": queue, "payload": {"i": i}});
            j.as_object_mut().unwrap().extend(extra.as_object().cloned().unwrap_or_default());
            j
        })
        .collect();
    let r = s.client.post(s.url("/api/jobs/batch")).bearer_auth(ADMIN).json(&jobs).send().await.unwrap();
    let (st, b) = split(r).await;
    assert_eq!(st, 201, "{b}");
    b.as_array().unwrap().iter().map(|e| e["job_id"].as_str().unwrap().to_string()).collect()
}

async fn job_status(s: &TestServer, id: &str) -> Value {
    let r = s.client.get(s.url(&format!("/api/jobs/{id}"))).bearer_auth(ADMIN).send().await.unwrap();
    split(r).await.1
}

#[tokio::test]
async fn ws_worker_credit_bounds_the_jobs_out_and_acks_free_it() {
    let s = server(false).await;
    let ids = enqueue(&s, "credit", 23, json!({})).await;
    let mut ws = open(&s.ws_url(""), None).await;
    let sub = subscribe(&mut ws, "credit", 5, json!({"worker_id": "w-credit"})).await;
    assert_eq!((sub["credit"].as_u64(), sub["worker_id"].as_str(), sub["lease_seconds"].as_u64()), (Some(5), Some("w-credit"), Some(60)));
    let (mut out, mut ending, mut acked, mut seen) = (HashSet::new(), HashSet::new(), 0, HashSet::new());
    let mut idle = 0;
    while acked < ids.len() {
        match next_within(&mut ws, Duration::from_millis(300)).await {
            Some(f) if f["op"] == "job" => {
                let id = f["id"].as_str().unwrap().to_string();
                assert_eq!(
                    (f["status"].as_str(), f["worker_id"].as_str(), f["queue"].as_str()),
                    (Some("running"), Some("w-credit"), Some("credit"))
                );
                assert!(seen.insert(id.clone()), "{id} pushed twice");
                out.insert(id);
                assert!(out.len() <= 5, "more jobs out than the credit: {}", out.len());
            }
            Some(f) if f["op"] == "ack" => {
                assert_eq!(f["status"], "completed", "{f}");
                assert!(out.remove(f["id"].as_str().unwrap()), "an ack for a job not out: {f}");
                acked += 1;
            }
            Some(f) => panic!("unexpected {f}"),
            None => {
                // Quiet: the credit is used up (or the queue empty). End two jobs at once.
                let two: Vec<String> = out.iter().filter(|id| !ending.contains(*id)).take(2).cloned().collect();
                idle = if two.is_empty() { idle + 1 } else { 0 };
                assert!(idle < 30, "nothing pushed for 9 s with credit free; {acked} acked");
                for id in two {
                    send(&mut ws, json!({"op": "complete", "id": id, "result": {"ok": id}})).await;
                    ending.insert(id);
                }
            }
        }
    }
    assert_eq!(seen.len(), ids.len());
    let j = job_status(&s, &ids[7]).await;
    assert_eq!((j["status"].as_str(), j["result"]["ok"].as_str()), (Some("completed"), Some(ids[7].as_str())), "{j}");
    assert!(next_within(&mut ws, Duration::from_millis(200)).await.is_none(), "nothing more");
}

#[tokio::test]
async fn ws_worker_ends_sent_together_share_a_durable_commit() {
    let s = server(false).await;
    let ids = enqueue(&s, "group", 200, json!({})).await;
    let mut ws = open(&s.ws_url(""), None).await;
    subscribe(&mut ws, "group", 200, json!({})).await;
    for _ in 0..200 {
        assert_eq!(next(&mut ws).await["op"], "job");
    }
    let commits = || s.app.store.writer_stats().commits.load(std::sync::atomic::Ordering::Relaxed);
    let before = commits();
    // One frame per job, sent back to back.
    for id in &ids {
        ws.feed(Message::Text(json!({"op": "complete", "id": id}).to_string().into())).await.unwrap();
    }
    ws.flush().await.unwrap();
    let mut acked = HashSet::new();
    while acked.len() < ids.len() {
        let f = next(&mut ws).await;
        assert_eq!((f["op"].as_str(), f["status"].as_str()), (Some("ack"), Some("completed")), "{f}");
        acked.insert(f["id"].as_str().unwrap().to_string());
    }
    let used = commits() - before;
    assert!(used <= 20, "200 ends took {used} commits: they should share a few");
}

#[tokio::test]
async fn ws_worker_jobs_are_pushed_as_they_are_enqueued() {
    let s = server(false).await;
    let mut ws = open(&s.ws_url(""), None).await;
    subscribe(&mut ws, "push", 10, json!({})).await;
    assert!(next_within(&mut ws, Duration::from_millis(300)).await.is_none(), "the queue is empty");
    for round in 0..3 {
        let started = std::time::Instant::now();
        let id = enqueue(&s, "push", 1, json!({})).await.remove(0);
        let f = next(&mut ws).await;
        assert_eq!((f["op"].as_str(), f["id"].as_str()), (Some("job"), Some(id.as_str())), "{f}");
        // Woken by the enqueue itself, not by a periodic check (those are 30 s apart).
        assert!(started.elapsed() < Duration::from_secs(5), "round {round}: {:?}", started.elapsed());
        send(&mut ws, json!({"op": "complete", "id": id})).await;
        assert_eq!(next(&mut ws).await["op"], "ack");
    }
    // A job enqueued elsewhere is not this subscription's.
    enqueue(&s, "not-push", 1, json!({})).await;
    assert!(next_within(&mut ws, Duration::from_millis(300)).await.is_none());
}

#[tokio::test]
async fn ws_worker_fail_retries_then_ends_dead() {
    let s = server(false).await;
    let backoff = json!({"max_attempts": 2, "backoff": {"type": "fixed", "base_ms": 50, "max_ms": 50, "jitter": false}});
    let id = enqueue(&s, "flaky", 1, backoff).await.remove(0);
    let mut ws = open(&s.ws_url(""), None).await;
    subscribe(&mut ws, "flaky", 1, json!({})).await;
    let f = next(&mut ws).await;
    assert_eq!((f["id"].as_str(), f["attempts"].as_u64()), (Some(id.as_str()), Some(1)), "{f}");
    send(&mut ws, json!({"op": "fail", "id": id, "error": "first try"})).await;
    let ack = next(&mut ws).await;
    assert_eq!((ack["op"].as_str(), ack["status"].as_str()), (Some("ack"), Some("failed")), "{ack}");
    // After its backoff the job is ready again and pushed again.
    let f = next(&mut ws).await;
    assert_eq!((f["op"].as_str(), f["id"].as_str(), f["attempts"].as_u64()), (Some("job"), Some(id.as_str()), Some(2)), "{f}");
    send(&mut ws, json!({"op": "fail", "id": id, "error": "second try"})).await;
    assert_eq!(next(&mut ws).await["status"], "dead");
    let j = job_status(&s, &id).await;
    assert_eq!((j["status"].as_str(), j["errors"][1]["error"].as_str()), (Some("dead"), Some("second try")), "{j}");
    // retry: false makes a job dead at once, attempts left or not.
    let id = enqueue(&s, "flaky", 1, json!({"max_attempts": 5})).await.remove(0);
    assert_eq!(next(&mut ws).await["id"].as_str(), Some(id.as_str()));
    send(&mut ws, json!({"op": "fail", "id": id, "error": "fatal", "retry": false})).await;
    assert_eq!(next(&mut ws).await["status"], "dead");
}

#[tokio::test]
async fn ws_worker_heartbeats_extend_the_lease_and_progress_is_reported() {
    let s = server(false).await;
    let id = enqueue(&s, "long", 1, json!({})).await.remove(0);
    let mut ws = open(&s.ws_url(""), None).await;
    subscribe(&mut ws, "long", 1, json!({"lease_seconds": 2})).await;
    let f = next(&mut ws).await;
    assert_eq!(f["id"].as_str(), Some(id.as_str()));
    // Held for 3 s on a 2 s lease: each heartbeat extends it by the lease again.
    for _ in 0..6 {
        tokio::time::sleep(Duration::from_millis(500)).await;
        send(&mut ws, json!({"op": "heartbeat", "id": id})).await;
        let l = next(&mut ws).await;
        assert_eq!(
            (l["op"].as_str(), l["id"].as_str(), l["cancel_requested"].as_bool()),
            (Some("lease"), Some(id.as_str()), Some(false)),
            "{l}"
        );
    }
    send(&mut ws, json!({"op": "heartbeat", "id": id, "lease_seconds": 30})).await;
    let l = next(&mut ws).await;
    let until = chrono::DateTime::parse_from_rfc3339(l["lease_until"].as_str().unwrap()).unwrap();
    assert!(until > chrono::Utc::now() + chrono::Duration::seconds(25), "{l}");
    send(&mut ws, json!({"op": "progress", "id": id, "percent": 40, "stage": "halfway"})).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let j = job_status(&s, &id).await;
    assert_eq!((j["status"].as_str(), j["attempts"].as_u64()), (Some("running"), Some(1)), "still held: {j}");
    let r = s.client.get(s.url(&format!("/api/progress/{id}"))).send().await.unwrap();
    let (st, p) = split(r).await;
    assert_eq!((st, p["progress"].as_f64()), (200, Some(40.0)), "{p}");
    // A job cancelled while running is reported by the next heartbeat, and ends cancelled.
    let (st, b) = s.delete(&format!("/api/jobs/{id}")).await;
    assert_eq!(st, 200, "{b}");
    send(&mut ws, json!({"op": "heartbeat", "id": id})).await;
    assert_eq!(next(&mut ws).await["cancel_requested"], true);
    send(&mut ws, json!({"op": "complete", "id": id})).await;
    assert_eq!(next(&mut ws).await["status"], "cancelled");
}

#[tokio::test]
async fn ws_worker_closing_the_socket_gives_its_jobs_back_at_once() {
    let s = server(false).await;
    let ids: HashSet<String> = enqueue(&s, "back", 3, json!({})).await.into_iter().collect();
    let mut ws = open(&s.ws_url(""), None).await;
    subscribe(&mut ws, "back", 3, json!({"worker_id": "first"})).await;
    for _ in 0..3 {
        assert_eq!(next(&mut ws).await["op"], "job");
    }
    ws.close(None).await.unwrap();
    drop(ws);
    // Long before their 60 s leases would run out, another worker gets them.
    let started = std::time::Instant::now();
    let mut other = open(&s.ws_url(""), None).await;
    subscribe(&mut other, "back", 10, json!({"worker_id": "second"})).await;
    let mut again = HashSet::new();
    while again.len() < 3 {
        let f = next(&mut other).await;
        assert_eq!((f["op"].as_str(), f["worker_id"].as_str(), f["attempts"].as_u64()), (Some("job"), Some("second"), Some(2)), "{f}");
        again.insert(f["id"].as_str().unwrap().to_string());
    }
    assert_eq!(again, ids);
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
    let j = job_status(&s, ids.iter().next().unwrap()).await;
    assert_eq!(j["errors"][0]["error"], "lease expired", "the first attempt is counted: {j}");
}

#[tokio::test]
async fn ws_worker_needs_an_admin_key() {
    let s = server(true).await;
    let get = |key: Option<&'static str>, origin: Option<&'static str>| {
        let mut r = s.client.get(s.url("/ws/worker"));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        async move { split(r.send().await.unwrap()).await }
    };
    let (st, b) = get(Some(READER), None).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden");
    let (st, b) = get(None, None).await;
    assert_eq!(assert_error(st, &b, 401), "unauthorized");
    let (st, b) = get(Some(ADMIN), None).await;
    assert_eq!(assert_error(st, &b, 400), "bad_request", "an admin key gets as far as the upgrade");
    let (st, b) = get(Some(ADMIN), Some("https://evil.example")).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden", "a foreign page cannot open it");
    let r = s.client.post(s.url("/api/auth/tokens")).bearer_auth(ADMIN).json(&json!({"user_id": "alice"})).send().await.unwrap();
    let user = split(r).await.1["token"].as_str().unwrap().to_string();
    let r = s.client.get(s.url("/ws/worker")).bearer_auth(&user).send().await.unwrap();
    let (st, b) = split(r).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden");
    let r = s.client.post(s.url("/api/auth/stream-ticket")).bearer_auth(READER).send().await.unwrap();
    let ticket = split(r).await.1["ticket"].as_str().unwrap().to_string();
    let (st, b) = split(s.client.get(s.url(&format!("/ws/worker?ticket={ticket}"))).send().await.unwrap()).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden", "a read-only key's ticket is read-only");
    // An admin key's socket works.
    let mut ws = open(&s.ws_url(""), Some(ADMIN)).await;
    subscribe(&mut ws, "keyed", 1, json!({})).await;
    // The route is in the OpenAPI document.
    let doc = split(s.client.get(s.url("/openapi.json")).send().await.unwrap()).await.1;
    let responses = &doc["paths"]["/ws/worker"]["get"]["responses"];
    for code in ["101", "400", "401", "403"] {
        assert!(responses.get(code).is_some(), "{code} missing: {responses}");
    }
}

#[tokio::test]
async fn ws_worker_bad_frames_get_errors_naming_the_field_and_a_flood_closes() {
    let s = server(false).await;
    let mut ws = open(&s.ws_url(""), None).await;
    let cases = [
        (json!("{nope"), "malformed_json", None),
        (json!({"op": "complete", "id": "j1"}), "bad_request", None),
        (json!({"op": "subscribe", "credit": 0}), "invalid_field", Some("credit")),
        (json!({"op": "subscribe", "credit": 5, "queues": ["bad queue!"]}), "invalid_field", Some("queues[0]")),
        (json!({"op": "subscribe", "credit": 5, "lease_seconds": 0}), "invalid_field", Some("lease_seconds")),
        (json!({"op": "subscribe", "credit": 5, "names": ["hearth.webhook"]}), "invalid_field", Some("names[0]")),
        (json!({"op": "jump", "id": "j1"}), "invalid_field", Some("op")),
        (json!({"op": "progress", "id": "j1", "percent": "half"}), "invalid_field", Some("percent")),
    ];
    for (frame, code, field) in cases {
        let text = frame.as_str().map(str::to_string).unwrap_or_else(|| frame.to_string());
        ws.send(Message::Text(text.clone().into())).await.unwrap();
        let e = next(&mut ws).await;
        assert_eq!((e["op"].as_str(), e["code"].as_str(), e["field"].as_str()), (Some("error"), Some(code), field), "{text} -> {e}");
    }
    ws.send(Message::Binary(vec![1, 2, 3].into())).await.unwrap();
    assert_eq!(next(&mut ws).await["code"], "malformed_json");
    // Still open: a good subscription works, and frames about jobs it does not hold are refused.
    subscribe(&mut ws, "bad", 2, json!({})).await;
    send(&mut ws, json!({"op": "complete", "id": "not-mine"})).await;
    let e = next(&mut ws).await;
    assert_eq!((e["code"].as_str(), e["id"].as_str()), (Some("conflict"), Some("not-mine")), "{e}");
    // Frames about jobs it does not hold are answered, and are no flood: a heartbeat may
    // cross its job's complete.
    for _ in 0..150 {
        send(&mut ws, json!({"op": "heartbeat", "id": "not-mine"})).await;
        assert_eq!(next(&mut ws).await["code"], "conflict");
    }
    send(&mut ws, json!({"op": "subscribe", "credit": 3})).await;
    assert_eq!(next(&mut ws).await["code"], "bad_request", "one subscription per connection");
    let id = enqueue(&s, "bad", 1, json!({})).await.remove(0);
    assert_eq!(next(&mut ws).await["id"].as_str(), Some(id.as_str()));
    send(&mut ws, json!({"op": "fail", "id": id, "error": "x".repeat(70_000)})).await;
    let e = next(&mut ws).await;
    assert_eq!((e["field"].as_str(), e["id"].as_str()), (Some("error"), Some(id.as_str())), "{e}");
    send(&mut ws, json!({"op": "complete", "id": id})).await;
    assert_eq!(next(&mut ws).await["status"], "completed", "a refused end leaves the job held: it can be ended again");
    // A flood of bad frames closes the socket with the reason.
    for _ in 0..100 {
        ws.send(Message::Text("nope".into())).await.unwrap();
    }
    let close = closed(&mut ws).await;
    assert_eq!(close.code, CloseCode::Policy);
    assert!(close.reason.contains("bad frames"), "{}", close.reason);
}

#[tokio::test]
async fn ws_worker_an_ack_survives_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("HEARTH__MODULES__SEARCH__ENABLED", "false"), ("HEARTH_API_KEY", ADMIN)];
    let mut child = Child::spawn(dir.path(), &env).await;
    let client = reqwest::Client::new();
    let jobs: Vec<Value> = (0..40).map(|i| json!({"name": "k", "queue": "kill", "payload": i})).collect();
    let r = client.post(format!("{}/api/jobs/batch", child.base)).bearer_auth(ADMIN).json(&jobs).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let mut ws = open(&child.base.replace("http://", "ws://"), Some(ADMIN)).await;
    subscribe(&mut ws, "kill", 40, json!({})).await;
    let mut out = Vec::new();
    while out.len() < 40 {
        let f = next(&mut ws).await;
        out.push(f["id"].as_str().unwrap().to_string());
    }
    // Complete them all, and SIGKILL hearth as soon as the first acks arrive.
    for id in &out {
        send(&mut ws, json!({"op": "complete", "id": id, "result": "done"})).await;
    }
    let mut acked = vec![next(&mut ws).await];
    while let Some(f) = next_within(&mut ws, Duration::from_millis(1)).await {
        acked.push(f);
    }
    child.kill();
    let acked: Vec<String> = acked.iter().filter(|f| f["op"] == "ack").map(|f| f["id"].as_str().unwrap().to_string()).collect();
    assert!(!acked.is_empty());
    let child = Child::spawn(dir.path(), &env).await;
    for id in &acked {
        let r = client.get(format!("{}/api/jobs/{id}", child.base)).bearer_auth(ADMIN).send().await.unwrap();
        let j: Value = r.json().await.unwrap();
        assert_eq!((j["status"].as_str(), j["result"].as_str()), (Some("completed"), Some("done")), "acknowledged, so durable: {j}");
    }
}

#[tokio::test]
async fn ws_worker_a_frame_over_the_body_limit_closes_with_1009() {
    let s = TestServer::start_with(|c| {
        c.server.body_limit = 4096;
        c.job_queue.workers.clear();
        c.modules.search.enabled = false;
    })
    .await;
    let mut ws = open(&s.ws_url(""), None).await;
    subscribe(&mut ws, "big", 1, json!({})).await;
    let big = json!({"op": "progress", "id": "x", "percent": 1, "stage": "s".repeat(5000)});
    ws.send(Message::Text(big.to_string().into())).await.unwrap();
    let close = closed(&mut ws).await;
    assert_eq!(close.code, CloseCode::Size);
    assert!(close.reason.contains("4096"), "{}", close.reason);
}
