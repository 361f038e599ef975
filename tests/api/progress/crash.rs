//! Crash safety on the real binary: SIGKILL right after acknowledged transitions, then a
//! restart on the same data directory.

use crate::common::Child;
use serde_json::{Value, json};

async fn call(c: &reqwest::Client, method: &str, url: String, body: Option<Value>) -> (u16, Value) {
    let mut req = c.request(method.parse().unwrap(), url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    crate::common::split(req.send().await.unwrap()).await
}

#[tokio::test]
async fn acknowledged_transitions_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c = reqwest::Client::new();
    let mut child = Child::spawn(&data, &[]).await;
    let base = child.base.clone();
    let (st, _) = call(&c, "POST", format!("{base}/api/progress"), Some(json!({"id": "done", "stages": ["a", "b"]}))).await;
    assert_eq!(st, 201);
    let (st, _) = call(&c, "PATCH", format!("{base}/api/progress/done"), Some(json!({"progress": 40}))).await;
    assert_eq!(st, 200);
    let (st, p) = call(&c, "POST", format!("{base}/api/progress/done/complete"), Some(json!({"result": {"n": 1}}))).await;
    assert_eq!((st, p["status"].as_str()), (200, Some("completed")));

    let (st, _) = call(&c, "POST", format!("{base}/api/progress"), Some(json!({"id": "mid", "stages": ["a", "b", "c"]}))).await;
    assert_eq!(st, 201);
    let reported: Vec<f64> = (1..=30).map(|i| i as f64 * 3.0).collect();
    let (st, _) = call(&c, "PATCH", format!("{base}/api/progress/mid"), Some(json!({"progress": 10, "stage": "b"}))).await;
    assert_eq!(st, 200);
    for p in &reported {
        let (st, _) = call(&c, "PATCH", format!("{base}/api/progress/mid"), Some(json!({"progress": p}))).await;
        assert_eq!(st, 200);
    }
    child.kill();

    let child = Child::spawn(&data, &[]).await;
    let base = child.base.clone();
    let (st, p) = call(&c, "GET", format!("{base}/api/progress/done"), None).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!((p["status"].as_str(), p["overall"].as_f64()), (Some("completed"), Some(100.0)));
    assert_eq!(p["result"], json!({"n": 1}));
    // Never behind the acknowledged stage change; the percent is one that was reported.
    let (st, m) = call(&c, "GET", format!("{base}/api/progress/mid"), None).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!((m["stage"].as_str(), m["status"].as_str()), (Some("b"), Some("processing")));
    let pct = m["progress"].as_f64().unwrap();
    assert!(pct == 10.0 || reported.contains(&pct), "stored percent {pct} was never reported");
    // And it still works after the restart.
    let (st, p) = call(&c, "POST", format!("{base}/api/progress/mid/complete"), None).await;
    assert_eq!((st, p["status"].as_str()), (200, Some("completed")));
}
