//! The REST contract of jobs, queues and schedules, and bad input.

use super::{claim, enqueue, server};
use crate::common::{TestServer, assert_error};
use serde_json::json;

#[tokio::test]
async fn enqueue_get_list_and_cancel() {
    let s = server().await;
    let (st, b) = s.post("/api/jobs", json!({"name": "transcribe", "payload": {"file_id": "123"}, "priority": 7})).await;
    assert_eq!(st, 201, "{b}");
    assert_eq!(b["status"], "pending");
    let id = b["job_id"].as_str().unwrap().to_string();
    let (st, j) = s.get(&format!("/api/jobs/{id}")).await;
    assert_eq!(st, 200);
    for field in [
        "id",
        "name",
        "queue",
        "payload",
        "priority",
        "status",
        "attempts",
        "max_attempts",
        "run_at",
        "created_at",
        "started_at",
        "finished_at",
        "result",
        "errors",
        "progress_id",
        "depends_on",
    ] {
        assert!(j.get(field).is_some(), "missing {field} in {j}");
    }
    assert_eq!((j["queue"].as_str(), j["priority"].as_u64(), j["max_attempts"].as_u64()), (Some("default"), Some(7), Some(3)));
    assert_eq!(j["payload"]["file_id"], "123");
    let (_, b) = s.post("/api/jobs", json!({"name": "later", "payload": {}, "delay": 60})).await;
    assert_eq!(b["status"], "scheduled");
    let later = b["job_id"].as_str().unwrap().to_string();
    for _ in 0..3 {
        enqueue(&s, json!({"name": "filler", "payload": {}})).await;
    }
    // Newest first, paged by cursor (body and header agree).
    let r = s.client.get(s.url("/api/jobs?limit=2")).send().await.unwrap();
    let header = r.headers().get("x-next-cursor").map(|v| v.to_str().unwrap().to_string());
    let page: serde_json::Value = r.json().await.unwrap();
    assert_eq!(page["jobs"].as_array().unwrap().len(), 2);
    assert_eq!(header.as_deref(), page["next_cursor"].as_str());
    let mut seen: Vec<String> = page["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
    let mut cursor = page["next_cursor"].as_str().map(str::to_string);
    while let Some(c) = cursor {
        let (st, p) = s.get(&format!("/api/jobs?limit=2&cursor={c}")).await;
        assert_eq!(st, 200);
        seen.extend(p["jobs"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap().to_string()));
        cursor = p["next_cursor"].as_str().map(str::to_string);
    }
    assert_eq!(seen.len(), 5);
    assert_eq!(seen.last(), Some(&id), "oldest last");
    let (_, p) = s.get("/api/jobs?status=scheduled&name=later").await;
    assert_eq!(p["jobs"][0]["id"].as_str(), Some(later.as_str()));
    // Cancel a waiting job: it is never claimed.
    let (st, b) = s.delete(&format!("/api/jobs/{id}")).await;
    assert_eq!((st, b), (200, json!({"success": true})));
    assert_eq!(s.get(&format!("/api/jobs/{id}")).await.1["status"], "cancelled");
    let claimed = claim(&s, "w", 10).await;
    assert!(claimed.iter().all(|j| j["id"] != id.as_str()));
    // Completed jobs cannot be cancelled.
    let done = claimed[0]["id"].as_str().unwrap();
    assert_eq!(s.post(&format!("/api/jobs/{done}/complete"), json!({"result": 1})).await.0, 200);
    let (st, b) = s.delete(&format!("/api/jobs/{done}")).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    let (st, b) = s.get("/api/jobs/nope").await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_field() {
    let s = TestServer::start_with(|c| {
        c.job_queue.workers.clear();
        c.job_queue.max_payload_bytes = 1000;
        c.modules.search.enabled = false;
    })
    .await;
    let cases = [
        (json!({"name": "x", "payload": {}, "priority": 10}), "priority"),
        (json!({"name": "x", "payload": {}, "priority": -1}), "priority"),
        (json!({"name": "x", "payload": {}, "delay": -5}), "delay"),
        (json!({"name": "x", "payload": {}, "backoff": {"type": "sometimes"}}), "backoff.type"),
        (json!({"name": "x", "payload": {}, "max_attempts": 0}), "max_attempts"),
        (json!({"name": "x", "payload": {}, "timeout": 0}), "timeout"),
        (json!({"name": "x", "payload": {}, "depends_on": ["missing-job"]}), "depends_on[0]"),
        (json!({"name": "", "payload": {}}), "name"),
        (json!({"payload": {}}), "name"),
        (json!({"name": "x", "queue": "a b"}), "queue"),
        (json!({"name": "x", "unique_for": 10}), "unique_for"),
        (json!({"name": "x", "colour": "red"}), "colour"),
    ];
    for (body, field) in cases {
        let (st, b) = s.post("/api/jobs", body.clone()).await;
        assert_error(st, &b, 400);
        assert!(b["error"]["field"].as_str().is_some_and(|f| f == field || f.starts_with(field)), "{body} -> {b}");
    }
    let (st, b) = s.post("/api/jobs", json!({"name": "x", "payload": {"blob": "a".repeat(2000)}})).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    let (st, b) = s.post("/api/jobs/batch", json!([{"name": "ok"}, {"name": "x", "priority": 12}])).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "[1].priority");
    assert_eq!(s.get("/api/jobs").await.1["jobs"].as_array().unwrap().len(), 0, "a rejected batch writes nothing");
    for (q, field) in [("status=bogus", "status"), ("limit=0", "limit"), ("cursor=abc", "cursor"), ("limit=x", "limit")] {
        let (st, b) = s.get(&format!("/api/jobs?{q}")).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_query", "{q}: {b}");
        assert_eq!(b["error"]["field"], field);
    }
    let (st, b) = s.post("/api/schedules", json!({"name": "s", "cron": "every tuesday", "job": {"name": "x"}})).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "cron");
    let (st, b) =
        s.post("/api/schedules", json!({"name": "s", "cron": "* * * * *", "timezone": "Mars/Olympus", "job": {"name": "x"}})).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "timezone");
    let (st, b) = s.post("/api/jobs/claim", json!({"worker_id": "w", "max": 0})).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "max");
    let r = s.client.post(s.url("/api/jobs")).header("content-type", "application/json").body("{nope").send().await.unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn unique_jobs_batches_and_dependencies() {
    let s = server().await;
    let body = json!({"name": "sync", "payload": {}, "unique_key": "user:1", "unique_for": 60});
    let (st1, a) = s.post("/api/jobs", body.clone()).await;
    let (st2, b) = s.post("/api/jobs", body).await;
    assert_eq!((st1, st2), (201, 200));
    assert_eq!(a["job_id"], b["job_id"]);
    assert_eq!(b["existing"], true);
    let (st, list) = s.post("/api/jobs/batch", json!([{"name": "a"}, {"name": "b", "priority": 9}])).await;
    assert_eq!(st, 201, "{list}");
    let first = list[0]["job_id"].as_str().unwrap().to_string();
    let dep = enqueue(&s, json!({"name": "after", "priority": 9, "depends_on": [first.clone()]})).await;
    let got: Vec<String> = claim(&s, "w", 10).await.iter().map(|j| j["id"].as_str().unwrap().to_string()).collect();
    assert!(!got.contains(&dep), "a job waits for its dependencies");
    assert_eq!(s.post(&format!("/api/jobs/{first}/complete"), json!({})).await.0, 200);
    let got = claim(&s, "w", 10).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["id"].as_str(), Some(dep.as_str()));
}

