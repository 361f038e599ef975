//! The webhook channel (signed POST to a real receiver) and custom channels registered
//! through the `NotificationChannel` trait.

use super::support::wait_delivery;
use crate::common::TestServer;
use async_trait::async_trait;
use hearth::notify::{DeliveryError, DeliveryInput, DeliveryMode, NotificationChannel};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A receiver that records every request and answers 503 to the first one.
async fn receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, Vec<u8>)>) {
    use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let (tx, calls) = (tx.clone(), calls.clone());
            async move {
                let _ = tx.send((headers, body.to_vec()));
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    axum::http::StatusCode::SERVICE_UNAVAILABLE
                } else {
                    axum::http::StatusCode::NO_CONTENT
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

fn hmac_hex(secret: &str, msg: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(msg);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn webhook_channel_posts_signed_and_retries() {
    let (url, mut rx) = receiver().await;
    let secret = "notify-webhook-secret";
    let s = TestServer::start_with(move |c| {
        let w = &mut c.notification.channels.webhook;
        w.enabled = true;
        w.url = Some(url);
        w.secret = Some(secret.into());
        w.retry_base_ms = 20;
    })
    .await;
    let (st, b) =
        s.post("/api/notifications", json!({"type": "warning", "title": "disk", "user_id": "ops", "channels": ["webhook"]})).await;
    assert_eq!(st, 200, "{b}");
    let id = b["notification_id"].as_str().unwrap();
    let n = wait_delivery(&s, id, "webhook", "delivered").await;
    assert_eq!(n["deliveries"]["webhook"]["attempts"], 2, "the first answer was 503: {n}");

    let mut deliveries = Vec::new();
    while let Ok(d) = rx.try_recv() {
        deliveries.push(d);
    }
    assert_eq!(deliveries.len(), 2);
    for (headers, body) in &deliveries {
        let h = |k: &str| headers.get(k).unwrap().to_str().unwrap().to_string();
        assert_eq!(h("x-hearth-event"), "notification.created");
        assert_eq!(h("x-hearth-delivery"), id, "stable across retries");
        let ts = h("x-hearth-timestamp");
        let mut signed = ts.clone().into_bytes();
        signed.push(b'.');
        signed.extend_from_slice(body);
        assert_eq!(h("x-hearth-signature"), format!("sha256={}", hmac_hex(secret, &signed)));
        let v: Value = serde_json::from_slice(body).unwrap();
        assert_eq!(v["event"], "notification.created");
        assert_eq!(v["data"]["notification"]["id"], id);
        assert_eq!(v["data"]["notification"]["title"], "disk");
    }
}

/// A push provider that fails its first `fail_first` attempts.
struct FakePush {
    calls: AtomicUsize,
    fail_first: usize,
    fatal: bool,
}

#[async_trait]
impl NotificationChannel for FakePush {
    fn name(&self) -> &str {
        "push"
    }
    fn mode(&self) -> DeliveryMode {
        DeliveryMode::Queued { max_attempts: 3, retry_base_ms: 10 }
    }
    async fn deliver(&self, input: DeliveryInput<'_>) -> Result<(), DeliveryError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        assert_eq!(input.attempt as usize, n + 1);
        if self.fatal {
            return Err(DeliveryError::Fatal("device token revoked".into()));
        }
        if n < self.fail_first { Err(DeliveryError::Retry(format!("provider busy ({n})"))) } else { Ok(()) }
    }
}

#[tokio::test]
async fn custom_channels_are_delivered_by_jobs_with_retries() {
    let s = TestServer::start().await;
    let push = Arc::new(FakePush { calls: AtomicUsize::new(0), fail_first: 1, fatal: false });
    s.app.notify.register_channel(push.clone());
    let (st, b) =
        s.post("/api/notifications", json!({"type": "info", "title": "p", "user_id": "pu", "channels": ["push", "in-app"]})).await;
    assert_eq!(st, 200, "{b}");
    let n = wait_delivery(&s, b["notification_id"].as_str().unwrap(), "push", "delivered").await;
    assert_eq!(n["deliveries"]["push"]["attempts"], 2);
    assert_eq!(push.calls.load(Ordering::SeqCst), 2);
    // Preferences may name the custom channel too.
    let (st, _) = s.put("/api/notifications/preferences/pu", json!({"channels": {"error": ["push"]}})).await;
    assert_eq!(st, 200);

    // A permanent error fails at once, without using the remaining attempts.
    let bad = Arc::new(FakePush { calls: AtomicUsize::new(0), fail_first: 0, fatal: true });
    s.app.notify.register_channel(bad.clone());
    let (_, b) = s.post("/api/notifications", json!({"type": "info", "title": "p", "user_id": "pu", "channels": ["push"]})).await;
    let n = wait_delivery(&s, b["notification_id"].as_str().unwrap(), "push", "failed").await;
    assert_eq!(n["deliveries"]["push"]["error"], "device token revoked");
    assert_eq!(bad.calls.load(Ordering::SeqCst), 1);
}
