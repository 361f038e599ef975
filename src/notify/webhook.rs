//! The webhook channel: a signed JSON POST of the notification to the configured URL, sent
//! by the `notify.webhook` job with retries.
//!
//! The request has the same shape and signature as every hearth webhook (see
//! [`crate::webhooks`]): `POST <url>` with body `{"id", "event": "notification.created",
//! "created_at", "data": {"notification": {...}}}` and headers `X-Hearth-Event`,
//! `X-Hearth-Delivery` (the notification id, stable across retries so receivers can
//! de-duplicate), `X-Hearth-Timestamp` (Unix seconds) and, when a secret is configured,
//! `X-Hearth-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//! 2xx is success; 408, 429 and 5xx are retried; any other status is permanent.
//!
//! It runs as its own `notify.webhook` job rather than through
//! `crate::webhooks::enqueue_delivery` so that the outcome is recorded in the
//! notification's per-channel delivery state.

use super::channel::{DeliveryError, DeliveryInput, DeliveryMode, NotificationChannel};
use super::config::WebhookChannelConfig;
use super::error::NotifyError;
use super::model::Preferences;
use async_trait::async_trait;
use std::time::Duration;

/// The signature header value for a body sent at a timestamp (shared with every hearth
/// webhook; re-exported for callers that verified notification webhooks through here).
pub use crate::webhooks::signature;

/// The webhook channel.
pub struct WebhookChannel {
    url: Option<String>,
    secret: Option<String>,
    client: reqwest::Client,
    max_attempts: u32,
    retry_base_ms: u64,
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
            retry_base_ms: cfg.retry_base_ms,
        }
    }
}

#[async_trait]
impl NotificationChannel for WebhookChannel {
    fn name(&self) -> &str {
        super::model::WEBHOOK
    }

    fn mode(&self) -> DeliveryMode {
        DeliveryMode::Queued { max_attempts: self.max_attempts, retry_base_ms: self.retry_base_ms }
    }

    fn check(&self, _prefs: &Preferences) -> Result<(), NotifyError> {
        match &self.url {
            Some(_) => Ok(()),
            None => Err(NotifyError::Unavailable("the webhook channel has no URL: set notification.channels.webhook.url".into())),
        }
    }

    async fn deliver(&self, input: DeliveryInput<'_>) -> Result<(), DeliveryError> {
        let url = self.url.as_deref().ok_or_else(|| DeliveryError::Fatal("no webhook URL configured".into()))?;
        let n = input.notification;
        let envelope =
            serde_json::json!({"id": n.id, "event": "notification.created", "created_at": n.created_at, "data": {"notification": n}});
        let body = serde_json::to_vec(&envelope).map_err(|e| DeliveryError::Fatal(e.to_string()))?;
        let sent = crate::webhooks::post_signed(&self.client, url, "notification.created", &n.id, self.secret.as_deref(), body).await;
        match sent {
            Ok(_) => Ok(()),
            Err(crate::webhooks::PostError::Retry(m)) => Err(DeliveryError::Retry(format!("webhook: {m}"))),
            Err(crate::webhooks::PostError::Rejected(m)) => Err(DeliveryError::Fatal(format!("webhook: {m}"))),
        }
    }
}
