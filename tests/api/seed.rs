//! The seed's REST and WebSocket examples, replayed as written (`tests/seed/api/`).
//!
//! Each block is parsed at test time: `# Title`, `METHOD /path`, an optional `Body:` (the
//! seed's JSON; its `{...}` placeholder is sent as `{}`) and `Response:`, whose shape is
//! checked (`{Progress}`: an object; `[{Job}]`: a list; `{job_id: "...", status:
//! "pending"}`: those keys, with the literal values). `{id}` in a path is the id the
//! block's first request created. The seed lists each module's contract, not a script,
//! so where its order would act on something already gone (fail after complete, similar
//! after delete) the test says how it orders them.

use crate::common::TestServer;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::{connect_async, tungstenite::Message};

const PROGRESS: &str = include_str!("../seed/api/progress.yaml");
const PROGRESS_WS: &str = include_str!("../seed/api/progress_ws.ts");
const NOTIFICATION: &str = include_str!("../seed/api/notification.yaml");
const JOB_QUEUE: &str = include_str!("../seed/api/job_queue.yaml");
const EXPORT: &str = include_str!("../seed/api/export.yaml");
const SEARCH: &str = include_str!("../seed/api/search.yaml");

/// One request of a seed block.
#[derive(Debug, Clone)]
struct Example {
    title: String,
    method: String,
    path: String,
    body: Option<Value>,
    response: String,
}

/// Parses a seed API block.
fn examples(block: &str) -> Vec<Example> {
    let mut out: Vec<Example> = Vec::new();
    let mut lines = block.lines().peekable();
    while let Some(line) = lines.next() {
        if let Some(title) = line.strip_prefix("# ") {
            let request = lines.next().expect("a request line after the title");
            let (method, path) = request.split_once(' ').expect("METHOD /path");
            out.push(Example { title: title.into(), method: method.into(), path: path.into(), body: None, response: String::new() });
        } else if let Some(first) = line.strip_prefix("Body: ") {
            let mut text = first.to_string();
            while text.matches('{').count() > text.matches('}').count() {
                text.push('\n');
                text.push_str(lines.next().expect("the body goes on"));
            }
            let text = text.replace("{...}", "{}");
            out.last_mut().expect("a request").body = Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}")));
        } else if let Some(shape) = line.strip_prefix("Response: ") {
            out.last_mut().expect("a request").response = shape.into();
        }
    }
    out
}

/// The example titled `title`.
fn example<'a>(all: &'a [Example], title: &str) -> &'a Example {
    all.iter().find(|e| e.title == title).unwrap_or_else(|| panic!("no example {title:?} in {all:?}"))
}

/// Sends `e` (with `{id}` replaced by `id`) and checks the answer against its `Response:`.
async fn replay(s: &TestServer, e: &Example, id: &str) -> Value {
    let path = e.path.replace("{id}", id);
    let method: reqwest::Method = e.method.parse().unwrap();
    let mut req = s.client.request(method, s.url(&path));
    if let Some(b) = &e.body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let bytes = r.bytes().await.unwrap();
    assert!((200..300).contains(&status), "{} {} -> {status}: {}", e.method, path, String::from_utf8_lossy(&bytes));
    if e.response == "binary file" {
        assert!(!bytes.is_empty(), "{}: an empty file", e.title);
        return Value::String(String::from_utf8_lossy(&bytes).into_owned());
    }
    let body: Value = serde_json::from_slice(&bytes).unwrap_or_else(|err| panic!("{}: not JSON ({err})", e.title));
    check_shape(&e.response, &body, &e.title);
    body
}

/// Checks `body` against the seed's response notation.
fn check_shape(shape: &str, body: &Value, title: &str) {
    let inner = shape.trim().strip_prefix('{').and_then(|s| s.strip_suffix('}'));
    if shape.starts_with('[') {
        assert!(body.is_array(), "{title}: expected a list, got {body}");
    } else if let Some(inner) = inner.filter(|i| i.starts_with(|c: char| c.is_ascii_uppercase())) {
        assert!(body.is_object(), "{title}: expected a {inner} object, got {body}");
    } else if let Some(inner) = inner {
        for pair in inner.split(',') {
            let (key, value) = pair.split_once(':').expect("key: value");
            let (key, value) = (key.trim(), value.trim());
            let got = body.get(key).unwrap_or_else(|| panic!("{title}: no {key} in {body}"));
            if value != "\"...\"" {
                assert_eq!(got, &serde_json::from_str::<Value>(value).unwrap(), "{title}: {key}");
            }
        }
    } else {
        panic!("{title}: unknown response notation {shape}");
    }
}

