//! Job-queue benchmarks (harness = false; prints its figures).
//!
//! 1. In-process end to end: enqueue → no-op handler → durable complete, for 10k and
//!    100k jobs, with individual enqueues from many concurrent callers and with batches.
//! 2. The HTTP worker protocol: external workers claim `max=100` and complete the jobs,
//!    one `POST /api/jobs/{id}/complete` per job, or one `POST /api/jobs/complete` per claim.
//! 3. Enqueue → handler start latency with idle workers (p50 / p99).
//! 4. `redis`: the same on the Redis broker, against a private redis-server with
//!    `appendonly yes, appendfsync always` — bulk add of 20,000 no-op jobs, then one pool
//!    of 50 in-process workers, and the HTTP worker protocol on a node whose broker is that
//!    redis-server; run `../shared/peers/bullmq/run.sh 20000 50 always` in the same minute
//!    for the BullMQ side.
//!
//! 5. `watched`: the HTTP worker protocol with the dashboard's streams open — nobody, the
//!    overview (`/ws/jobs?every_ms=1000`), a queue page (`/ws/jobs`, one frame per step) —
//!    twice each, interleaved.
//!
//! Run: `cargo bench --bench jobs` (`JOBS_BENCH=http cargo bench --bench jobs` runs only the
//! sections whose name contains `http`: in-process, latency, http).

use hearth::app::Background;
use hearth::clock::{SharedClock, SystemClock};
use hearth::cluster::test_server::RedisServer;
use hearth::events::EventBus;
use hearth::jobs::config::{JobQueueConfig, WorkerPoolConfig};
use hearth::jobs::{Broker, EnqueueRequest, Job, JobHooks, JobQueue};
use hearth::progress::{ProgressTracker, config::ProgressConfig};
use hearth::store::Store;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// The same allocator as the `hearth` binary, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

struct Counter {
    done: AtomicUsize,
    target: AtomicUsize,
    notify: Notify,
}

impl JobHooks for Counter {
    fn on_complete(&self, _job: &Job) {
        if self.done.fetch_add(1, Ordering::Relaxed) + 1 == self.target.load(Ordering::Relaxed) {
            self.notify.notify_one();
        }
    }
}

fn queue(dir: &std::path::Path, workers: usize) -> (JobQueue, Store) {
    queue_on(dir, workers, None)
}

/// A queue with `workers` in-process workers on the embedded broker, or on `broker`.
fn queue_on(dir: &std::path::Path, workers: usize, broker: Option<Broker>) -> (JobQueue, Store) {
    let store = Store::open(dir).unwrap();
    let clock: SharedClock = Arc::new(SystemClock);
    let events = EventBus::default();
    let progress = ProgressTracker::new(store.clone(), events.clone(), clock.clone(), ProgressConfig::default());
    let mut cfg = JobQueueConfig::default();
    cfg.workers.clear();
    if workers > 0 {
        cfg.workers.insert("default".into(), WorkerPoolConfig { count: workers, queues: vec!["default".into()] });
    }
    let q = match broker {
        Some(b) => JobQueue::with_broker(b, events, clock, progress, cfg),
        None => JobQueue::new(store.clone(), events, clock, progress, cfg),
    };
    (q, store)
}

