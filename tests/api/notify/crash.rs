//! Acknowledged notifications survive SIGKILL of the real binary.

use crate::common::Child;
use serde_json::{Value, json};

#[tokio::test]
async fn acknowledged_notifications_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let c = reqwest::Client::new();
    let mut child = Child::spawn(&data, &[]).await;
    let mut acked = Vec::new();
    for i in 0..20 {
        let r = c
            .post(format!("{}/api/notifications", child.base))
            .json(&json!({"type": "info", "title": format!("n{i}"), "user_id": "crash"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        acked.push(r.json::<Value>().await.unwrap()["notification_id"].as_str().unwrap().to_string());
    }
    let r = c.post(format!("{}/api/notifications/{}/read", child.base, acked[0])).send().await.unwrap();
    assert_eq!(r.status(), 200);
    child.kill();

    let child = Child::spawn(&data, &[]).await;
    let list: Vec<Value> =
        c.get(format!("{}/api/notifications?user_id=crash&limit=200", child.base)).send().await.unwrap().json().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|n| n["id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = acked.iter().rev().map(String::as_str).collect();
    assert_eq!(ids, expected, "every acknowledged notification is back, newest first");
    let count: Value =
        c.get(format!("{}/api/notifications/unread_count?user_id=crash", child.base)).send().await.unwrap().json().await.unwrap();
    assert_eq!(count["unread_count"], 19, "the acknowledged read survived too");
}