#[tokio::test]
async fn progress_rest_examples() {
    let s = TestServer::start().await;
    let all = examples(PROGRESS);
    let created = replay(&s, example(&all, "Create progress"), "").await;
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(id, "optional-id");
    let updated = replay(&s, example(&all, "Update progress"), &id).await;
    assert_eq!((updated["progress"].as_f64(), updated["stage"].as_str()), (Some(50.0), Some("upload")));
    replay(&s, example(&all, "Get progress"), &id).await;
    let done = replay(&s, example(&all, "Complete progress"), &id).await;
    assert_eq!(done["status"], "completed");
    // A completed progress cannot fail: fail a second one, created by the same example
    // without its optional id.
    let mut create = example(&all, "Create progress").clone();
    create.body.as_mut().unwrap().as_object_mut().unwrap().remove("id");
    let other = replay(&s, &create, "").await["id"].as_str().unwrap().to_string();
    let failed = replay(&s, example(&all, "Fail progress"), &other).await;
    assert_eq!((failed["status"].as_str(), failed["error"].as_str()), (Some("failed"), Some("Error message")));
}

/// The seed's WebSocket client, which listens for `progress.update` alone, sees every
/// change through to the end.
#[tokio::test]
async fn progress_websocket_example() {
    let s = TestServer::start().await;
    let (st, _) = s.post("/api/progress", json!({"id": "progress-id", "stages": ["upload", "process"]})).await;
    assert_eq!(st, 201);
    let url = PROGRESS_WS.split('\'').nth(1).expect("the URL in quotes").replace("ws://localhost:8000", &s.ws_url(""));
    let (mut ws, _) = connect_async(url).await.expect("the seed's URL connects");
    let subscribe = js_object(PROGRESS_WS, "JSON.stringify(");
    ws.send(Message::Text(subscribe.to_string().into())).await.unwrap();
    let expected = js_object(PROGRESS_WS, "// Server sends updates\n");
    let (st, _) = s.patch("/api/progress/progress-id", json!({"progress": 50, "stage": "upload"})).await;
    assert_eq!(st, 200);
    s.post("/api/progress/progress-id/advance", json!({})).await;
    s.post("/api/progress/progress-id/complete", json!({})).await;
    let mut updates = Vec::new();
    while updates.last().is_none_or(|u: &Value| u["data"]["status"] != "completed") {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame in time").unwrap().unwrap();
        let Message::Text(t) = m else { continue };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        if v["event"] == "progress.update" {
            updates.push(v);
        }
    }
    let fifty = updates.iter().find(|u| u["data"]["progress"] == 50.0).expect("the 50% update");
    assert_eq!(fifty["event"], expected["event"]);
    for (k, v) in expected["data"].as_object().unwrap() {
        let got = &fifty["data"][k];
        let same = got == v || got.as_f64().is_some_and(|g| Some(g) == v.as_f64());
        assert!(same, "{k}: {got} where the seed's message has {v}");
    }
    let kinds: Vec<&str> = updates.iter().filter_map(|u| u["kind"].as_str()).collect();
    assert_eq!(kinds, ["stage", "completed"], "stage change and end arrive as progress.update: {updates:?}");
}

/// The object literal after `marker` in the seed's TypeScript, as JSON (keys quoted,
/// single quotes made double).
fn js_object(text: &str, marker: &str) -> Value {
    let start = text.find(marker).expect("marker") + marker.len();
    let rest = &text[start..];
    let open = rest.find('{').unwrap();
    let mut depth = 0;
    let mut end = open;
    for (i, c) in rest[open..].char_indices() {
        depth += (c == '{') as i32 - (c == '}') as i32;
        if depth == 0 {
            end = open + i + 1;
            break;
        }
    }
    let mut json = String::new();
    for line in rest[open..end].replace('\'', "\"").lines() {
        let trimmed = line.trim_start();
        match trimmed.split_once(':') {
            Some((key, value)) if key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') && !key.is_empty() => {
                json.push_str(&format!("\"{key}\":{value}"));
            }
            _ => json.push_str(trimmed),
        }
        json.push('\n');
    }
    serde_json::from_str(&json).unwrap_or_else(|e| panic!("{json}: {e}"))
}

