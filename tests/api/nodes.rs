//! Two `hearth serve` processes and one redis-server (append-only, `appendfsync always`)
//! act as one job service: `REDIS_URL` alone puts the job queue (and every other part with
//! a Redis backend) in Redis. Each test starts its own redis-server and its own nodes.

use crate::common::Child;
use hearth::cluster::test_server::RedisServer;
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

/// A node: a `hearth serve` process with its own data dir, sharing `redis`.
struct Node {
    child: Child,
    http: reqwest::Client,
    _dir: tempfile::TempDir,
}

impl Node {
    async fn start(redis: &RedisServer) -> Node {
        let dir = tempfile::tempdir().unwrap();
        let url = redis.url();
        let env = [
            ("REDIS_URL", url.as_str()),
            ("HEARTH__MODULES__SEARCH__ENABLED", "false"),
            ("HEARTH__JOB_QUEUE__SCHEDULER__MIN_INTERVAL_SECONDS", "1"),
        ];
        let child = Child::spawn(&dir.path().join("data"), &env).await;
        Node { child, http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap(), _dir: dir }
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.child.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let st = resp.status().as_u16();
        (st, resp.json().await.unwrap_or(Value::Null))
    }

    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    /// Claims up to `max` jobs of `default` as `worker` with a lease of `lease` seconds.
    async fn claim(&self, worker: &str, max: usize, lease: u64) -> Vec<Value> {
        let (st, body) = self.post("/api/jobs/claim", json!({"worker_id": worker, "max": max, "lease_seconds": lease})).await;
        assert_eq!(st, 200, "claim: {body}");
        body.as_array().cloned().unwrap_or_default()
    }

    async fn complete(&self, id: &str, worker: &str) -> (u16, Value) {
        self.post(&format!("/api/jobs/{id}/complete"), json!({"worker_id": worker, "result": {"by": worker}})).await
    }

    async fn job(&self, id: &str) -> Value {
        let (st, body) = self.get(&format!("/api/jobs/{id}")).await;
        assert_eq!(st, 200, "job {id}: {body}");
        body
    }
}

