//! `GET /api/progress/{id}/events` read as a real event stream (reqwest, chunk by chunk).

use super::{create, patch};
use crate::common::{TestServer, assert_error};
use serde_json::{Value, json};
use std::time::Duration;

/// A minimal `text/event-stream` parser over a streaming response.
struct SseReader {
    resp: reqwest::Response,
    buf: String,
}

/// One parsed event.
#[derive(Debug)]
struct SseEvent {
    event: String,
    id: String,
    data: Value,
}

impl SseReader {
    async fn open(s: &TestServer, id: &str) -> SseReader {
        let resp = s.client.get(s.url(&format!("/api/progress/{id}/events"))).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        let ct = resp.headers()["content-type"].to_str().unwrap().to_string();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        SseReader { resp, buf: String::new() }
    }

    /// The next event (comments and keep-alives skipped); `None` when the stream ended.
    async fn next(&mut self) -> Option<SseEvent> {
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
                let (mut event, mut id, mut data) = (String::new(), String::new(), String::new());
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        event = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some(SseEvent { event, id, data: serde_json::from_str(&data).expect("data is JSON") });
            }
            let chunk = tokio::time::timeout(Duration::from_secs(5), self.resp.chunk()).await.expect("a chunk in time").unwrap();
            match chunk {
                Some(c) => self.buf.push_str(std::str::from_utf8(&c).unwrap()),
                None => return None,
            }
        }
    }
}

#[tokio::test]
async fn sse_streams_state_then_changes_and_ends_after_the_terminal_event() {
    let s = TestServer::start().await;
    create(&s, "e1", json!(["a", "b"])).await;
    patch(&s, "e1", json!({"progress": 10})).await;
    let mut r = SseReader::open(&s, "e1").await;
    let first = r.next().await.unwrap();
    assert_eq!((first.event.as_str(), first.data["progress"].as_f64()), ("progress.update", Some(10.0)));
    assert_eq!(first.id, first.data["version"].to_string());
    patch(&s, "e1", json!({"progress": 60})).await;
    let e = r.next().await.unwrap();
    assert_eq!((e.event.as_str(), e.data["progress"].as_f64()), ("progress.update", Some(60.0)));
    s.post("/api/progress/e1/advance", json!({})).await;
    assert_eq!(r.next().await.unwrap().event, "progress.stage");
    s.post("/api/progress/e1/fail", json!({"error": "no space"})).await;
    let end = r.next().await.unwrap();
    assert_eq!((end.event.as_str(), end.data["error"].as_str()), ("progress.failed", Some("no space")));
    assert!(r.next().await.is_none(), "the stream ends after the terminal event");

    // A finished progress answers its final state and ends.
    let mut r = SseReader::open(&s, "e1").await;
    assert_eq!(r.next().await.unwrap().event, "progress.failed");
    assert!(r.next().await.is_none());

    let (st, b) = s.get("/api/progress/none/events").await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
}

#[tokio::test]
async fn sse_ends_at_shutdown() {
    let s = TestServer::start().await;
    create(&s, "e2", json!([])).await;
    let mut r = SseReader::open(&s, "e2").await;
    assert_eq!(r.next().await.unwrap().data["status"], "pending");
    s.app.background().shutdown.cancel();
    assert!(r.next().await.is_none());
}