#[tokio::test]
async fn notification_examples() {
    // The seed's email channel is configured (its notification block): here an SMTP
    // relay nobody listens on — the send is accepted and the delivery job retries.
    let smtp = format!("smtp://127.0.0.1:{}?tls=none", crate::common::free_port());
    let s = TestServer::start_with(move |c| c.notification.channels.email.smtp_url = Some(smtp)).await;
    // ... and the application's user has an email address.
    let (st, body) = s.put("/api/notifications/preferences/user-123", json!({"email": "user-123@example.com"})).await;
    assert_eq!(st, 200, "{body}");
    let all = examples(NOTIFICATION);
    let sent = replay(&s, example(&all, "Send notification"), "").await;
    let id = sent["notification_id"].as_str().unwrap().to_string();
    replay(&s, example(&all, "Get user notifications"), "").await;
    replay(&s, example(&all, "Mark as read"), &id).await;
    let ws = example(&all, "WebSocket subscription");
    assert_eq!(ws.method, "WS");
    connect_async(s.ws_url(&ws.path)).await.expect("the seed's notification WebSocket connects");
}

#[tokio::test]
async fn job_queue_examples() {
    let s = TestServer::start().await;
    let all = examples(JOB_QUEUE);
    let id = replay(&s, example(&all, "Enqueue job"), "").await["job_id"].as_str().unwrap().to_string();
    let job = replay(&s, example(&all, "Get job status"), &id).await;
    assert_eq!((job["name"].as_str(), job["priority"].as_u64()), (Some("transcribe"), Some(5)));
    // hearth pages job lists: the seed's [{Job}] is the `jobs` of the page (the cursor of
    // the next page beside it and in X-Next-Cursor).
    let mut list = example(&all, "List jobs").clone();
    assert_eq!(list.response, "[{Job}]");
    list.response = "{jobs: \"...\", next_cursor: null}".into();
    let pending = replay(&s, &list, "").await;
    assert!(pending["jobs"].as_array().unwrap().iter().any(|j| j["id"] == id.as_str()), "{pending}");
    replay(&s, example(&all, "Cancel job"), &id).await;
}

#[tokio::test]
async fn export_examples() {
    let s = TestServer::start().await;
    // The example exports the application's transcript 123: store one first.
    let transcript = json!({"id": "123", "title": "Interview", "segments": [
        {"start": 0.0, "end": 2.0, "speaker": "Anna", "text": "Grüße aus München"},
        {"start": 2.0, "end": 4.5, "text": "Zweite Zeile"}]});
    let (st, body) = s.post("/api/transcripts", transcript).await;
    assert!(st == 200 || st == 201, "{body}");
    let all = examples(EXPORT);
    let id = replay(&s, example(&all, "Create export"), "").await["job_id"].as_str().unwrap().to_string();
    let mut rec = Value::Null;
    for _ in 0..500 {
        rec = replay(&s, example(&all, "Get export job"), &id).await;
        if ["completed", "failed", "cancelled"].contains(&rec["status"].as_str().unwrap_or_default()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(rec["status"], "completed", "{rec}");
    let srt = replay(&s, example(&all, "Download export"), &id).await;
    let srt = srt.as_str().unwrap();
    assert_eq!(crate::export::checkers::check_srt(srt.as_bytes()), 2, "{srt}");
    assert!(srt.contains("[Anna] Grüße aus München") && srt.contains("\nZweite Zeile\n"), "the custom cue template: {srt}");
    assert!(rec["filename"].as_str().unwrap_or_default().starts_with("transcript_123"), "{rec}");
    let done = replay(&s, example(&all, "List exports"), "").await;
    assert!(done.as_array().unwrap().iter().any(|e| e["id"] == id.as_str()), "{done}");
    replay(&s, example(&all, "Cancel export"), &id).await;
}

#[tokio::test]
async fn search_examples() {
    let s = TestServer::start().await;
    let all = examples(SEARCH);
    replay(&s, example(&all, "Index document"), "").await;
    replay(&s, example(&all, "Search"), "").await;
    // Similar before delete: after it, the document is gone (404).
    replay(&s, example(&all, "Find similar"), "doc-123").await;
    replay(&s, example(&all, "Delete document"), "doc-123").await;
}

/// Without the model the seed's search (hybrid, no mode) still answers, with keyword
/// results marked degraded.
#[tokio::test]
async fn search_example_without_the_model_is_keyword_search() {
    let empty = tempfile::tempdir().unwrap();
    let dir = empty.path().display().to_string();
    let s = TestServer::start_with(move |c| c.search.embeddings.model_dir = dir).await;
    let all = examples(SEARCH);
    replay(&s, example(&all, "Index document"), "").await;
    let mut search = example(&all, "Search").clone();
    search.body.as_mut().unwrap()["query"] = json!("document content");
    search.body.as_mut().unwrap()["threshold"] = json!(null);
    let found = replay(&s, &search, "").await;
    assert_eq!(found[0]["id"], "doc-123", "{found}");
    assert!(found[0]["degraded"].as_str().unwrap_or_default().contains("model.onnx"), "{found}");
    replay(&s, example(&all, "Search"), "").await;
}
