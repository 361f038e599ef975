//! Progress tracking throughput and live-delivery latency. Prints its figures:
//!
//! - updates/s accepted through the Rust API (`tracker.update`), with nobody listening
//!   and with an event-bus subscriber (so every update is serialised and broadcast);
//! - updates/s through `PATCH /api/progress/{id}` on a real server (32 concurrent clients);
//! - WebSocket delivery latency (update call → frame parsed by the client), p50/p99/max,
//!   with 1,000 subscribers on one id and with 1,000 ids (one subscriber each);
//! - cross-node event latency: an event published on node A's bus (Redis Streams
//!   transport, a private redis-server with `appendfsync always`) until node B's
//!   subscriber has it, p50/p99/max.
//!
//! Run: `cargo bench --bench progress`

use futures::{SinkExt, StreamExt};
use hearth::clock::SystemClock;
use hearth::events::EventBus;
use hearth::progress::{NewProgress, ProgressTracker};
use hearth::store::Store;
use hearth::{App, Config};
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const BUDGET: Duration = Duration::from_secs(2);

async fn rust_api(ids: usize, tasks: usize, listener: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let bus = EventBus::default();
    let tracker = ProgressTracker::new(store, bus.clone(), Arc::new(SystemClock), Default::default());
    let bg = hearth::app::Background::default();
    tracker.start(&bg);
    let names: Vec<String> = (0..ids).map(|i| format!("bench-{i}")).collect();
    for id in &names {
        tracker.create(NewProgress::with_stages(Some(id.clone()), &["a", "b"])).await.unwrap();
        tracker.update(id, 0.0, None).await.unwrap();
    }
    let drained = Arc::new(AtomicU64::new(0));
    if listener {
        let mut rx = bus.subscribe();
        let drained = drained.clone();
        tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(_) => {
                        drained.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(hearth::events::RecvError::Lagged(_)) => {}
                    Err(_) => break,
                }
            }
        });
    }
    let names = Arc::new(names);
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let tracker = tracker.clone();
        let names = names.clone();
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            let mut i = t;
            while start.elapsed() < BUDGET {
                for _ in 0..256 {
                    let id = &names[i % names.len()];
                    tracker.update(id, (n % 100) as f64, None).await.unwrap();
                    n += 1;
                    i += tasks;
                }
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    bg.shutdown.cancel();
    bg.tasks.close();
    bg.tasks.wait().await;
    rate
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string()
}

struct Server {
    app: Arc<App>,
    addr: std::net::SocketAddr,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.shutdown_grace_seconds = 2;
    // One client opens a thousand streams here; a real deployment spreads them over callers.
    config.server.max_streams_per_caller = 4096;
    config.search.embeddings.model_dir = repo("models");
    config.notification.templates.dir = repo("templates/notifications");
    config.export.template_dir = repo("templates/exports");
    let app = App::build(config).await.expect("app builds");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(hearth::http::serve(listener, app.clone(), std::future::pending()));
    Server { app, addr, _dir: dir }
}

async fn patch_rate(concurrency: usize) -> f64 {
    let s = server().await;
    let ids: Arc<Vec<String>> = Arc::new((0..64).map(|i| format!("http-{i}")).collect());
    for id in ids.iter() {
        s.app.progress.create(NewProgress::with_stages(Some(id.clone()), &[])).await.unwrap();
        s.app.progress.update(id, 0.0, None).await.unwrap();
    }
    let client = reqwest::Client::new();
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..concurrency {
        let (client, ids, base) = (client.clone(), ids.clone(), format!("http://{}", s.addr));
        handles.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < BUDGET {
                let id = &ids[(t + n as usize) % ids.len()];
                let r = client
                    .patch(format!("{base}/api/progress/{id}"))
                    .json(&serde_json::json!({"progress": (n % 100) as f64}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status().as_u16(), 200);
                let _ = r.bytes().await;
                n += 1;
            }
            n
        }));
    }
    let mut total = 0;
    for h in handles {
        total += h.await.unwrap();
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    s.app.background().shutdown.cancel();
    rate
}

/// Send instants (µs since `epoch`) per id index and version.
struct Sent {
    epoch: Instant,
    slots: Vec<Vec<AtomicU64>>,
}

