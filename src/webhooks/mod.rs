//! Outgoing webhooks: signed, retried, at-least-once HTTP callbacks.
//!
//! Two kinds of delivery share one mechanism:
//! - **Subscriptions** from config (`webhooks: [{url, events, secret}]`): a dispatcher task
//!   matches every bus event against the subscriptions' topic patterns (`job.completed`,
//!   `job.*`, `*`) and enqueues one delivery per match.
//! - **Ad-hoc callbacks** from modules (an export's `webhook_url`), through
//!   [`enqueue_delivery`].
//!
//! Each delivery is a `hearth.webhook` job on the job queue, so it inherits durability,
//! retries with exponential backoff and the dead-letter view. The job's payload is empty:
//! what to send where (URL, event, body, subscription) and the secret of an ad-hoc
//! delivery are stored apart, keyed by delivery id (= job id), and removed when the
//! delivery ends (`deliver.rs`). A job payload can therefore never choose a target or get a
//! body signed; and `hearth.*` jobs cannot be enqueued over the API at all.
//!
//! Ad-hoc targets are caller-chosen URLs: they are sent with the guarded client of
//! [`crate::outbound`] (no internal destinations, no redirects) and their failures are
//! stored as short categories. Subscriptions come from the configuration (an operator's
//! choice) and may point anywhere.
//!
//! Each request is a JSON POST with headers:
//! - `X-Hearth-Event`: the topic;
//! - `X-Hearth-Delivery`: the delivery id (the job id), stable across retries so receivers
//!   can deduplicate;
//! - `X-Hearth-Timestamp`: Unix seconds of this attempt;
//! - `X-Hearth-Signature`: `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
//!
//! A 2xx answer completes the delivery; 408, 429, 5xx and network errors retry; any other
//! status (redirects included) fails it for good (the receiver rejected it). Events of `hearth.*` jobs (deliveries
//! themselves) are never dispatched, so a webhook cannot trigger itself.

mod deliver;
mod sign;

pub use sign::{PostError, post_signed, signature};

use crate::config::error::ConfigError;
use crate::events::{EventBus, RecvError, Subscription, topic_matches};
use crate::jobs::{JobError, JobQueue};
use crate::runtime::Background;
use crate::store::Store;
use deliver::{Clients, Delivery, envelope};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Once};
use std::time::Duration;

/// The job name of a delivery.
pub const JOB_NAME: &str = "hearth.webhook";

/// Attempts before a delivery is dead (exponential backoff between them).
pub const MAX_ATTEMPTS: u32 = 8;

/// How long one delivery request may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// An outgoing webhook subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Target URL.
    pub url: String,
    /// Event topics (`job.completed`, `job.*`, `*`).
    pub events: Vec<String>,
    /// HMAC-SHA256 secret for the `X-Hearth-Signature` header.
    pub secret: String,
}

impl WebhookConfig {
    /// Checks the `i`-th subscription of `webhooks:`.
    pub fn validate(&self, i: usize) -> Result<(), ConfigError> {
        if let Err(why) = crate::outbound::check_url(&self.url, true) {
            return Err(ConfigError::invalid(&format!("webhooks[{i}].url"), why));
        }
        if self.events.is_empty() {
            return Err(ConfigError::invalid(&format!("webhooks[{i}].events"), "must list at least one event"));
        }
        if self.secret.is_empty() {
            return Err(ConfigError::invalid(&format!("webhooks[{i}].secret"), "must not be empty"));
        }
        Ok(())
    }
}

/// Where and how to sign one ad-hoc delivery.
#[derive(Debug, Clone)]
pub struct WebhookTarget {
    /// The receiver's URL (http or https), chosen by a caller: checked by
    /// [`crate::outbound`] when sent.
    pub url: String,
    /// The HMAC secret; the signature header is omitted when empty.
    pub secret: String,
}

/// Enqueues one signed delivery of `data` as event `event` to `target`; returns the
/// delivery id. Durable once this returns.
pub async fn enqueue_delivery(
    jobs: &JobQueue,
    store: &Store,
    target: WebhookTarget,
    event: &str,
    data: serde_json::Value,
) -> Result<String, JobError> {
    let id = uuid::Uuid::now_v7().to_string();
    let delivery = Delivery { url: target.url, event: event.to_string(), subscription: None, body: envelope(&id, event, data) };
    deliver::enqueue(jobs, store, id, delivery, Some(target.secret)).await
}

fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        metrics::describe_counter!("hearth_webhook_deliveries_total", "Webhook delivery attempts, by outcome.");
    });
}

/// What the webhook module needs from the app: the subscriptions from config, the queue
/// that carries deliveries, the store holding deliveries, the bus to dispatch, and the
/// outbound policy for caller-chosen URLs.
pub struct Parts<'a> {
    /// `webhooks:` from the configuration.
    pub subscriptions: Vec<WebhookConfig>,
    /// The job queue deliveries run on.
    pub jobs: &'a JobQueue,
    /// The store of deliveries and ad-hoc secrets.
    pub store: &'a Store,
    /// The event bus the dispatcher reads.
    pub events: &'a EventBus,
    /// Where the dispatcher runs.
    pub background: &'a Background,
    /// `outbound.allow_private`.
    pub allow_private: bool,
}

/// Registers the delivery handler and starts the dispatcher for config subscriptions.
pub fn start(parts: Parts<'_>) {
    describe();
    let clients = Clients {
        configured: reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("hearth/", env!("CARGO_PKG_VERSION")))
            .build()
            .expect("http client"),
        guarded: crate::outbound::client(parts.allow_private, TIMEOUT),
        allow_private: parts.allow_private,
    };
    let subs: Arc<Vec<WebhookConfig>> = Arc::new(parts.subscriptions);
    {
        let (subs, store) = (subs.clone(), parts.store.clone());
        parts.jobs.handler(JOB_NAME, move |ctx, _payload| deliver::run(ctx, clients.clone(), subs.clone(), store.clone()));
    }
    if subs.is_empty() {
        return;
    }
    // The subscription outlives restarts of the supervised dispatcher.
    let rx = Arc::new(tokio::sync::Mutex::new(parts.events.subscribe()));
    let (jobs, store, shutdown) = (parts.jobs.clone(), parts.store.clone(), parts.background.shutdown.clone());
    parts
        .background
        .supervise("webhooks.dispatch", move || dispatch(rx.clone(), subs.clone(), jobs.clone(), store.clone(), shutdown.clone()));
}

/// True for the events of hearth's own jobs (`hearth.*`, e.g. webhook deliveries), which
/// are never delivered. Reads the `Job` the event carries, so no JSON is built for them.
fn is_internal_job(event: &crate::events::Event) -> bool {
    if !event.topic.starts_with("job.") {
        return false;
    }
    let name = match event.data.detail::<crate::jobs::Job>() {
        Some(job) => Some(job.name.as_str()),
        None => event.data["name"].as_str(),
    };
    name.is_some_and(|n| n.starts_with("hearth."))
}

/// Enqueues one delivery per subscription matching each bus event, until shutdown.
async fn dispatch(
    rx: Arc<tokio::sync::Mutex<Subscription>>,
    subs: Arc<Vec<WebhookConfig>>,
    jobs: JobQueue,
    store: Store,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut rx = rx.lock().await;
    loop {
        let event = tokio::select! {
            _ = shutdown.cancelled() => break,
            e = rx.recv() => e,
        };
        let event = match event {
            Ok(e) => e,
            Err(RecvError::Lagged(n)) => {
                tracing::warn!(skipped = n, "webhook dispatcher lagged; {n} events were not delivered");
                continue;
            }
            Err(RecvError::Closed) => break,
        };
        if event.from_peer {
            // Another node published it, and delivers it (once per event cluster-wide).
            continue;
        }
        if is_internal_job(&event) {
            continue;
        }
        for (i, sub) in subs.iter().enumerate() {
            if sub.events.iter().any(|p| topic_matches(p, &event.topic)) {
                let id = uuid::Uuid::now_v7().to_string();
                let body = envelope(&id, &event.topic, event.data.json().clone());
                let delivery = Delivery { url: sub.url.clone(), event: event.topic.clone(), subscription: Some(i), body };
                if let Err(e) = deliver::enqueue(&jobs, &store, id, delivery, None).await {
                    tracing::error!(error = %e, url = %sub.url, "cannot enqueue webhook delivery");
                }
            }
        }
    }
}
