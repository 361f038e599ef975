//! Cache throughput, printed as operations per second:
//! - L1 hit `get`s on 1 and 2 threads, beside raw quick_cache `get`s measured in the same
//!   run with the same keys and values (goal: the cache ≥ 80% of raw), (a) with one value
//!   shared by all keys and (b) with a distinct value per key. `Cache::get` is an async
//!   fn; its future is pinned where it is built and polled once, as an executor polls a
//!   task (a hit completes on the first poll). An earlier version used `now_or_never`,
//!   which moves the future into its own frame first: perf showed a third of that
//!   wrapper's samples stalled on one load of the just-copied future (store forwarding),
//!   which made the hit path look half as fast as it is;
//! - L2 hit `get`s (L1 disabled) sequentially and with 16 concurrent tasks;
//! - the cost of a miss (in neither tier) with the embedded L2 and with the Redis L2 (a
//!   private redis-server), one task: mean microseconds per `get`;
//! - `get_or_set` under contention: 64 tasks on one hot key (hits), and 64 tasks missing
//!   together on a fresh key per round (single flight: one factory run per round);
//! - `GET /api/cache/{key}` requests/s on a real server at 32 connections, measured with
//!   `wrk` (the exact command is printed).
//!
//! Run: `cargo bench --bench cache`

use bytes::Bytes;
use hearth::cache::{Cache, CacheValue, config::CacheConfig};
use hearth::clock::SystemClock;
use hearth::store::Store;
use std::future::Future;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

const KEYS: usize = 10_000;
const VALUE_BYTES: usize = 100;
const BUDGET: Duration = Duration::from_millis(1500);
/// Length of one L1 round (see [`compare`]).
const L1_BUDGET: Duration = Duration::from_millis(500);

fn keys() -> Arc<Vec<String>> {
    Arc::new((0..KEYS).map(|i| format!("user:{i}:profile")).collect())
}

/// Runs `op(i)` in a loop on `threads` threads for the budget; returns ops/s.
fn per_second<F>(threads: usize, budget: Duration, op: F) -> f64
where
    F: Fn(usize) + Send + Sync + 'static,
{
    let op = Arc::new(op);
    let start = Instant::now();
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let op = op.clone();
            std::thread::spawn(move || {
                let mut n = 0usize;
                let mut i = t * 7919;
                while start.elapsed() < budget {
                    for _ in 0..1024 {
                        op(i);
                        i = i.wrapping_add(1);
                    }
                    n += 1024;
                }
                n
            })
        })
        .collect();
    let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

fn fmt(x: f64) -> String {
    if x >= 1e6 { format!("{:.2} M/s", x / 1e6) } else { format!("{:.1} k/s", x / 1e3) }
}

type RawCache = quick_cache::sync::Cache<String, Bytes>;

/// A cache with the default configuration (L1 and the embedded L2) in a temporary directory.
fn default_cache() -> (Cache, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    (Cache::new(store, Arc::new(SystemClock), CacheConfig::default()), dir)
}

/// Rounds per L1 figure: raw and ours alternate, each keeps its best round, so a burst of
/// load from other processes on the shared machine does not decide the ratio.
const ROUNDS: usize = 3;

/// Prints L1 hit `get`s of `cache` beside raw quick_cache `get`s of `raw` (same keys and
/// values) on 1 and 2 threads: best of [`ROUNDS`] alternating rounds of [`L1_BUDGET`] each.
fn compare(cache: &Cache, raw: &Arc<RawCache>) {
    let keys = keys();
    for threads in [1, 2] {
        let (mut raw_best, mut ours_best) = (0f64, 0f64);
        for _ in 0..ROUNDS {
            let (r, k) = (raw.clone(), keys.clone());
            raw_best = raw_best.max(per_second(threads, L1_BUDGET, move |i| {
                black_box(r.get(k[i % KEYS].as_str()).expect("raw hit"));
            }));
            let (c, k) = (cache.clone(), keys.clone());
            ours_best = ours_best.max(per_second(threads, L1_BUDGET, move |i| {
                // Polled in place, once, as an executor polls a task's future (a hit
                // completes on the first poll).
                let fut = std::pin::pin!(c.get(k[i % KEYS].as_str()));
                match fut.poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(v) => black_box(v.unwrap().expect("hit")),
                    Poll::Pending => panic!("an L1 hit completes at once"),
                };
            }));
        }
        println!(
            "  {threads} thread(s): raw quick_cache {:>12}   hearth cache {:>12}   ratio {:.0}%",
            fmt(raw_best),
            fmt(ours_best),
            100.0 * ours_best / raw_best
        );
    }
}