async fn ws_latency(subscribers: usize, ids: usize, updates_per_id: usize, spacing: Duration) -> (usize, Vec<u64>) {
    let s = server().await;
    let names: Vec<String> = (0..ids).map(|i| format!("ws-{i}")).collect();
    for id in &names {
        s.app.progress.create(NewProgress::with_stages(Some(id.clone()), &[])).await.unwrap();
        s.app.progress.update(id, 0.0, None).await.unwrap();
    }
    // Version after create (1) and the first update (2); measured updates carry 3.. .
    let base_version = 3u64;
    let sent = Arc::new(Sent {
        epoch: Instant::now(),
        slots: (0..ids).map(|_| (0..updates_per_id).map(|_| AtomicU64::new(0)).collect()).collect(),
    });
    let url = format!("ws://{}/ws/progress", s.addr);
    let mut clients = Vec::with_capacity(subscribers);
    for c in 0..subscribers {
        let idx = c % ids;
        let (mut ws, _) = tokio_tungstenite::connect_async(&url).await.expect("ws connects");
        let sub = serde_json::json!({"action": "subscribe", "progress_id": names[idx]}).to_string();
        ws.send(Message::Text(sub.into())).await.unwrap();
        // The ack and the current state.
        for _ in 0..2 {
            ws.next().await.unwrap().unwrap();
        }
        clients.push((idx, ws));
    }
    let last_version = base_version + updates_per_id as u64 - 1;
    let mut readers = Vec::with_capacity(subscribers);
    for (idx, mut ws) in clients {
        let sent = sent.clone();
        readers.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            while let Ok(Some(Ok(m))) = tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                let Message::Text(t) = m else { continue };
                let version = version_in(t.as_str());
                if version < base_version {
                    continue;
                }
                let at = sent.slots[idx][(version - base_version) as usize].load(Ordering::Acquire);
                let now = sent.epoch.elapsed().as_micros() as u64;
                if at > 0 {
                    lat.push(now.saturating_sub(at));
                }
                if version >= last_version {
                    break;
                }
            }
            lat
        }));
    }
    let mut tick = tokio::time::interval(spacing);
    for k in 0..updates_per_id {
        for (idx, id) in names.iter().enumerate() {
            tick.tick().await;
            sent.slots[idx][k].store(sent.epoch.elapsed().as_micros().max(1) as u64, Ordering::Release);
            s.app.progress.update(id, (k % 100) as f64 + 0.5, None).await.unwrap();
        }
    }
    let mut all = Vec::new();
    for r in readers {
        all.extend(r.await.unwrap());
    }
    s.app.background().shutdown.cancel();
    all.sort_unstable();
    (updates_per_id * ids, all)
}

/// The `"version"` of a progress frame, read without a full JSON parse (the clients share
/// the two cores with the server; a real client would run elsewhere).
fn version_in(frame: &str) -> u64 {
    let Some(at) = frame.rfind("\"version\":") else { return 0 };
    frame[at + 10..].bytes().take_while(u8::is_ascii_digit).fold(0, |n, d| n * 10 + u64::from(d - b'0'))
}

fn pct(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn report_latency(label: &str, updates: usize, expected: usize, lat: &[u64]) {
    println!(
        "{label}: {updates} updates, {} of {expected} deliveries measured, latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        pct(lat, 0.5),
        pct(lat, 0.99),
        pct(lat, 1.0)
    );
}

/// Publishes `n` events on one bus and times their arrival on another bus sharing a
/// redis-server (one event every millisecond).
async fn cross_node(n: usize) -> Vec<u64> {
    let server = hearth::cluster::test_server::RedisServer::start();
    let cfg = hearth::cluster::RedisConfig { url: Some(server.url()), ..Default::default() };
    let shutdown = tokio_util::sync::CancellationToken::new();
    let mut buses = Vec::new();
    for _ in 0..2 {
        let redis = hearth::cluster::Redis::connect(&cfg).await.unwrap();
        let t = hearth::events::RedisTransport::start(redis, 4096, shutdown.clone()).await.unwrap();
        buses.push(EventBus::with_transport(Arc::new(t)));
    }
    let mut sub = buses[1].subscribe();
    let start = Instant::now();
    let receiver = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(n);
        while lat.len() < n {
            match tokio::time::timeout(Duration::from_secs(10), sub.recv()).await {
                Ok(Ok(e)) if e.topic == "bench.tick" => {
                    let sent = e.data["sent_us"].as_u64().unwrap_or(0);
                    lat.push(start.elapsed().as_micros() as u64 - sent);
                }
                Ok(Ok(_)) | Ok(Err(_)) => {}
                Err(_) => break,
            }
        }
        lat
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..n {
        let sent = start.elapsed().as_micros() as u64;
        buses[0].emit("bench.tick", &i.to_string(), None, serde_json::json!({ "sent_us": sent }));
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let lat = receiver.await.unwrap();
    shutdown.cancel();
    lat
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    rt.block_on(async {
        println!("progress benchmark ({} s per throughput figure, 2 worker threads)", BUDGET.as_secs());
        for (ids, tasks) in [(1, 1), (1000, 4)] {
            let r = rust_api(ids, tasks, false).await;
            println!("rust api: {r:>10.0} updates/s  ({ids} ids, {tasks} tasks, no bus subscriber)");
            let r = rust_api(ids, tasks, true).await;
            println!("rust api: {r:>10.0} updates/s  ({ids} ids, {tasks} tasks, one bus subscriber: JSON built and broadcast)");
        }
        let r = patch_rate(32).await;
        println!("PATCH /api/progress/{{id}}: {r:>8.0} updates/s  (32 concurrent keep-alive clients, 64 ids)");
        let (updates, lat) = ws_latency(1000, 1, 100, Duration::from_millis(20)).await;
        report_latency("ws, 1000 subscribers on 1 id (1 update / 20 ms)", updates, updates * 1000, &lat);
        let (updates, lat) = ws_latency(1000, 1000, 3, Duration::from_millis(1)).await;
        report_latency("ws, 1000 ids x 1 subscriber (1 update / ms)", updates, updates, &lat);
        let mut lat = cross_node(2000).await;
        lat.sort_unstable();
        println!(
            "cross-node events (redis streams, node A publish -> node B subscriber, 1 event / ms): {} events, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
            lat.len(),
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            pct(&lat, 1.0)
        );
    });
}
