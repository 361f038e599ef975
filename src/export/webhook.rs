//! Completion callbacks (seed "Webhook Callbacks"): a signed JSON POST to the export's
//! `webhook_url`, sent by the `export.webhook` job so it is durable and retried.
//!
//! Request: `POST <url>`, body `{"event": "export.completed" | "export.failed", "export": {...}}`,
//! headers `X-Hearth-Event`, `X-Hearth-Delivery` (the export id, stable across retries),
//! `X-Hearth-Timestamp` (Unix seconds) and, with a secret,
//! `X-Hearth-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>` — the same
//! scheme as notification webhooks ([`crate::notify::webhook::signature`]).
//! 2xx is success; 408, 429 and 5xx are retried with backoff; other statuses are final.

use crate::jobs::{EnqueueRequest, JobFailure, JobQueue};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Job name of webhook deliveries.
pub const JOB: &str = "export.webhook";

/// Payload of one delivery job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Delivery {
    /// Target URL.
    pub url: String,
    /// HMAC secret, if any.
    pub secret: Option<String>,
    /// Event name.
    pub event: String,
    /// Export id (delivery id).
    pub export_id: String,
    /// The JSON body, as text (signed byte for byte).
    pub body: String,
}

/// Registers the delivery handler on the queue.
pub fn register(jobs: &JobQueue) {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap_or_default();
    jobs.handler(JOB, move |_ctx, payload| {
        let client = client.clone();
        async move {
            let d: Delivery = serde_json::from_value(payload).map_err(|e| JobFailure::fatal(format!("bad delivery payload: {e}")))?;
            deliver(&client, &d).await.map(|status| serde_json::json!({ "status": status }))
        }
    });
}

/// Sends one delivery.
pub async fn deliver(client: &reqwest::Client, d: &Delivery) -> Result<u16, JobFailure> {
    let ts = chrono::Utc::now().timestamp();
    let mut req = client
        .post(&d.url)
        .header("content-type", "application/json")
        .header("x-hearth-event", &d.event)
        .header("x-hearth-delivery", &d.export_id)
        .header("x-hearth-timestamp", ts.to_string());
    if let Some(secret) = &d.secret {
        req = req.header("x-hearth-signature", crate::notify::webhook::signature(secret, ts, d.body.as_bytes()));
    }
    let resp = req.body(d.body.clone()).send().await.map_err(|e| JobFailure::retry(format!("webhook POST failed: {e}")))?;
    let status = resp.status().as_u16();
    match status {
        200..=299 => Ok(status),
        408 | 429 | 500..=599 => Err(JobFailure::retry(format!("webhook answered {status}"))),
        _ => Err(JobFailure::fatal(format!("webhook answered {status}"))),
    }
}

/// Enqueues a delivery (durable once this returns).
pub async fn enqueue(jobs: &JobQueue, d: Delivery) -> Result<(), String> {
    let payload = serde_json::to_value(&d).map_err(|e| e.to_string())?;
    let req = EnqueueRequest { max_attempts: Some(5), timeout: Some(30), ..EnqueueRequest::new(JOB, payload) };
    jobs.enqueue(req).await.map(|_| ()).map_err(|e| e.to_string())
}
