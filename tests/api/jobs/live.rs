//! The live job event stream (`/ws/jobs`, `GET /api/jobs/events`), stream tickets, and
//! the bulk operations on a queue (`retry_dead`, purge).

use crate::common::{TestServer, assert_error, split};
use crate::foundation::{ADMIN, READER, with_keys};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// A server with an admin and a read-only key, no in-process workers.
async fn keyed() -> TestServer {
    TestServer::start_with(|c| {
        with_keys(c);
        c.job_queue.workers.clear();
        c.modules.search.enabled = false;
    })
    .await
}

async fn call(s: &TestServer, method: &str, path: &str, body: Option<Value>, key: Option<&str>) -> (u16, Value) {
    let mut r = s.client.request(method.parse().unwrap(), s.url(path));
    if let Some(b) = body {
        r = r.json(&b);
    }
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    split(r.send().await.unwrap()).await
}

async fn ticket(s: &TestServer, key: &str) -> String {
    let (st, b) = call(s, "POST", "/api/auth/stream-ticket", None, Some(key)).await;
    assert_eq!(st, 200, "{b}");
    b["ticket"].as_str().unwrap().to_string()
}

async fn enqueue(s: &TestServer, body: Value) -> String {
    let (st, b) = call(s, "POST", "/api/jobs", Some(body), Some(ADMIN)).await;
    assert_eq!(st, 201, "{b}");
    b["job_id"].as_str().unwrap().to_string()
}

/// Claims one job of `queue` and fails it for good: it is dead.
async fn make_dead(s: &TestServer, queue: &str) -> String {
    let id = enqueue(s, json!({"name": "flaky", "queue": queue, "max_attempts": 1})).await;
    let (st, b) = call(s, "POST", "/api/jobs/claim", Some(json!({"queues": [queue], "worker_id": "w", "max": 1})), Some(ADMIN)).await;
    assert_eq!((st, b[0]["id"].as_str()), (200, Some(id.as_str())), "{b}");
    let (st, b) = call(s, "POST", &format!("/api/jobs/{id}/fail"), Some(json!({"worker_id": "w", "error": "boom"})), Some(ADMIN)).await;
    assert_eq!((st, b["status"].as_str()), (200, Some("dead")), "{b}");
    id
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next frame of `ws` as (event, data), waiting at most 10 s.
async fn next_frame(ws: &mut Ws) -> (String, Value) {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(10), ws.next()).await.expect("a frame within 10 s").expect("open").expect("ok");
        if let Message::Text(t) = msg {
            let v: Value = serde_json::from_str(&t).unwrap();
            return (v["event"].as_str().unwrap().to_string(), v["data"].clone());
        }
    }
}

#[tokio::test]
async fn the_websocket_carries_each_step_of_the_queues_asked_for() {
    let s = keyed().await;
    let t = ticket(&s, READER).await;
    let (mut ws, _) = connect_async(s.ws_url(&format!("/ws/jobs?queue=live,other2&ticket={t}"))).await.expect("a read-only key may watch");
    enqueue(&s, json!({"name": "ignored", "queue": "elsewhere"})).await;
    let dead = make_dead(&s, "live").await;
    let mut seen = Vec::new();
    while seen.len() < 4 {
        let (event, data) = next_frame(&mut ws).await;
        assert_eq!(data["queue"], "live", "only the queues asked for: {event} {data}");
        assert!(data.get("payload").is_none(), "a summary, not the job: {data}");
        seen.push((event, data));
    }
    let events: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(events, ["job.enqueued", "job.started", "job.failed", "job.dead"]);
    let (_, last) = &seen[3];
    assert_eq!((last["id"].as_str(), last["status"].as_str(), last["error"].as_str()), (Some(dead.as_str()), Some("dead"), Some("boom")));
    assert_eq!((last["attempts"].as_u64(), last["name"].as_str()), (Some(1), Some("flaky")));

    let (st, b) = call(&s, "POST", &format!("/api/jobs/{dead}/retry"), None, Some(ADMIN)).await;
    assert_eq!(st, 200, "{b}");
    let (event, data) = next_frame(&mut ws).await;
    assert_eq!((event.as_str(), data["status"].as_str()), ("job.retried", Some("pending")), "{data}");

    let again = connect_async(s.ws_url(&format!("/ws/jobs?ticket={t}"))).await;
    let status = match again {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => r.status().as_u16(),
        other => panic!("a spent ticket must be refused, got {:?}", other.map(|(_, r)| r.status())),
    };
    assert_eq!(status, 401, "a ticket works once");
    ws.send(Message::Close(None)).await.ok();
}

