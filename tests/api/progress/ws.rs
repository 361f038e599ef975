//! `/ws/progress` with a real WebSocket client (tokio-tungstenite).

use super::{create, patch};
use crate::common::TestServer;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, connect_async, tungstenite::Message};

type Ws = WebSocketStream<MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(s: &TestServer, query: &str) -> Ws {
    let (ws, _) = connect_async(s.ws_url(&format!("/ws/progress{query}"))).await.expect("ws connects");
    ws
}

async fn send(ws: &mut Ws, v: Value) {
    ws.send(Message::Text(v.to_string().into())).await.unwrap();
}

/// The next JSON text frame (pings and pongs skipped), within 5 s.
async fn next(ws: &mut Ws) -> Value {
    loop {
        let m = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame in time").expect("open").unwrap();
        match m {
            Message::Text(t) => return serde_json::from_str(t.as_str()).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected frame {other:?}"),
        }
    }
}

/// Next frames until one has `event`; returns it.
async fn next_event(ws: &mut Ws, event: &str) -> Value {
    loop {
        let v = next(ws).await;
        if v["event"] == event {
            return v;
        }
    }
}

async fn subscribe(ws: &mut Ws, id: &str) {
    send(ws, json!({"action": "subscribe", "progress_id": id})).await;
    assert_eq!(next(ws).await, json!({"event": "subscribed", "data": {"progress_id": id}}));
}

#[tokio::test]
async fn subscribers_get_the_current_state_then_every_change_in_the_seed_shape() {
    let s = TestServer::start().await;
    create(&s, "w1", json!(["upload", "process"])).await;
    patch(&s, "w1", json!({"progress": 20})).await;
    let mut ws = connect(&s, "").await;
    subscribe(&mut ws, "w1").await;
    let first = next(&mut ws).await;
    assert_eq!(first["event"], "progress.update");
    assert_eq!((first["data"]["id"].as_str(), first["data"]["progress"].as_f64()), (Some("w1"), Some(20.0)));
    assert_eq!((first["data"]["stage"].as_str(), first["data"]["status"].as_str()), (Some("upload"), Some("processing")));
    assert_eq!(first.as_object().unwrap().len(), 2, "exactly {{event, data}}: {first}");

    patch(&s, "w1", json!({"progress": 50, "stage": "upload"})).await;
    let u = next(&mut ws).await;
    assert_eq!((u["event"].as_str(), u["data"]["progress"].as_f64()), (Some("progress.update"), Some(50.0)));
    s.post("/api/progress/w1/advance", json!({})).await;
    let st = next(&mut ws).await;
    assert_eq!((st["event"].as_str(), st["data"]["stage"].as_str()), (Some("progress.stage"), Some("process")));
    // Every change also arrives as `progress.update`, with its kind, for seed clients.
    let alias = next(&mut ws).await;
    assert_eq!(alias, json!({"event": "progress.update", "kind": "stage", "data": st["data"].clone()}));
    s.post("/api/progress/w1/complete", json!({"result": {"ok": true}})).await;
    let done = next(&mut ws).await;
    assert_eq!((done["event"].as_str(), done["data"]["status"].as_str()), (Some("progress.completed"), Some("completed")));
    assert_eq!(done["data"]["result"], json!({"ok": true}));
    let alias = next(&mut ws).await;
    assert_eq!(alias, json!({"event": "progress.update", "kind": "completed", "data": done["data"].clone()}));

    for (id, path, body, event) in
        [("w2", "fail", json!({"error": "boom"}), "progress.failed"), ("w3", "cancel", json!({}), "progress.cancelled")]
    {
        create(&s, id, json!([])).await;
        subscribe(&mut ws, id).await;
        assert_eq!(next(&mut ws).await["data"]["status"], "pending");
        s.post(&format!("/api/progress/{id}/{path}"), body).await;
        let e = next(&mut ws).await;
        assert_eq!((e["event"].as_str(), e["data"]["id"].as_str()), (Some(event), Some(id)));
        let alias = next(&mut ws).await;
        assert_eq!((alias["event"].as_str(), alias["kind"].as_str()), (Some("progress.update"), event.strip_prefix("progress.")));
    }
}

