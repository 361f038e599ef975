//! Notification throughput and live-delivery latency. Prints its figures:
//!
//! - in-app sends/s through the Rust API (`notifications.send`, 64 concurrent senders), each
//!   acknowledged only after its durable commit;
//! - in-app sends/s through `POST /api/notifications` on a real server (32 concurrent clients);
//! - batch sends: recipients/s through `send_batch` (1,000 users per call);
//! - send → WebSocket delivery latency (POST issued → frame parsed by a real client),
//!   p50/p99/max, one send at a time, with two open connections of the user.
//!
//! Run: `cargo bench --bench notify`

use futures::StreamExt;
use hearth::notify::{BatchSendRequest, NotificationKind, SendRequest};
use hearth::{App, Config};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::Message;

const BUDGET: Duration = Duration::from_secs(2);

async fn app(dir: &std::path::Path) -> Arc<App> {
    let mut c = Config::default();
    c.server.data_dir = dir.to_path_buf();
    c.modules.search.enabled = false;
    App::build(c).await.expect("app builds")
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Sends/s through the Rust API with `tasks` concurrent senders for BUDGET.
async fn rust_api(tasks: usize) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..tasks {
        let (app, done) = (app.clone(), done.clone());
        handles.push(tokio::spawn(async move {
            while start.elapsed() < BUDGET {
                let req = SendRequest::new(NotificationKind::Info, "bench", "a message", format!("user-{}", t % 16));
                app.notify.send(req).await.unwrap();
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    app.shutdown().await;
    rate
}

/// Recipients/s through `send_batch` with 1,000 users per call.
async fn batch() -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let users: Vec<String> = (0..1000).map(|i| format!("u{i}")).collect();
    let start = Instant::now();
    let mut n = 0;
    while start.elapsed() < BUDGET {
        let req = BatchSendRequest {
            kind: NotificationKind::Success,
            title: "release".into(),
            message: "v2 is out".into(),
            user_ids: users.clone(),
            channels: vec![],
            action_url: None,
            action_label: None,
            template: None,
            data: None,
        };
        n += app.notify.send_batch(req).await.unwrap().len();
    }
    let rate = n as f64 / start.elapsed().as_secs_f64();
    app.shutdown().await;
    rate
}

struct Server {
    base: String,
    ws: String,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

async fn server() -> Server {
    let dir = tempfile::tempdir().unwrap();
    let app = app(dir.path()).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(hearth::http::serve(listener, app, async move {
        let _ = rx.await;
    }));
    Server { base: format!("http://{addr}"), ws: format!("ws://{addr}"), stop, task, _dir: dir }
}

impl Server {
    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}

/// Sends/s through HTTP with `clients` concurrent clients for BUDGET.
async fn http(clients: usize) -> f64 {
    let s = server().await;
    let client = reqwest::Client::new();
    let done = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut handles = Vec::new();
    for t in 0..clients {
        let (client, done, url) = (client.clone(), done.clone(), format!("{}/api/notifications", s.base));
        handles.push(tokio::spawn(async move {
            let body = serde_json::json!({"type": "info", "title": "bench", "message": "m", "user_id": format!("h{}", t % 16)});
            while start.elapsed() < BUDGET {
                let r = client.post(&url).json(&body).send().await.unwrap();
                assert_eq!(r.status(), 200);
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let rate = done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64();
    s.stop().await;
    rate
}

type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn frame(ws: &mut Ws) -> serde_json::Value {
    loop {
        match ws.next().await.expect("socket open").expect("frame") {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            _ => continue,
        }
    }
}

/// Latency from POST to the `notification.created` frame on both of the user's sockets.
async fn ws_latency(n: usize) -> Vec<Duration> {
    let s = server().await;
    let client = reqwest::Client::new();
    let url = format!("{}/ws/notifications?user_id=lat", s.ws);
    let (mut a, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    let (mut b, _) = tokio_tungstenite::connect_async(&url).await.unwrap();
    assert_eq!(frame(&mut a).await["event"], "hello");
    assert_eq!(frame(&mut b).await["event"], "hello");
    let body = serde_json::json!({"type": "info", "title": "ping", "message": "m", "user_id": "lat"});
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let r = client.post(format!("{}/api/notifications", s.base)).json(&body).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let fa = frame(&mut a).await;
        let fb = frame(&mut b).await;
        out.push(t0.elapsed());
        assert_eq!(fa["event"], "notification.created");
        assert_eq!(fb["event"], "notification.created");
    }
    s.stop().await;
    out.sort();
    out
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let r = rust_api(64).await;
        println!("notify/send rust api, 64 senders:         {r:>10.0} sends/s (in-app, durable)");
        let r = http(32).await;
        println!("notify/send POST /api/notifications, 32 clients: {r:>10.0} sends/s");
        let r = batch().await;
        println!("notify/send_batch 1000 users per call:    {r:>10.0} recipients/s");
        let lat = ws_latency(500).await;
        println!(
            "notify/POST -> WS frame (2 sockets), n={}:  p50 {:?}  p99 {:?}  max {:?}",
            lat.len(),
            pct(&lat, 0.50),
            pct(&lat, 0.99),
            lat.last().unwrap()
        );
    });
}