#[tokio::test]
async fn queues_report_counts_pause_and_resume() {
    let s = server().await;
    enqueue(&s, json!({"name": "nobody-handles-me", "queue": "mail"})).await;
    enqueue(&s, json!({"name": "nobody-handles-me", "queue": "mail"})).await;
    let (st, qs) = s.get("/api/queues").await;
    assert_eq!(st, 200);
    let mail = qs.as_array().unwrap().iter().find(|q| q["name"] == "mail").expect("mail queue listed").clone();
    assert_eq!(mail["counts"]["pending"], 2);
    assert!(mail["oldest_waiting_seconds"].as_f64().is_some());
    let (st, q) = s.post("/api/queues/mail/pause", json!({})).await;
    assert_eq!((st, q["paused"].as_bool()), (200, Some(true)));
    let (_, got) = s.post("/api/jobs/claim", json!({"queues": ["mail"], "worker_id": "w", "max": 5})).await;
    assert_eq!(got.as_array().unwrap().len(), 0, "a paused queue is skipped");
    s.post("/api/queues/mail/resume", json!({})).await;
    let (_, got) = s.post("/api/jobs/claim", json!({"queues": ["mail"], "worker_id": "w", "max": 5})).await;
    assert_eq!(got.as_array().unwrap().len(), 2);
    let (st, b) = s.post("/api/queues/bad%20name/pause", json!({})).await;
    assert_error(st, &b, 400);
}

#[tokio::test]
async fn schedules_crud() {
    let s = server().await;
    let (st, sc) = s
        .post("/api/schedules", json!({"name": "digest", "cron": "0 8 * * 1-5", "timezone": "Europe/Berlin", "job": {"name": "email.digest", "payload": {"k": 1}}}))
        .await;
    assert_eq!(st, 201, "{sc}");
    assert!(sc["next_run"].is_string());
    let (st, all) = s.get("/api/schedules").await;
    assert_eq!((st, all.as_array().unwrap().len()), (200, 1));
    assert_eq!(s.get("/api/schedules/digest").await.1["job"]["payload"]["k"], 1);
    assert_eq!(s.delete("/api/schedules/digest").await.0, 200);
    let (st, b) = s.get("/api/schedules/digest").await;
    assert_error(st, &b, 404);
}

#[tokio::test]
async fn metrics_are_exported() {
    let s = server().await;
    let id = enqueue(&s, json!({"name": "m"})).await;
    claim(&s, "w", 1).await;
    s.post(&format!("/api/jobs/{id}/complete"), json!({})).await;
    let text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for m in [
        "hearth_jobs_enqueued_total",
        "hearth_jobs_started_total",
        "hearth_jobs_completed_total",
        "hearth_jobs_wait_seconds",
        "hearth_jobs_run_seconds",
    ] {
        assert!(text.contains(m), "{m} missing from /metrics");
    }
}
