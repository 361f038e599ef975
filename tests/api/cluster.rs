//! Two hearth nodes in one test process sharing one redis-server act as one service: the
//! event transport, progress, the cache's L2, exports, notifications and the job queue
//! (`nodes.rs` does the same with two `hearth serve` processes). Each test starts its own
//! redis-server (append-only, `appendfsync always`) on a free port.

use crate::common::TestServer;
use futures::{SinkExt, StreamExt};
use hearth::cache::{CacheValue, Tier};
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
            if v.get("kind").is_some() {
                continue; // the same change again as `progress.update`, for seed clients
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

/// A node whose cache L2 is in `redis` (each node keeps its own L1).
async fn cache_node(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::start_with(move |c| {
        c.redis.url = Some(url);
        c.cache.l2.backend = hearth::cache::config::L2Backend::Redis;
        c.modules.search.enabled = false;
    })
    .await
}

/// What `node` reads under `key`, and from which tier.
async fn read(node: &TestServer, key: &str) -> Option<(String, Tier)> {
    let hit = node.app.cache.lookup(key).await.expect("lookup")?;
    Some((String::from_utf8(hit.value.data().to_vec()).unwrap(), hit.tier))
}

/// Reads `key` on `node` until the answer comes from its L1 (an announcement of the
/// write that is still on its way may drop the first copy); the value read.
async fn settles_in_l1(node: &TestServer, key: &str) -> String {
    for _ in 0..200 {
        if let Some((v, Tier::L1)) = read(node, key).await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{key}: the node never kept an L1 copy");
}

/// Polls until `node` reads `want` under `key` (other nodes' changes arrive by pub/sub).
async fn eventually_reads(node: &TestServer, key: &str, want: Option<&str>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = read(node, key).await.map(|(v, _)| v);
        if got.as_deref() == want {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{key}: node still reads {got:?}, expected {want:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_is_one_cache_across_nodes_and_no_l1_keeps_a_stale_value() {
    let redis = RedisServer::start();
    let (a, b) = (cache_node(&redis).await, cache_node(&redis).await);
    let text = |s: &str| CacheValue::with_content_type(s.as_bytes().to_vec(), "text/plain");
    let tags = ["team:7".to_string()];

    // Set over HTTP on A, read over HTTP on B (from the shared L2), then from B's L1.
    let r = reqwest::Client::new().put(a.url("/api/cache/greeting?ttl=600")).header("content-type", "text/plain").body("one");
    assert_eq!(r.send().await.unwrap().status(), 200);
    let (st, _) = b.get("/api/cache/greeting").await;
    assert_eq!(st, 200, "B reads what A stored");
    assert_eq!(settles_in_l1(&b, "greeting").await, "one", "B holds an L1 copy");

    // An overwrite, a delete and a tag invalidation on A each reach B's L1.
    a.app.cache.set("greeting", text("two"), None, &[]).await.unwrap();
    eventually_reads(&b, "greeting", Some("two")).await;
    a.app.cache.delete("greeting").await.unwrap();
    eventually_reads(&b, "greeting", None).await;
    a.app.cache.set("member", text("x"), None, &tags).await.unwrap();
    assert_eq!(settles_in_l1(&b, "member").await, "x");
    assert_eq!(a.app.cache.invalidate(&tags).await.unwrap(), 1);
    eventually_reads(&b, "member", None).await;
    // And the other way round: B writes, A follows; the totals are the cluster's.
    b.app.cache.set("back", text("from b"), None, &[]).await.unwrap();
    eventually_reads(&a, "back", Some("from b")).await;
    let (sa, sb) = (a.app.cache.get_stats().await.unwrap(), b.app.cache.get_stats().await.unwrap());
    assert_eq!((sa.l2.entries, sb.l2.entries), (1, 1), "both nodes count the one shared entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_off_from_the_change_feed_still_ends_up_reading_the_new_value() {
    let redis = RedisServer::start();
    let (a, b) = (cache_node(&redis).await, cache_node(&redis).await);
    let text = |s: &str| CacheValue::with_content_type(s.as_bytes().to_vec(), "text/plain");
    a.app.cache.set("k", text("old"), None, &[]).await.unwrap();
    assert_eq!(settles_in_l1(&b, "k").await, "old");
    // Cut every subscriber off, then change the value: whether B resubscribed in time to
    // hear about it or treats the gap as "anything changed" (see the unit tests of
    // cache/redis.rs), it must end up reading the new value well before its L1 TTL.
    let mut admin = redis::Client::open(redis.url()).unwrap().get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT").arg("KILL").arg("TYPE").arg("pubsub").query_async(&mut admin).await.unwrap();
    assert!(killed >= 2, "both nodes' subscriptions were cut ({killed})");
    a.app.cache.set("k", text("new"), None, &[]).await.unwrap();
    eventually_reads(&b, "k", Some("new")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exports_and_their_sources_are_shared_by_the_nodes() {
    let redis = RedisServer::start();
    // Files need shared storage too: here an S3 bucket (a real S3-protocol server) both
    // nodes use. The job queue is in Redis as well, and node A runs no in-process workers:
    // what A accepts, B renders.
    let s3 = hearth::export::test_s3::S3Server::start();
    s3.create_bucket("hearth-exports").await;
    let files = s3.config("hearth-exports");
    let start = |url: String, files: hearth::export::config::StorageConfig, workers: bool| {
        TestServer::start_with(move |c| {
            c.redis.url = Some(url);
            c.export.store = hearth::cluster::StoreKind::Redis;
            c.export.storage = files;
            c.job_queue.broker.kind = "redis".into();
            if !workers {
                c.job_queue.workers.clear();
            }
            c.modules.search.enabled = false;
        })
    };
    let a = start(redis.url(), files.clone(), false).await;
    let b = start(redis.url(), files, true).await;
    let (st, body) = a.post("/api/documents", json!({"id": "d1", "title": "Shared", "content": "Written on A."})).await;
    assert_eq!(st, 201, "{body}");
    let (st, body) = b.get("/api/documents/d1").await;
    assert_eq!(st, 200, "B reads the document A stored: {body}");

    let (st, resp) = a.post("/api/exports", json!({"source_type": "document", "source_id": "d1", "format": "md"})).await;
    assert_eq!(st, 202, "A accepts the export: {resp}");
    let id = resp["job_id"].as_str().unwrap().to_string();
    let mut record = Value::Null;
    for _ in 0..500 {
        let (st, body) = b.get(&format!("/api/exports/{id}")).await;
        assert_eq!(st, 200, "B knows the export A created: {body}");
        record = body;
        if record["status"] == "completed" || record["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(record["status"], "completed", "B's workers rendered it from the stored source: {record}");
    let r = reqwest::get(a.url(&format!("/api/exports/{id}/download"))).await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Written on A."), "A serves the file B rendered");
    let in_bucket =
        reqwest::get(format!("{}/hearth-exports?list-type=2&prefix=exports/", s3.endpoint())).await.unwrap().text().await.unwrap();
    assert!(in_bucket.contains(&id), "the file is an object in the bucket: {in_bucket}");
    let (_, listed) = b.get("/api/exports").await;
    assert!(listed.to_string().contains(&id), "B lists A's export: {listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_feed_is_the_same_on_every_node_and_live_on_each() {
    let redis = RedisServer::start();
    let start = |url: String| {
        TestServer::start_with(move |c| {
            c.redis.url = Some(url);
            c.events.transport = hearth::events::TransportKind::Redis;
            c.notification.store = hearth::cluster::StoreKind::Redis;
            c.modules.search.enabled = false;
        })
    };
    let (a, b) = (start(redis.url()).await, start(redis.url()).await);
    // B's WebSocket for dana, then two notifications sent through A.
    let (mut ws, _) = connect_async(b.ws_url("/ws/notifications?user_id=dana")).await.unwrap();
    let hello = ws.next().await.unwrap().unwrap();
    assert!(hello.to_text().unwrap().contains("\"unread_count\":0"), "{hello:?}");
    let mut ids = Vec::new();
    for title in ["first", "second"] {
        let (st, body) =
            a.post("/api/notifications", json!({"type": "info", "title": title, "user_id": "dana", "channels": ["in-app"]})).await;
        assert_eq!(st, 200, "{body}");
        ids.push(body["notification_id"].as_str().unwrap().to_string());
    }
    let live = async {
        let mut seen = 0;
        while seen < 2 {
            if let Some(Ok(Message::Text(t))) = ws.next().await
                && t.as_str().contains("notification.created")
            {
                seen += 1;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(10), live).await.expect("B's WebSocket hears of A's notifications");

    let (_, list) = b.get("/api/notifications?user_id=dana").await;
    let titles: Vec<&str> = list.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["second", "first"], "B lists A's notifications, newest first");
    let (st, _) = b.post(&format!("/api/notifications/{}/read", ids[0]), json!({})).await;
    assert_eq!(st, 200);
    let (_, count) = a.get("/api/notifications/unread_count?user_id=dana").await;
    assert_eq!(count["unread_count"], 1, "A counts the read made on B: {count}");
    let (st, body) = a.put("/api/notifications/preferences/dana", json!({"muted_types": ["warning"]})).await;
    assert_eq!(st, 200, "{body}");
    let (_, prefs) = b.get("/api/notifications/preferences/dana").await;
    assert_eq!(prefs["muted_types"], json!(["warning"]), "B applies preferences set on A");
}

/// A node whose job queue is in `redis`.
async fn jobs_node(redis: &RedisServer) -> TestServer {
    let url = redis.url();
    TestServer::start_with(move |c| {
        c.redis.url = Some(url);
        c.job_queue.broker.kind = "redis".into();
        c.modules.search.enabled = false;
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_enqueued_on_one_node_runs_in_the_handler_of_the_other_at_once() {
    use hearth::jobs::{JobContext, JobFailure};
    let redis = RedisServer::start();
    let (a, b) = (jobs_node(&redis).await, jobs_node(&redis).await);
    // Only node B can run `cluster.echo`; its workers sleep until told a job is ready.
    b.app.jobs.handler("cluster.echo", |_ctx: JobContext, p: Value| async move { Ok::<_, JobFailure>(json!({"echo": p, "on": "b"})) });
    let (st, body) = a.post("/api/jobs", json!({"name": "cluster.echo", "payload": {"n": 7}})).await;
    assert_eq!(st, 201, "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    let mut job = Value::Null;
    for _ in 0..100 {
        let (_, j) = a.get(&format!("/api/jobs/{id}")).await;
        job = j;
        if job["status"] == "completed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["status"], "completed", "node B's in-process handler ran the job node A accepted: {job}");
    assert_eq!(job["result"], json!({"echo": {"n": 7}, "on": "b"}));
    assert_eq!(job["attempts"], 1, "it ran once: {job}");
}