#[tokio::test]
async fn server_sent_events_carry_the_same_steps() {
    let s = keyed().await;
    let r = s.client.get(s.url("/api/jobs/events?queue=sse")).bearer_auth(ADMIN).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut r = r;
    enqueue(&s, json!({"name": "elsewhere", "queue": "not-sse"})).await;
    let id = enqueue(&s, json!({"name": "hello", "queue": "sse"})).await;
    let mut text = String::new();
    while !(text.contains("event: job.enqueued") && text.ends_with("\n\n")) {
        let chunk = tokio::time::timeout(Duration::from_secs(10), r.chunk()).await.expect("an event within 10 s").unwrap().expect("open");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let data = text.lines().find_map(|l| l.strip_prefix("data: ")).expect("a data line");
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!((v["id"].as_str(), v["queue"].as_str(), v["status"].as_str()), (Some(id.as_str()), Some("sse"), Some("pending")), "{text}");
}

#[tokio::test]
async fn activity_mode_sends_counts_per_queue_not_one_frame_per_job() {
    let s = keyed().await;
    let t = ticket(&s, READER).await;
    let (mut ws, _) = connect_async(s.ws_url(&format!("/ws/jobs?queue=busy&every_ms=200&ticket={t}"))).await.expect("open");
    make_dead(&s, "busy").await;
    let jobs: Vec<Value> = (0..50).map(|i| json!({"name": "n", "queue": "busy", "payload": {"i": i}})).collect();
    let (st, b) = call(&s, "POST", "/api/jobs/batch", Some(Value::Array(jobs)), Some(ADMIN)).await;
    assert_eq!(st, 201, "{b}");
    enqueue(&s, json!({"name": "n", "queue": "quiet"})).await;
    // 50 + 1 enqueued, 1 started, 1 failed, 1 dead in "busy", in a few summaries at most.
    let mut totals = std::collections::BTreeMap::<String, u64>::new();
    let mut frames = 0;
    while totals.get("enqueued") != Some(&51) || totals.get("dead") != Some(&1) {
        let (event, data) = next_frame(&mut ws).await;
        assert_eq!(event, "jobs.activity", "{data}");
        let queues = data["queues"].as_object().unwrap();
        assert_eq!(queues.keys().collect::<Vec<_>>(), ["busy"], "only the queue asked for: {data}");
        for (step, n) in queues["busy"].as_object().unwrap() {
            *totals.entry(step.clone()).or_default() += n.as_u64().unwrap();
        }
        frames += 1;
        assert!(frames <= 10, "summaries, not one frame per step: {totals:?}");
    }
    assert_eq!((totals["started"], totals["failed"]), (1, 1), "{totals:?}");
    assert_eq!(totals.len(), 4, "no other steps: {totals:?}");
    // Nothing moves: no frame (the reader is not woken every tick).
    assert!(tokio::time::timeout(Duration::from_millis(700), ws.next()).await.is_err(), "an idle stream stays quiet");
}

#[tokio::test]
async fn user_tokens_never_open_the_job_streams_and_bad_filters_are_400() {
    let s = keyed().await;
    let (_, t) = call(&s, "POST", "/api/auth/tokens", Some(json!({"user_id": "alice"})), Some(ADMIN)).await;
    let user = t["token"].as_str().unwrap().to_string();
    let (st, b) = call(&s, "GET", "/api/jobs/events", None, Some(&user)).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden");
    let user_ticket = ticket(&s, &user).await;
    let (st, b) = call(&s, "GET", &format!("/ws/jobs?ticket={user_ticket}"), None, None).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden", "a user's ticket is a user's: {b}");
    let (st, b) = call(&s, "GET", "/api/jobs/events?queue=bad%20queue!", None, Some(ADMIN)).await;
    assert_eq!(assert_error(st, &b, 400), "invalid_query");
    assert_eq!(b["error"]["field"], "queue", "{b}");
    for bad in ["0", "99", "60001", "soon"] {
        let (st, b) = call(&s, "GET", &format!("/api/jobs/events?every_ms={bad}"), None, Some(ADMIN)).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_query", "every_ms={bad}: {b}");
        assert_eq!(b["error"]["field"], "every_ms", "{b}");
    }
    let (st, b) = call(&s, "GET", "/ws/jobs?ticket=htk1.forged.x", None, None).await;
    assert_eq!(assert_error(st, &b, 401), "unauthorized");
    let (st, b) = call(&s, "POST", "/api/auth/stream-ticket", None, None).await;
    assert_eq!(assert_error(st, &b, 401), "unauthorized", "a ticket needs a credential");
    let (st, b) = call(&s, "POST", "/api/auth/stream-ticket", None, Some(READER)).await;
    assert_eq!((st, b["scope"].as_str()), (200, Some("read_only")), "{b}");
}

#[tokio::test]
async fn retry_dead_revives_every_dead_job_of_one_queue() {
    let s = keyed().await;
    let mut dead = Vec::new();
    for _ in 0..3 {
        dead.push(make_dead(&s, "bulk").await);
    }
    let other = make_dead(&s, "bulk-other").await;
    let (st, b) = call(&s, "POST", "/api/queues/bulk/retry_dead", None, Some(READER)).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden", "admin only");
    let (st, b) = call(&s, "POST", "/api/queues/bulk/retry_dead", None, Some(ADMIN)).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b, json!({"queue": "bulk", "count": 3, "skipped": 0, "more": false}));
    for id in &dead {
        let (_, j) = call(&s, "GET", &format!("/api/jobs/{id}"), None, Some(ADMIN)).await;
        assert_eq!((j["status"].as_str(), j["attempts"].as_u64()), (Some("pending"), Some(0)), "{j}");
    }
    let (_, j) = call(&s, "GET", &format!("/api/jobs/{other}"), None, Some(ADMIN)).await;
    assert_eq!(j["status"], "dead", "another queue is untouched");
    let (_, b) = call(&s, "POST", "/api/queues/bulk/retry_dead", None, Some(ADMIN)).await;
    assert_eq!(b["count"], 0, "nothing left to retry: {b}");
    let (st, b) = call(&s, "POST", "/api/queues/bad%20queue!/retry_dead", None, Some(ADMIN)).await;
    assert_eq!(assert_error(st, &b, 400), "invalid_field");
}