fn l1_vs_raw(rt: &tokio::runtime::Runtime) {
    let keys = keys();
    // (a) One 100-byte value shared by every key (every raw hit touches the same hot
    // reference count); the cache filled first, the raw map afterwards in a tight loop.
    let (cache, _dir) = default_cache();
    let value = Bytes::from(vec![7u8; VALUE_BYTES]);
    rt.block_on(async {
        for k in keys.iter() {
            cache.set(k, CacheValue::with_content_type(value.clone(), "application/json"), None, &[]).await.unwrap();
        }
    });
    let raw: Arc<RawCache> = Arc::new(RawCache::new(KEYS * 2));
    for k in keys.iter() {
        raw.insert(k.clone(), value.clone());
    }
    println!(
        "L1 hit get ({KEYS} keys; cache.get() polled once in place; best of {ROUNDS} alternating rounds; coarse clock in use: {}):",
        cache.l1_clock_is_coarse()
    );
    println!(" (a) one shared {VALUE_BYTES}-byte value for all keys, raw map filled after the cache:");
    compare(&cache, &raw);
    drop(cache);
    // (b) A distinct 100-byte value per key (as in real use: each hit touches its own
    // value's reference count), both filled in the same loop.
    let (cache, _dir) = default_cache();
    let raw: Arc<RawCache> = Arc::new(RawCache::new(KEYS * 2));
    rt.block_on(async {
        for (i, k) in keys.iter().enumerate() {
            let v = Bytes::from(vec![(i % 251) as u8; VALUE_BYTES]);
            cache.set(k, CacheValue::with_content_type(v.clone(), "application/json"), None, &[]).await.unwrap();
            raw.insert(k.clone(), v);
        }
    });
    println!(" (b) a distinct {VALUE_BYTES}-byte value per key, both filled in the same loop:");
    compare(&cache, &raw);
}

