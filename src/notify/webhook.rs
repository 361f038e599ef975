//! The webhook channel: a signed JSON POST of the notification to the configured URL, sent
//! by the `notify.webhook` job with retries.
//!
//! Request: `POST <url>` with body `{"event": "notification.created", "notification": {...}}`
//! and headers `X-Hearth-Event`, `X-Hearth-Delivery` (the notification id, stable across
//! retries so receivers can de-duplicate), `X-Hearth-Timestamp` (Unix seconds) and, when a
//! secret is configured, `X-Hearth-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! 2xx is success; 408, 429 and 5xx are retried; any other status is permanent.

use super::channel::{DeliveryError, DeliveryInput, DeliveryMode, NotificationChannel};
use super::config::WebhookChannelConfig;
use super::error::NotifyError;
use super::model::Preferences;
use async_trait::async_trait;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// The signature header value for `body` sent at `timestamp`.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("hmac takes any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The webhook channel.
pub struct WebhookChannel {
    url: Option<String>,
    secret: Option<String>,
    client: reqwest::Client,
    max_attempts: u32,
}

impl WebhookChannel {
    /// Builds the channel from config.
    pub fn new(cfg: &WebhookChannelConfig) -> WebhookChannel {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(cfg.timeout_seconds.max(1))).build().unwrap_or_default();
        WebhookChannel {
            url: cfg.url.clone().filter(|u| !u.is_empty()),
            secret: cfg.secret.clone(),
            client,
            max_attempts: cfg.max_attempts.max(1),
        }
    }
}

#[async_trait]
impl NotificationChannel for WebhookChannel {
    fn name(&self) -> &str {
        super::model::WEBHOOK
    }

    fn mode(&self) -> DeliveryMode {
        DeliveryMode::Queued { max_attempts: self.max_attempts }
    }

    fn check(&self, _prefs: &Preferences) -> Result<(), NotifyError> {
        match &self.url {
            Some(_) => Ok(()),
            None => Err(NotifyError::Unavailable("the webhook channel has no URL: set notification.channels.webhook.url".into())),
        }
    }

    async fn deliver(&self, input: DeliveryInput<'_>) -> Result<(), DeliveryError> {
        let url = self.url.as_deref().ok_or_else(|| DeliveryError::Fatal("no webhook URL configured".into()))?;
        let body = serde_json::to_vec(&serde_json::json!({"event": "notification.created", "notification": input.notification}))
            .map_err(|e| DeliveryError::Fatal(e.to_string()))?;
        let ts = chrono::Utc::now().timestamp();
        let mut req = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Hearth-Event", "notification.created")
            .header("X-Hearth-Delivery", input.notification.id.as_str())
            .header("X-Hearth-Timestamp", ts.to_string());
        if let Some(secret) = &self.secret {
            req = req.header("X-Hearth-Signature", signature(secret, ts, &body));
        }
        let resp = req.body(body).send().await.map_err(|e| DeliveryError::Retry(format!("webhook POST failed: {e}")))?;
        let status = resp.status();
        if status.is_success() {
            Ok(())
        } else if status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429 {
            Err(DeliveryError::Retry(format!("webhook answered {status}")))
        } else {
            Err(DeliveryError::Fatal(format!("webhook answered {status}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_is_hmac_of_timestamp_and_body() {
        let s = signature("k", 1, b"{}");
        assert!(s.starts_with("sha256="));
        assert_eq!(s.len(), 7 + 64);
        assert_ne!(s, signature("k", 2, b"{}"));
        assert_ne!(s, signature("other", 1, b"{}"));
    }
}