#[tokio::test]
async fn purge_deletes_completed_or_dead_jobs_of_one_queue() {
    let s = keyed().await;
    let dead = make_dead(&s, "purge").await;
    let done = enqueue(&s, json!({"name": "quick", "queue": "purge"})).await;
    let (_, b) = call(&s, "POST", "/api/jobs/claim", Some(json!({"queues": ["purge"], "worker_id": "w", "max": 1})), Some(ADMIN)).await;
    assert_eq!(b[0]["id"].as_str(), Some(done.as_str()));
    let (st, _) = call(&s, "POST", &format!("/api/jobs/{done}/complete"), Some(json!({"worker_id": "w"})), Some(ADMIN)).await;
    assert_eq!(st, 200);
    let waiting = enqueue(&s, json!({"name": "later", "queue": "purge"})).await;

    let (st, b) = call(&s, "DELETE", "/api/queues/purge/jobs?status=completed", None, Some(READER)).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden", "admin only");
    for bad in ["", "?status=pending", "?status=nope"] {
        let (st, b) = call(&s, "DELETE", &format!("/api/queues/purge/jobs{bad}"), None, Some(ADMIN)).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_query", "{bad}: {b}");
        assert_eq!(b["error"]["field"], "status", "{b}");
    }
    let (st, b) = call(&s, "DELETE", "/api/queues/purge/jobs?status=completed", None, Some(ADMIN)).await;
    assert_eq!((st, &b), (200, &json!({"queue": "purge", "count": 1, "skipped": 0, "more": false})));
    let (st, _) = call(&s, "GET", &format!("/api/jobs/{done}"), None, Some(ADMIN)).await;
    assert_eq!(st, 404, "the completed job is gone");
    let (_, q) = call(&s, "GET", "/api/queues", None, Some(ADMIN)).await;
    let q = q.as_array().unwrap().iter().find(|q| q["name"] == "purge").unwrap().clone();
    assert_eq!((q["counts"]["completed"].as_u64(), q["counts"]["dead"].as_u64()), (Some(0), Some(1)), "{q}");
    let (_, b) = call(&s, "DELETE", "/api/queues/purge/jobs?status=dead", None, Some(ADMIN)).await;
    assert_eq!(b["count"], 1, "{b}");
    let (st, _) = call(&s, "GET", &format!("/api/jobs/{dead}"), None, Some(ADMIN)).await;
    assert_eq!(st, 404, "the dead job is gone");
    let (_, j) = call(&s, "GET", &format!("/api/jobs/{waiting}"), None, Some(ADMIN)).await;
    assert_eq!(j["status"], "pending", "a waiting job is never purged");
}
