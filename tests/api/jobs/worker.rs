//! The worker protocol: claim / heartbeat / complete / fail, retries and the dead-letter view.

use super::{claim, enqueue, server};
use crate::common::assert_error;
use serde_json::json;
use std::time::{Duration, Instant};

#[tokio::test]
async fn claim_complete_fail_retry_and_dead_letters() {
    let s = server().await;
    let low = enqueue(&s, json!({"name": "w", "priority": 1})).await;
    let high = enqueue(&s, json!({"name": "w", "priority": 9})).await;
    let mid = enqueue(&s, json!({"name": "w", "priority": 5, "max_attempts": 1})).await;
    let got = claim(&s, "w1", 2).await;
    assert_eq!(got.iter().map(|j| j["id"].as_str().unwrap()).collect::<Vec<_>>(), vec![high.as_str(), mid.as_str()]);
    assert!(got.iter().all(|j| j["status"] == "running" && j["attempts"] == 1));
    // Another worker cannot report on w1's job.
    let (st, b) = s.post(&format!("/api/jobs/{high}/complete"), json!({"worker_id": "w2"})).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    let (st, ack) = s.post(&format!("/api/jobs/{high}/heartbeat"), json!({"worker_id": "w1", "lease_seconds": 120})).await;
    assert_eq!(st, 200, "{ack}");
    assert_eq!(ack["cancel_requested"], false);
    let (st, j) = s.post(&format!("/api/jobs/{high}/complete"), json!({"worker_id": "w1", "result": {"words": 3}})).await;
    assert_eq!(st, 200, "{j}");
    assert_eq!((j["status"].as_str(), j["result"]["words"].as_i64()), (Some("completed"), Some(3)));
    let (st, _) = s.post(&format!("/api/jobs/{high}/complete"), json!({})).await;
    assert_eq!(st, 409, "a completed job cannot complete twice");
    let (st, j) = s.post(&format!("/api/jobs/{mid}/fail"), json!({"worker_id": "w1", "error": "disk full"})).await;
    assert_eq!(st, 200);
    assert_eq!(j["status"], "dead", "max_attempts 1");
    assert_eq!(j["errors"][0]["error"], "disk full");
    let (_, dead) = s.get("/api/jobs?status=dead").await;
    assert_eq!(dead["jobs"].as_array().unwrap().len(), 1);
    let (st, j) = s.post(&format!("/api/jobs/{mid}/retry"), json!({})).await;
    assert_eq!((st, j["status"].as_str()), (200, Some("pending")));
    let (st, b) = s.post(&format!("/api/jobs/{low}/retry"), json!({})).await;
    assert_eq!(assert_error(st, &b, 409), "conflict", "a pending job is not retried");
    let got = claim(&s, "w1", 5).await;
    assert_eq!(got.len(), 2);
    // Cancel a running job: the worker learns it from its heartbeat, and it ends cancelled.
    assert_eq!(s.delete(&format!("/api/jobs/{low}")).await.0, 200);
    let (_, ack) = s.post(&format!("/api/jobs/{low}/heartbeat"), json!({})).await;
    assert_eq!(ack["cancel_requested"], true);
    let (_, j) = s.post(&format!("/api/jobs/{low}/fail"), json!({"error": "stopped"})).await;
    assert_eq!(j["status"], "cancelled");
    let (st, b) = s.post("/api/jobs/nope/heartbeat", json!({})).await;
    assert_error(st, &b, 404);
}

#[tokio::test]
async fn a_batch_complete_ends_each_job_on_its_own() {
    let s = server().await;
    let a = enqueue(&s, json!({"name": "b", "priority": 9})).await;
    let b = enqueue(&s, json!({"name": "b", "priority": 8})).await;
    let c = enqueue(&s, json!({"name": "b", "priority": 7})).await;
    let waiting = enqueue(&s, json!({"name": "b", "priority": 0})).await;
    assert_eq!(claim(&s, "w1", 3).await.len(), 3);
    // c is cancelled while running: completing it ends it cancelled.
    assert_eq!(s.delete(&format!("/api/jobs/{c}")).await.0, 200);
    let body = json!({"worker_id": "w1", "jobs": [
        {"id": a, "result": {"n": 1}}, {"id": waiting}, {"id": "missing"}, {"id": b, "result": [2]}, {"id": c}
    ]});
    let (st, r) = s.post("/api/jobs/complete", body.clone()).await;
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["completed"], 3, "{r}");
    let res = r["results"].as_array().unwrap();
    assert_eq!(res.iter().map(|x| x["id"].as_str().unwrap()).collect::<Vec<_>>(), vec![a.as_str(), &waiting, "missing", &b, &c]);
    assert_eq!(
        (res[0]["status"].as_str(), res[3]["status"].as_str(), res[4]["status"].as_str()),
        (Some("completed"), Some("completed"), Some("cancelled"))
    );
    assert_eq!((res[1]["error"]["status"].as_u64(), res[1]["error"]["code"].as_str()), (Some(409), Some("conflict")), "not running");
    assert_eq!((res[2]["error"]["status"].as_u64(), res[2]["error"]["code"].as_str()), (Some(404), Some("not_found")));
    let (_, j) = s.get(&format!("/api/jobs/{a}")).await;
    assert_eq!((j["status"].as_str(), j["result"]["n"].as_i64()), (Some("completed"), Some(1)));
    let (_, j) = s.get(&format!("/api/jobs/{waiting}")).await;
    assert_eq!(j["status"], "pending", "an error leaves the job as it was");
    // Another worker's lease, and bad batches.
    assert_eq!(claim(&s, "w1", 1).await.len(), 1);
    let (_, r) = s.post("/api/jobs/complete", json!({"worker_id": "w2", "jobs": [{"id": waiting}]})).await;
    assert_eq!((r["completed"].as_u64(), r["results"][0]["error"]["code"].as_str()), (Some(0), Some("conflict")));
    let (st, e) = s.post("/api/jobs/complete", json!({"jobs": []})).await;
    assert_eq!(assert_error(st, &e, 400), "invalid_field");
    assert_eq!(e["error"]["field"], "jobs");
    let (st, e) = s.post("/api/jobs/complete", json!({"jobs": [{"id": waiting}, {"id": waiting}]})).await;
    assert_eq!(assert_error(st, &e, 400), "invalid_field");
    assert_eq!(e["error"]["field"], "jobs[1].id");
    let (st, e) = s.post("/api/jobs/complete", json!({"jobs": [{"idd": waiting}]})).await;
    assert_error(st, &e, 400);
}

