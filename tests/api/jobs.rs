//! Integration tests of the job queue: the REST contract and bad input, the worker
//! protocol for external workers, schedules, and a SIGKILL crash test on the real binary.

mod crash;
mod hardening;
mod live;
mod rest;
mod worker;

use crate::common::TestServer;
use serde_json::{Value, json};

/// Enqueues a job and asserts 201; returns its id.
pub async fn enqueue(s: &TestServer, body: Value) -> String {
    let (st, b) = s.post("/api/jobs", body).await;
    assert_eq!(st, 201, "{b}");
    b["job_id"].as_str().expect("job_id").to_string()
}

/// Claims for worker `w` from the default queue.
pub async fn claim(s: &TestServer, w: &str, max: usize) -> Vec<Value> {
    let (st, b) = s.post("/api/jobs/claim", json!({"queues": ["default"], "worker_id": w, "max": max})).await;
    assert_eq!(st, 200, "{b}");
    b.as_array().expect("array").clone()
}

/// A server whose in-process pools are off (every job is for external workers).
pub async fn server() -> TestServer {
    TestServer::start_with(|c| {
        c.job_queue.workers.clear();
        c.modules.search.enabled = false;
    })
    .await
}
