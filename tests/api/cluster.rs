//! Two hearth nodes sharing one redis-server act as one service (the parts with a Redis
//! backend so far: the event transport and progress). Each test starts its own
//! redis-server (append-only, `appendfsync always`) on a free port.

use crate::common::TestServer;
use futures::{SinkExt, StreamExt};
use hearth::cluster::test_server::RedisServer;
use serde_json::{Value, json};
use std::time::Duration;
use tokio_tungstenite::{connect_async, tungstenite::Message};

/// A node of a cluster on `redis` (events and progress in Redis, the rest embedded).
async fn node(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::start_with(move |c| {
        c.redis.url = Some(url);
        c.events.transport = hearth::events::TransportKind::Redis;
        c.progress.store = hearth::progress::config::ProgressStoreKind::Redis;
        c.modules.search.enabled = false;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_progress_made_on_one_node_is_read_and_followed_live_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = (node(&redis).await, node(&redis).await);
    let (st, body) = a.post("/api/progress", json!({"id": "job-1", "stages": ["upload", "process"]})).await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = b.get("/api/progress/job-1").await;
    assert_eq!(st, 200, "node B answers about a progress node A created: {body}");

    let (mut ws, _) = connect_async(b.ws_url("/ws/progress")).await.unwrap();
    ws.send(Message::Text(json!({"action": "subscribe", "progress_id": "job-1"}).to_string().into())).await.unwrap();
    let mut updates = Vec::new();
    let recv = async {
        loop {
            let Some(Ok(Message::Text(t))) = ws.next().await else { continue };
            let v: Value = serde_json::from_str(t.as_str()).unwrap();
            if v["event"] == "subscribed" {
                // Now change it on A, several times.
                for p in [10, 40, 70, 100] {
                    let (st, body) = a.patch("/api/progress/job-1", json!({"progress": p, "stage": "upload"})).await;
                    assert_eq!(st, 200, "{body}");
                }
                let (st, body) = a.post("/api/progress/job-1/complete", json!({"result": {"ok": true}})).await;
                assert_eq!(st, 200, "{body}");
                continue;
            }
            updates.push((v["event"].as_str().unwrap_or("").to_string(), v["data"]["version"].as_u64().unwrap_or(0)));
            if v["event"] == "progress.completed" {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(15), recv).await.expect("node B's WebSocket sees node A's changes through to the end");
    let versions: Vec<u64> = updates.iter().map(|u| u.1).collect();
    assert!(versions.windows(2).all(|w| w[0] < w[1]), "in order, never backwards: {updates:?}");
    let (_, on_b) = b.get("/api/progress/job-1").await;
    assert_eq!(on_b["status"], "completed");
}