/// The Redis broker: bulk add of `n` no-op jobs (batches of 1000), then `workers`
/// in-process workers run them; prints enqueue and processed jobs/s (BullMQ's shape).
async fn redis_in_process(n: usize, workers: usize) {
    let server = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = hearth::cluster::RedisConfig { url: Some(server.url()), ..Default::default() };
    let redis = hearth::cluster::Redis::connect(&cfg).await.unwrap();
    let (q, _store) = queue_on(dir.path(), workers, Some(Broker::custom(hearth::jobs::RedisBroker::new(redis.clone()))));
    let counter = Arc::new(Counter { done: AtomicUsize::new(0), target: AtomicUsize::new(n), notify: Notify::new() });
    q.register_hooks(counter.clone());
    let start = Instant::now();
    for chunk in 0..n.div_ceil(1000) {
        let m = 1000.min(n - chunk * 1000);
        let reqs = (0..m).map(|i| EnqueueRequest::new("noop", json!({"i": i}))).collect();
        q.enqueue_batch(reqs).await.unwrap();
    }
    let enq = start.elapsed();
    q.handler("noop", |_ctx, _p| async { Ok(serde_json::Value::Null) });
    let waiter = counter.notify.notified();
    tokio::pin!(waiter);
    waiter.as_mut().enable();
    let bg = Background::default();
    let (cpu0, stats0) = redis_load(&redis).await;
    let own0 = own_cpu();
    let t = Instant::now();
    q.start(&bg);
    tokio::time::timeout(Duration::from_secs(300), waiter).await.expect("all jobs complete");
    let run = t.elapsed();
    let (cpu1, stats1) = redis_load(&redis).await;
    println!(
        "  CPU while processing: redis-server {:.0} % of one core, hearth {:.0} % ({:.0} µs per job)",
        (cpu1 - cpu0) / run.as_secs_f64() * 100.0,
        (own_cpu() - own0) / run.as_secs_f64() * 100.0,
        (own_cpu() - own0) / n as f64 * 1e6
    );
    for (cmd, (calls, usec)) in &stats1 {
        let (c0, u0) = stats0.get(cmd).copied().unwrap_or_default();
        if calls > &c0 {
            println!(
                "  {cmd}: {} calls, {:.1} µs per call, {:.1} calls per job",
                calls - c0,
                (usec - u0) / (calls - c0) as f64,
                (calls - c0) as f64 / n as f64
            );
        }
    }
    println!(
        "redis broker (appendfsync always), {n} jobs: bulk add {:>8.0} jobs/s, {workers} in-process workers processed {:>8.0} jobs/s",
        n as f64 / enq.as_secs_f64(),
        n as f64 / run.as_secs_f64()
    );
    bg.shutdown.cancel();
    bg.tasks.close();
    bg.tasks.wait().await;
}

/// This process's CPU seconds so far (user + system, from `/proc/self/stat`).
fn own_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // The fields after the command name (which is in parentheses): utime is the 12th, stime the 13th.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
    let f: Vec<f64> = rest.split_whitespace().map(|x| x.parse().unwrap_or(0.0)).collect();
    let ticks = 100.0; // USER_HZ on Linux
    (f.get(11).unwrap_or(&0.0) + f.get(12).unwrap_or(&0.0)) / ticks
}