fn id_of(job: &Value) -> String {
    job["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_enqueued_on_one_node_is_claimed_and_completed_once_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let (st, body) = a.post("/api/jobs", json!({"name": "resize", "payload": {"n": 1}})).await;
    assert_eq!(st, 201, "{body}");
    let id = body["job_id"].as_str().unwrap().to_string();
    let claimed = b.claim("wb", 10, 60).await;
    assert_eq!(claimed.iter().map(id_of).collect::<Vec<_>>(), [id.clone()], "node B claims the job node A accepted");
    assert!(a.claim("wa", 10, 60).await.is_empty(), "a claimed job is not claimed again on the other node");
    let (st, body) = b.complete(&id, "wb").await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = a.complete(&id, "wb").await;
    assert_eq!(st, 409, "a second completion (through the other node) is a conflict");
    let on_a = a.job(&id).await;
    assert_eq!((on_a["status"].as_str(), on_a["result"]["by"].as_str()), (Some("completed"), Some("wb")), "{on_a}");
    let (_, queues) = b.get("/api/queues").await;
    let default = queues.as_array().unwrap().iter().find(|q| q["name"] == "default").cloned().unwrap_or_default();
    assert_eq!(default["counts"]["completed"], 1, "queue counts are cluster-wide: {queues}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_jobs_with_workers_on_both_nodes_each_finish_once() {
    let redis = RedisServer::start();
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let batch: Vec<Value> = (0..1000).map(|i| json!({"name": "work", "payload": {"i": i}})).collect();
    for chunk in batch.chunks(250) {
        let (st, body) = a.post("/api/jobs/batch", Value::Array(chunk.to_vec())).await;
        assert_eq!(st, 201, "{body}");
    }
    async fn drain(node: &Node, worker: &str) -> Vec<String> {
        let mut done = Vec::new();
        loop {
            let jobs = node.claim(worker, 25, 60).await;
            if jobs.is_empty() {
                return done;
            }
            for j in jobs {
                let id = id_of(&j);
                let (st, body) = node.complete(&id, worker).await;
                assert_eq!(st, 200, "{body}");
                done.push(id);
            }
        }
    }
    let (on_a, on_b) = tokio::join!(drain(&a, "wa"), drain(&b, "wb"));
    let all: HashSet<&String> = on_a.iter().chain(&on_b).collect();
    assert_eq!(on_a.len() + on_b.len(), 1000, "each job finished once ({} on A, {} on B)", on_a.len(), on_b.len());
    assert_eq!(all.len(), 1000, "no job finished twice");
    assert!(!on_a.is_empty() && !on_b.is_empty(), "both nodes took some: {} on A, {} on B", on_a.len(), on_b.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_leased_through_a_killed_node_run_on_the_other_after_the_lease() {
    let redis = RedisServer::start();
    let (mut a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let batch: Vec<Value> = (0..5).map(|i| json!({"name": "work", "payload": {"i": i}})).collect();
    let (st, body) = a.post("/api/jobs/batch", Value::Array(batch)).await;
    assert_eq!(st, 201, "{body}");
    let leased: HashSet<String> = a.claim("wa", 5, 1).await.iter().map(id_of).collect();
    assert_eq!(leased.len(), 5);
    a.child.kill();
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut rerun = HashSet::new();
    while rerun.len() < 5 && Instant::now() < deadline {
        for j in b.claim("wb", 5, 60).await {
            assert_eq!(j["attempts"], 2, "the expired lease counted an attempt: {j}");
            let (st, body) = b.complete(&id_of(&j), "wb").await;
            assert_eq!(st, 200, "{body}");
            rerun.insert(id_of(&j));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(rerun, leased, "node B ran every job the killed node had leased, once its lease ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_cron_schedule_on_both_nodes_gives_one_run_per_slot() {
    let redis = RedisServer::start();
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let (st, body) = a.post("/api/schedules", json!({"name": "tick", "cron": "* * * * * *", "job": {"name": "tick.run"}})).await;
    assert!(st == 200 || st == 201, "{body}");
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let (_, b_sched) = b.get("/api/schedules/tick").await;
    assert_eq!(b_sched["name"], "tick", "node B sees node A's schedule: {b_sched}");
    let mut runs: HashMap<String, usize> = HashMap::new();
    let (st, list) = b.get("/api/jobs?name=tick.run&limit=100").await;
    assert_eq!(st, 200, "{list}");
    let jobs = list["jobs"].as_array().cloned().unwrap_or_default();
    for j in &jobs {
        *runs.entry(id_of(j)).or_default() += 1;
    }
    assert!(jobs.len() >= 2, "the schedule fired: {list}");
    assert!(jobs.len() <= 6, "one job per one-second slot over ~4.5 s, not one per node: {} jobs", jobs.len());
    assert!(runs.values().all(|n| *n == 1) && runs.keys().all(|id| id.starts_with("schedule:tick:")), "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_restart_mid_run_loses_nothing_acknowledged_and_both_nodes_recover() {
    let mut redis = RedisServer::start();
    let (a, b) = (Node::start(&redis).await, Node::start(&redis).await);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let (st, body) = a.post("/api/jobs", json!({"name": "work", "payload": {"i": i}})).await;
        assert_eq!(st, 201, "{body}");
        acknowledged.push(body["job_id"].as_str().unwrap().to_string());
    }
    redis.kill();
    let (st, body) = b.post("/api/jobs", json!({"name": "work"})).await;
    assert_eq!(st, 503, "redis down: 503, not 500 and not a hang: {body}");
    assert_eq!(body["error"]["code"], "backend_unavailable", "{body}");
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut done = HashSet::new();
    while done.len() < acknowledged.len() && Instant::now() < deadline {
        for node in [&a, &b] {
            let (st, body) = node.post("/api/jobs/claim", json!({"worker_id": "w", "max": 10})).await;
            if st != 200 {
                continue; // still reconnecting
            }
            for j in body.as_array().cloned().unwrap_or_default() {
                let (st, body) = node.complete(&id_of(&j), "w").await;
                assert_eq!(st, 200, "{body}");
                done.insert(id_of(&j));
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let want: HashSet<String> = acknowledged.into_iter().collect();
    assert_eq!(done, want, "every acknowledged job survived the redis-server restart and ran once");
}