#[tokio::test]
async fn a_retryable_failure_waits_for_its_backoff() {
    let s = server().await;
    let id = enqueue(&s, json!({"name": "r", "backoff": {"type": "fixed", "base_ms": 300, "max_ms": 300, "jitter": false}})).await;
    claim(&s, "w", 1).await;
    let (_, j) = s.post(&format!("/api/jobs/{id}/fail"), json!({"error": "flaky"})).await;
    assert_eq!(j["status"], "failed");
    assert!(claim(&s, "w", 1).await.is_empty(), "not before its backoff");
    tokio::time::sleep(Duration::from_millis(350)).await;
    let got = claim(&s, "w", 1).await;
    assert_eq!(got[0]["attempts"], 2);
}

#[tokio::test]
async fn an_expired_lease_returns_the_job_to_its_queue() {
    let s = server().await;
    let id = enqueue(&s, json!({"name": "lease"})).await;
    let (_, got) = s.post("/api/jobs/claim", json!({"worker_id": "w", "lease_seconds": 1})).await;
    assert_eq!(got[0]["id"].as_str(), Some(id.as_str()));
    let t0 = Instant::now();
    loop {
        let (_, j) = s.get(&format!("/api/jobs/{id}")).await;
        if j["status"] == "pending" {
            assert_eq!(j["attempts"], 1);
            assert_eq!(j["errors"][0]["error"], "lease expired");
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "lease never expired: {j}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(claim(&s, "w2", 1).await[0]["attempts"], 2);
}

#[tokio::test]
async fn a_long_poll_claim_is_woken_by_the_enqueue() {
    let s = server().await;
    let url = s.url("/api/jobs/claim");
    let client = s.client.clone();
    let waiter = tokio::spawn(async move {
        let t0 = Instant::now();
        let r = client.post(url).json(&json!({"worker_id": "w", "wait_ms": 10000})).send().await.unwrap();
        let v: serde_json::Value = r.json().await.unwrap();
        (v, t0.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let id = enqueue(&s, json!({"name": "poke"})).await;
    let (v, took) = waiter.await.unwrap();
    assert_eq!(v[0]["id"].as_str(), Some(id.as_str()));
    assert!(took < Duration::from_secs(5), "the claim waited for its timeout instead of the enqueue: {took:?}");
}

#[tokio::test]
async fn a_claim_may_long_poll_as_long_as_the_server_allows_and_the_schema_says() {
    let s = crate::common::TestServer::start_with(|c| {
        c.modules.search.enabled = false;
        c.job_queue.max_claim_wait_ms = 250;
    })
    .await;
    let (st, spec) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    assert_eq!(spec["components"]["schemas"]["ClaimRequest"]["properties"]["wait_ms"]["maximum"], 250);
    let (st, e) = s.post("/api/jobs/claim", json!({"worker_id": "w", "queues": ["default"], "wait_ms": 251})).await;
    assert_eq!(assert_error(st, &e, 400), "invalid_field");
    assert_eq!(e["error"]["field"], "wait_ms", "{e}");
    let t0 = Instant::now();
    let (st, jobs) = s.post("/api/jobs/claim", json!({"worker_id": "w", "queues": ["default"], "wait_ms": 250})).await;
    assert_eq!((st, jobs), (200, json!([])), "nothing ready: an empty answer after the wait");
    assert!(t0.elapsed() >= Duration::from_millis(250), "it waited: {:?}", t0.elapsed());
}

#[tokio::test]
async fn in_process_handlers_and_external_workers_share_queues() {
    let s = crate::common::TestServer::start_with(|c| c.modules.search.enabled = false).await;
    s.app.jobs.handler("local.echo", |_ctx, p| async move { Ok(p) });
    let local = enqueue(&s, json!({"name": "local.echo", "payload": {"x": 1}})).await;
    let ext = enqueue(&s, json!({"name": "external.thing"})).await;
    let t0 = Instant::now();
    loop {
        let (_, j) = s.get(&format!("/api/jobs/{local}")).await;
        if j["status"] == "completed" {
            assert_eq!(j["result"]["x"], 1);
            break;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "{j}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The external job stays pending for an external worker; it never goes to the pool.
    assert_eq!(s.get(&format!("/api/jobs/{ext}")).await.1["status"], "pending");
    assert_eq!(claim(&s, "w", 5).await.len(), 1);
}