/// redis-server's CPU seconds so far, and per command its calls and total µs
/// (`INFO cpu`, `INFO commandstats`).
async fn redis_load(redis: &hearth::cluster::Redis) -> (f64, std::collections::BTreeMap<String, (u64, f64)>) {
    let info: String = redis.query(redis::cmd("INFO").arg("cpu")).await.unwrap();
    let field = |k: &str| info.lines().find_map(|l| l.strip_prefix(k)).and_then(|v| v.trim().parse::<f64>().ok()).unwrap_or(0.0);
    let cpu = field("used_cpu_user:") + field("used_cpu_sys:");
    let stats: String = redis.query(redis::cmd("INFO").arg("commandstats")).await.unwrap();
    let mut by_cmd = std::collections::BTreeMap::new();
    for line in stats.lines() {
        // cmdstat_evalsha:calls=10,usec=200,usec_per_call=20.00,...
        let Some((name, rest)) = line.strip_prefix("cmdstat_").and_then(|l| l.split_once(':')) else { continue };
        let get = |k: &str| rest.split(',').find_map(|kv| kv.strip_prefix(k)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        by_cmd.insert(name.to_string(), (get("calls=") as u64, get("usec=")));
    }
    (cpu, by_cmd)
}

async fn in_process(n: usize, batch: bool) {
    let dir = tempfile::tempdir().unwrap();
    let (q, store) = queue(dir.path(), 8);
    q.handler("noop", |_ctx, _p| async { Ok(serde_json::Value::Null) });
    let counter = Arc::new(Counter { done: AtomicUsize::new(0), target: AtomicUsize::new(n), notify: Notify::new() });
    q.register_hooks(counter.clone());
    let bg = Background::default();
    q.start(&bg);
    let commits0 = store.writer_stats().commits.load(Ordering::Relaxed);
    let start = Instant::now();
    let waiter = counter.notify.notified();
    tokio::pin!(waiter);
    waiter.as_mut().enable();
    if batch {
        let mut tasks = Vec::new();
        for chunk in 0..n.div_ceil(1000) {
            let q = q.clone();
            let m = 1000.min(n - chunk * 1000);
            tasks.push(tokio::spawn(async move {
                let reqs = (0..m).map(|i| EnqueueRequest::new("noop", json!({"i": i}))).collect();
                q.enqueue_batch(reqs).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    } else {
        let callers = 512;
        let mut tasks = Vec::new();
        for c in 0..callers {
            let q = q.clone();
            tasks.push(tokio::spawn(async move {
                let mut i = c;
                while i < n {
                    q.enqueue(EnqueueRequest::new("noop", json!({"i": i}))).await.unwrap();
                    i += callers;
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
    }
    let enq = start.elapsed();
    tokio::time::timeout(Duration::from_secs(120), waiter).await.expect("all jobs complete");
    let total = start.elapsed();
    let commits = store.writer_stats().commits.load(Ordering::Relaxed) - commits0;
    println!(
        "in-process {:>6} jobs ({}): enqueue {:>8.0} jobs/s, end to end {:>8.0} jobs/s ({:.2} s, {} commits)",
        n,
        if batch { "batches of 1000" } else { "512 concurrent single enqueues" },
        n as f64 / enq.as_secs_f64(),
        n as f64 / total.as_secs_f64(),
        total.as_secs_f64(),
        commits
    );
    bg.shutdown.cancel();
    bg.tasks.close();
    bg.tasks.wait().await;
}

async fn latency(samples: usize) {
    let dir = tempfile::tempdir().unwrap();
    let (q, _store) = queue(dir.path(), 4);
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Instant>();
    q.handler("probe", move |_ctx, _p| {
        let tx = tx.clone();
        async move {
            let _ = tx.send(Instant::now());
            Ok(serde_json::Value::Null)
        }
    });
    let bg = Background::default();
    q.start(&bg);
    let mut lat = Vec::with_capacity(samples);
    for _ in 0..samples {
        tokio::time::sleep(Duration::from_millis(1)).await;
        let t0 = Instant::now();
        q.enqueue(EnqueueRequest::new("probe", json!({}))).await.unwrap();
        let started = rx.recv().await.unwrap();
        lat.push(started.duration_since(t0));
    }
    lat.sort();
    let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)].as_secs_f64() * 1000.0;
    println!(
        "enqueue -> start latency, idle workers ({samples} samples, enqueue includes its fsync): p50 {:.2} ms, p99 {:.2} ms",
        p(0.5),
        p(0.99)
    );
    bg.shutdown.cancel();
}

/// Who watches the server during `http` (the dashboard's streams).
#[derive(Clone, Copy, PartialEq)]
enum Watch {
    Nobody,
    /// `/ws/jobs`: one frame per step (the queue page).
    EveryStep,
    /// `/ws/jobs?every_ms=1000`: one summary a second (the overview).
    Activity,
}

/// Opens the watcher's WebSocket on `base`; the task counts the frames it gets until told
/// to stop.
async fn watch(base: &str, w: Watch) -> Option<(tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<usize>)> {
    use futures::StreamExt;
    let path = match w {
        Watch::Nobody => return None,
        Watch::EveryStep => "/ws/jobs",
        Watch::Activity => "/ws/jobs?every_ms=1000",
    };
    let url = format!("{}{path}", base.replacen("http://", "ws://", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.unwrap();
    let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let mut frames = 0;
        loop {
            tokio::select! {
                _ = &mut stopped => break,
                m = ws.next() => match m {
                    Some(Ok(m)) => frames += m.is_text() as usize,
                    _ => break,
                },
            }
        }
        let _ = ws.close(None).await;
        frames
    });
    Some((stop, task))
}

async fn http(n: usize, workers: usize, batch_complete: bool, redis: Option<&RedisServer>) {
    http_watched(n, workers, batch_complete, redis, Watch::Nobody).await;
}

/// Runs the HTTP worker protocol with `w` watching; prints and returns the jobs/s and the
/// CPU time of this process (server, workers and watcher) per job.
async fn http_watched(n: usize, workers: usize, batch_complete: bool, redis: Option<&RedisServer>, w: Watch) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hearth::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    if let Some(r) = redis {
        config.redis.url = Some(r.url());
        config.job_queue.broker.kind = "redis".into();
    }
    config.job_queue.workers.clear();
    config.modules.search.enabled = false;
    config.modules.export.enabled = false;
    let app = hearth::App::build(config).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(hearth::http::serve(listener, app.clone(), async move {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let watcher = watch(&base, w).await;
    for chunk in 0..n.div_ceil(1000) {
        let m = 1000.min(n - chunk * 1000);
        let body: Vec<_> = (0..m).map(|i| json!({"name": "ext", "payload": {"i": i}})).collect();
        let r = client.post(format!("{base}/api/jobs/batch")).json(&body).send().await.unwrap();
        assert!(r.status().is_success());
    }
    let done = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let cpu0 = own_cpu();
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (client, base, done) = (client.clone(), base.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let worker = format!("w{w}");
            loop {
                let jobs: Vec<serde_json::Value> = client
                    .post(format!("{base}/api/jobs/claim"))
                    .json(&json!({"queues": ["default"], "worker_id": worker, "max": 100}))
                    .send()
                    .await
                    .unwrap()
                    .json()
                    .await
                    .unwrap();
                if jobs.is_empty() {
                    break;
                }
                if batch_complete {
                    let items: Vec<_> = jobs.iter().map(|j| json!({"id": j["id"], "result": null})).collect();
                    let r = client
                        .post(format!("{base}/api/jobs/complete"))
                        .json(&json!({"worker_id": worker, "jobs": items}))
                        .send()
                        .await
                        .unwrap();
                    assert!(r.status().is_success());
                    let body: serde_json::Value = r.json().await.unwrap();
                    assert_eq!(body["completed"].as_u64(), Some(jobs.len() as u64), "{body}");
                } else {
                    let completes = jobs.iter().map(|j| {
                        let url = format!("{base}/api/jobs/{}/complete", j["id"].as_str().unwrap());
                        let c = client.clone();
                        let w = worker.clone();
                        async move {
                            let r = c.post(url).json(&json!({"result": null, "worker_id": w})).send().await.unwrap();
                            assert!(r.status().is_success());
                        }
                    });
                    futures::future::join_all(completes).await;
                }
                done.fetch_add(jobs.len(), Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let el = start.elapsed();
    let cpu_per_job = (own_cpu() - cpu0) / n as f64 * 1e6;
    let frames = match watcher {
        Some((stop, task)) => {
            let _ = stop.send(());
            task.await.unwrap()
        }
        None => 0,
    };
    let _ = stop.send(());
    let _ = server.await;
    println!(
        "HTTP worker protocol{}{}: {} jobs, {workers} workers claiming max=100, {}: {:.0} jobs/s ({:.2} s, {cpu_per_job:.0} µs CPU per job, server and clients)",
        if redis.is_some() { " on the redis broker" } else { "" },
        match w {
            Watch::Nobody => String::new(),
            Watch::EveryStep => format!(" with /ws/jobs open ({frames} frames)"),
            Watch::Activity => format!(" with the overview's /ws/jobs?every_ms=1000 open ({frames} frames)"),
        },
        done.load(Ordering::Relaxed),
        if batch_complete { "one batch complete per claim" } else { "one complete request per job" },
        done.load(Ordering::Relaxed) as f64 / el.as_secs_f64(),
        el.as_secs_f64()
    );
    (done.load(Ordering::Relaxed) as f64 / el.as_secs_f64(), cpu_per_job)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let only = std::env::var("JOBS_BENCH").unwrap_or_default();
    let run = |section: &str| section.contains(only.as_str());
    rt.block_on(async {
        if run("in-process") {
            in_process(10_000, false).await;
            in_process(100_000, false).await;
            in_process(10_000, true).await;
            in_process(100_000, true).await;
        }
        if run("latency") {
            latency(500).await;
        }
        if run("http") {
            http(20_000, 4, false, None).await;
            http(50_000, 4, true, None).await;
        }
        if run("watched") {
            // The dashboard's cost: the same run with nobody, the overview, a queue page
            // watching, interleaved, five rounds; the medians are compared.
            let watchers = [Watch::Nobody, Watch::Activity, Watch::EveryStep];
            let mut rates: Vec<Vec<f64>> = vec![Vec::new(); watchers.len()];
            let mut cpu: Vec<Vec<f64>> = vec![Vec::new(); watchers.len()];
            for _ in 0..5 {
                for (i, w) in watchers.iter().enumerate() {
                    let (r, c) = http_watched(30_000, 4, false, None, *w).await;
                    rates[i].push(r);
                    cpu[i].push(c);
                }
            }
            let median = |v: &mut Vec<f64>| {
                v.sort_by(f64::total_cmp);
                v[v.len() / 2]
            };
            let (base, base_cpu) = (median(&mut rates[0]), median(&mut cpu[0]));
            let names = ["nobody watching", "the overview (activity mode)", "a queue page (every step)"];
            for ((name, r), c) in names.iter().zip(&mut rates).zip(&mut cpu) {
                let (m, mc) = (median(r), median(c));
                println!("median with {name}: {m:.0} jobs/s ({:.2}x), {mc:.0} µs CPU per job ({:.2}x)", m / base, mc / base_cpu);
            }
        }
        if run("redis") {
            redis_in_process(20_000, 50).await;
            let server = RedisServer::start();
            http(20_000, 4, false, Some(&server)).await;
            http(20_000, 4, true, Some(&server)).await;
        }
    });
}