fn l2_hits(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut cfg = CacheConfig::default();
    cfg.l1.enabled = false;
    let cache = Cache::new(store, Arc::new(SystemClock), cfg);
    let keys = keys();
    rt.block_on(async {
        let value = Bytes::from(vec![7u8; VALUE_BYTES]);
        let mut tasks = Vec::new();
        for chunk in keys.chunks(500) {
            let (c, chunk, v) = (cache.clone(), chunk.to_vec(), value.clone());
            tasks.push(tokio::spawn(async move {
                for k in chunk {
                    c.set(&k, CacheValue::new(v.clone()), None, &[]).await.unwrap();
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        println!("L2 hit get (L1 disabled, redb read on the blocking pool):");
        for tasks in [1usize, 16] {
            let done = Arc::new(AtomicU64::new(0));
            let start = Instant::now();
            let mut hs = Vec::new();
            for t in 0..tasks {
                let (c, k, done) = (cache.clone(), keys.clone(), done.clone());
                hs.push(tokio::spawn(async move {
                    let mut i = t * 7919;
                    while start.elapsed() < BUDGET {
                        black_box(c.get(&k[i % KEYS]).await.unwrap().expect("L2 hit"));
                        i += 1;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                }));
            }
            for h in hs {
                h.await.unwrap();
            }
            println!("  {tasks:>2} task(s): {:>12}", fmt(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()));
        }
    });
}

/// Mean time of a `get` that misses both tiers, on `cache`, over [`BUDGET`].
async fn miss_cost(cache: &Cache) -> f64 {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < BUDGET {
        black_box(cache.get(&format!("absent-{n}")).await.unwrap());
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / n as f64
}

fn l2_misses(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let server = hearth::cluster::test_server::RedisServer::start();
    rt.block_on(async {
        let embedded = Cache::new(store, Arc::new(SystemClock), CacheConfig::default());
        let cfg = hearth::cluster::RedisConfig { url: Some(server.url()), ..Default::default() };
        let redis = hearth::cluster::Redis::connect(&cfg).await.unwrap();
        let l2 = Cache::configured_l2(Store::open(tempfile::tempdir().unwrap().path()).unwrap(), Some(redis), &{
            let mut c = CacheConfig::default();
            c.l2.backend = hearth::cache::config::L2Backend::Redis;
            c
        })
        .unwrap();
        let on_redis = Cache::with_backend(Arc::new(SystemClock), CacheConfig::default(), Some(l2));
        let (e, r) = (miss_cost(&embedded).await, miss_cost(&on_redis).await);
        println!("miss in both tiers (one task): embedded L2 {e:.1} us/get, Redis L2 {r:.1} us/get (+{:.1} us)", r - e);
    });
}

fn contention(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let cache = Cache::new(store, Arc::new(SystemClock), CacheConfig::default());
    rt.block_on(async {
        const TASKS: usize = 64;
        println!("get_or_set under contention ({TASKS} tasks on 2 worker threads):");
        // Hot key: one miss, then everyone hits.
        let factory_runs = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut hs = Vec::new();
        for _ in 0..TASKS {
            let (c, runs, done) = (cache.clone(), factory_runs.clone(), done.clone());
            hs.push(tokio::spawn(async move {
                while start.elapsed() < BUDGET {
                    for _ in 0..64 {
                        let runs = runs.clone();
                        let v = c
                            .get_or_set(
                                "hot",
                                || async move {
                                    runs.fetch_add(1, Ordering::Relaxed);
                                    Ok::<_, anyhow::Error>(CacheValue::new(vec![1u8; VALUE_BYTES]))
                                },
                                None,
                            )
                            .await
                            .unwrap();
                        black_box(v);
                    }
                    done.fetch_add(64, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        println!(
            "  one hot key:            {:>12} get_or_set calls, {} factory run(s)",
            fmt(done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()),
            factory_runs.load(Ordering::Relaxed)
        );
        // Fresh key per round: all tasks miss together; the factory takes 1 ms.
        let rounds = 100u64;
        let runs = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        for r in 0..rounds {
            let key = format!("round:{r}");
            let mut hs = Vec::with_capacity(TASKS);
            for _ in 0..TASKS {
                let (c, key, runs) = (cache.clone(), key.clone(), runs.clone());
                hs.push(tokio::spawn(async move {
                    c.get_or_set(
                        &key,
                        || async move {
                            runs.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            Ok::<_, anyhow::Error>(CacheValue::new(vec![2u8; VALUE_BYTES]))
                        },
                        None,
                    )
                    .await
                    .unwrap()
                }));
            }
            for h in hs {
                black_box(h.await.unwrap());
            }
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "  {TASKS} concurrent misses: {:>8.0} rounds/s ({:.2} ms per round incl. 1 ms factory + durable L2 write), {} factory runs for {rounds} rounds",
            rounds as f64 / secs,
            secs * 1000.0 / rounds as f64,
            runs.load(Ordering::Relaxed)
        );
    });
}

/// `GET /api/cache/{key}` on a real server, measured with `wrk` (32 connections, the
/// 10k keys in turn through a Lua script); skipped with a note when `wrk` is missing.
fn http_gets(rt: &tokio::runtime::Runtime) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = hearth::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.server.shutdown_grace_seconds = 1;
    let repo = |rel: &str| std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(rel).display().to_string();
    config.search.embeddings.model_dir = repo("models");
    config.notification.templates.dir = repo("templates/notifications");
    config.export.template_dir = repo("templates/exports");
    let (app, addr) = rt.block_on(async {
        let app = hearth::App::build(config).await.expect("app builds");
        let value = Bytes::from(vec![7u8; VALUE_BYTES]);
        for k in keys().iter() {
            app.cache.set(k, CacheValue::with_content_type(value.clone(), "application/json"), None, &[]).await.unwrap();
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(hearth::http::serve(listener, app.clone(), std::future::pending()));
        (app, addr)
    });
    let script = dir.path().join("keys.lua");
    std::fs::write(
        &script,
        format!(
            "local i = 0\nrequest = function()\n  i = (i + 1) % {KEYS}\n  return wrk.format(\"GET\", \"/api/cache/user:\" .. i .. \":profile\")\nend\n"
        ),
    )
    .unwrap();
    let url = format!("http://{addr}");
    let args = ["-t2", "-c32", "-d3s", "-s", &script.display().to_string(), &url];
    println!("HTTP GET /api/cache/{{key}} (L1 hits, {KEYS} keys in turn; wrk shares the 2 cores with the server):");
    println!("  command: wrk {}", args.join(" "));
    match std::process::Command::new("wrk").args(args).output() {
        Ok(out) if out.status.success() => {
            let text = String::from_utf8_lossy(&out.stdout);
            let figure = |label: &str| text.lines().find_map(|l| l.trim().strip_prefix(label).map(|v| v.trim().to_owned()));
            let rate = figure("Requests/sec:").unwrap_or_else(|| "?".into());
            let errors = figure("Non-2xx or 3xx responses:").unwrap_or_else(|| "0".into());
            let latency = text.lines().find(|l| l.trim_start().starts_with("Latency")).unwrap_or("").trim().to_owned();
            println!("  32 connections: {rate} requests/s, non-2xx responses: {errors}; {latency}");
        }
        Ok(out) => println!("  wrk failed: {}", String::from_utf8_lossy(&out.stderr).trim()),
        Err(e) => println!("  skipped: cannot run wrk ({e}); install it (apt-get install wrk) for this figure"),
    }
    app.background().shutdown.cancel();
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    l1_vs_raw(&rt);
    l2_hits(&rt);
    l2_misses(&rt);
    contention(&rt);
    http_gets(&rt);
}