#[tokio::test]
async fn star_unsubscribe_and_bad_commands() {
    let s = TestServer::start().await;
    create(&s, "a", json!([])).await;
    patch(&s, "a", json!({"progress": 1})).await;
    let mut ws = connect(&s, "").await;
    subscribe(&mut ws, "*").await;
    // The current state of running progress first.
    let cur = next(&mut ws).await;
    assert_eq!((cur["data"]["id"].as_str(), cur["data"]["progress"].as_f64()), (Some("a"), Some(1.0)));
    create(&s, "b", json!([])).await;
    patch(&s, "b", json!({"progress": 7})).await;
    let e = next(&mut ws).await;
    assert_eq!((e["data"]["id"].as_str(), e["data"]["progress"].as_f64()), (Some("b"), Some(7.0)));

    send(&mut ws, json!({"action": "unsubscribe", "progress_id": "*"})).await;
    assert_eq!(next(&mut ws).await["event"], "unsubscribed");
    subscribe(&mut ws, "b").await;
    assert_eq!(next(&mut ws).await["data"]["progress"], 7.0);
    patch(&s, "a", json!({"progress": 2})).await;
    patch(&s, "b", json!({"progress": 8})).await;
    let e = next(&mut ws).await;
    assert_eq!((e["data"]["id"].as_str(), e["data"]["progress"].as_f64()), (Some("b"), Some(8.0)), "a is no longer followed");

    for (bad, code) in [
        (json!({"action": "dance", "progress_id": "a"}), "invalid_field"),
        (json!({"action": "subscribe"}), "invalid_field"),
        (json!({"action": "subscribe", "progress_id": "bad id!"}), "invalid_field"),
    ] {
        send(&mut ws, bad.clone()).await;
        let e = next(&mut ws).await;
        assert_eq!((e["event"].as_str(), e["data"]["code"].as_str()), (Some("error"), Some(code)), "{bad} -> {e}");
    }
    ws.send(Message::Text("{not json".into())).await.unwrap();
    assert_eq!(next(&mut ws).await["data"]["code"], "malformed_json");
    // The connection still works after errors.
    patch(&s, "b", json!({"progress": 9})).await;
    assert_eq!(next(&mut ws).await["data"]["progress"], 9.0);
}

#[tokio::test]
async fn user_tokens_subscribe_to_ids_but_not_to_everything() {
    let s = TestServer::start().await;
    create(&s, "u1", json!([])).await;
    let (_, t) = s.post("/api/auth/tokens", json!({"user_id": "alice"})).await;
    let token = t["token"].as_str().unwrap().to_string();
    let mut ws = connect(&s, &format!("?token={token}")).await;
    send(&mut ws, json!({"action": "subscribe", "progress_id": "*"})).await;
    let e = next(&mut ws).await;
    assert_eq!((e["event"].as_str(), e["data"]["code"].as_str()), (Some("error"), Some("forbidden")));
    subscribe(&mut ws, "u1").await;
    assert_eq!(next(&mut ws).await["data"]["id"], "u1");
}

#[tokio::test]
async fn a_slow_client_does_not_slow_the_others_and_still_gets_the_end() {
    let s = TestServer::start().await;
    create(&s, "busy", json!(["a", "b"])).await;
    let meta = json!({"padding": "x".repeat(4000)});
    let (st, _) = s.post("/api/progress", json!({"id": "big", "stages": ["a", "b"], "metadata": meta})).await;
    assert_eq!(st, 201);
    let mut slow = connect(&s, "").await;
    subscribe(&mut slow, "big").await;
    let mut fast = connect(&s, "").await;
    subscribe(&mut fast, "big").await;
    assert_eq!(next(&mut fast).await["data"]["id"], "big");
    // `fast` reads as frames come; `slow` reads nothing until the end.
    let fast_reader = tokio::spawn(async move { next_event(&mut fast, "progress.completed").await });
    // ~4 KB per frame: far more than socket buffers hold while `slow` does not read.
    let tracker = s.app.progress.clone();
    let writer = tokio::spawn(async move {
        for i in 0..4000u32 {
            tracker.update("big", (i % 100) as f64, None).await.unwrap();
        }
        tracker.update("big", 50.0, Some("b")).await.unwrap();
        for i in 0..2000u32 {
            tracker.update("big", (i % 100) as f64, None).await.unwrap();
        }
        tracker.complete("big", None).await.unwrap();
    });
    tokio::time::timeout(Duration::from_secs(20), writer).await.expect("updates are never blocked by subscribers").unwrap();
    let done = tokio::time::timeout(Duration::from_secs(10), fast_reader).await.expect("fast client is not held up").unwrap();
    assert_eq!(done["data"]["id"], "big");
    // The slow client now reads: it may have skipped percents, but sees the stage and the end.
    let mut events = Vec::new();
    loop {
        let v = next(&mut slow).await;
        let ev = v["event"].as_str().unwrap().to_string();
        events.push(ev.clone());
        if ev == "progress.completed" {
            break;
        }
    }
    assert!(events.len() < 6000, "intermediate percents were coalesced ({} frames)", events.len());
    assert!(events.iter().any(|e| e == "progress.stage"), "stage events are never skipped: {events:?}");
}

#[tokio::test]
async fn sockets_close_on_shutdown() {
    let s = TestServer::start().await;
    let mut ws = connect(&s, "").await;
    subscribe(&mut ws, "*").await;
    s.app.background().shutdown.cancel();
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match ws.next().await {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(_)) => continue,
            }
        }
    })
    .await;
    assert!(end.is_ok(), "socket did not close at shutdown");
}
