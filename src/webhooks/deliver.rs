//! Deliveries: what to send where, stored apart from the job that sends it.
//!
//! A delivery is written (with the secret of an ad-hoc target) to the `webhook_deliveries`
//! table in one durable write, then its `hearth.webhook` job is enqueued with the delivery
//! id as job id and an empty payload. The job's handler reads the delivery by its own id,
//! sends it, and removes it (and its secret) after the last attempt. A job of that name
//! with no stored delivery — there is no way to enqueue one over the API, but a delivery
//! may have been removed — fails for good.

use super::sign::{PostError, post_signed};
use super::{JOB_NAME, MAX_ATTEMPTS, WebhookConfig};
use crate::jobs::{EnqueueRequest, JobContext, JobError, JobFailure, JobQueue};
use crate::store::{Store, StoreError, codec, open_read};
use redb::TableDefinition;
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Deliveries by id (= job id).
const DELIVERIES: TableDefinition<&str, &[u8]> = TableDefinition::new("webhook_deliveries");
/// Secrets of ad-hoc deliveries, by delivery id.
const SECRETS: TableDefinition<&str, &str> = TableDefinition::new("webhook_secrets");

/// What one delivery sends where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Delivery {
    /// The receiver.
    pub url: String,
    /// The event topic (`X-Hearth-Event`).
    pub event: String,
    /// Index into `webhooks:` for subscriptions (its secret signs); None for ad-hoc
    /// targets (their secret is stored beside the delivery).
    pub subscription: Option<usize>,
    /// The JSON body.
    #[serde(with = "crate::store::codec::json")]
    pub body: serde_json::Value,
}

/// The clients deliveries are sent with.
#[derive(Clone)]
pub(super) struct Clients {
    /// For subscriptions from the configuration (an operator's choice of URL).
    pub configured: reqwest::Client,
    /// For caller-chosen URLs: internal destinations refused, no redirects.
    pub guarded: reqwest::Client,
    /// Whether caller-chosen URLs may reach internal addresses (`outbound.allow_private`).
    pub allow_private: bool,
}

/// The body every delivery sends: `{id, event, created_at, data}`.
pub(super) fn envelope(delivery_id: &str, event: &str, data: serde_json::Value) -> serde_json::Value {
    serde_json::json!({ "id": delivery_id, "event": event, "created_at": chrono::Utc::now(), "data": data })
}

/// Stores `delivery` (and `secret`) under `id`, then enqueues its job. Durable once this
/// returns; returns the delivery id.
pub(super) async fn enqueue(
    jobs: &JobQueue,
    store: &Store,
    id: String,
    delivery: Delivery,
    secret: Option<String>,
) -> Result<String, JobError> {
    let bytes = codec::encode(&delivery)?;
    let key = id.clone();
    store
        .write(move |txn| -> Result<(), StoreError> {
            txn.open_table(DELIVERIES)?.insert(key.as_str(), bytes.as_slice())?;
            if let Some(s) = secret.filter(|s| !s.is_empty()) {
                txn.open_table(SECRETS)?.insert(key.as_str(), s.as_str())?;
            }
            Ok(())
        })
        .await?;
    let req = EnqueueRequest {
        id: Some(id),
        max_attempts: Some(MAX_ATTEMPTS),
        timeout: Some(30),
        ..EnqueueRequest::new(JOB_NAME, serde_json::json!({}))
    };
    Ok(jobs.enqueue(req).await?.job_id)
}

/// The `hearth.webhook` handler: sends the delivery stored under the job's id.
pub(super) async fn run(
    ctx: JobContext,
    clients: Clients,
    subs: Arc<Vec<WebhookConfig>>,
    store: Store,
) -> Result<serde_json::Value, JobFailure> {
    let id = ctx.job_id().to_string();
    let key = id.clone();
    let (delivery, stored_secret) = store
        .read(move |txn| -> Result<(Option<Delivery>, Option<String>), StoreError> {
            let d = match open_read(txn, DELIVERIES)? {
                Some(t) => t.get(key.as_str())?.map(|v| codec::decode::<Delivery>(v.value())).transpose()?,
                None => None,
            };
            let s = match open_read(txn, SECRETS)? {
                Some(t) => t.get(key.as_str())?.map(|v| v.value().to_string()),
                None => None,
            };
            Ok((d, s))
        })
        .await
        .map_err(|e| JobFailure::retry(e.to_string()))?;
    let Some(d) = delivery else { return Err(JobFailure::fatal("no stored delivery for this job")) };
    let (client, secret) = match d.subscription {
        Some(i) => (&clients.configured, subs.get(i).map(|s| s.secret.clone())),
        None => {
            if let Err(why) = crate::outbound::check_url(&d.url, clients.allow_private) {
                forget(&store, &id).await;
                return Err(JobFailure::fatal(format!("webhook_url: {why}")));
            }
            (&clients.guarded, stored_secret)
        }
    };
    let body = serde_json::to_vec(&d.body).map_err(|e| JobFailure::fatal(e.to_string()))?;
    let outcome = match post_signed(client, &d.url, &d.event, &id, secret.as_deref(), body).await {
        Ok(status) => Ok(serde_json::json!({ "status": status })),
        Err(PostError::Retry(m)) => Err(JobFailure::retry(m)),
        Err(PostError::Rejected(m)) => Err(JobFailure::fatal(m)),
    };
    let label = if outcome.is_ok() { "delivered" } else { "failed" };
    metrics::counter!("hearth_webhook_deliveries_total", "outcome" => label).increment(1);
    let last_attempt = match &outcome {
        Ok(_) => true,
        Err(f) => !f.retry || ctx.attempt() >= MAX_ATTEMPTS,
    };
    if last_attempt {
        forget(&store, &id).await;
    }
    outcome
}

/// Removes a delivery and its secret once nothing will send it again.
async fn forget(store: &Store, id: &str) {
    let key = id.to_string();
    let removed = store
        .write(move |txn| -> Result<(), StoreError> {
            txn.open_table(DELIVERIES)?.remove(key.as_str())?;
            txn.open_table(SECRETS)?.remove(key.as_str())?;
            Ok(())
        })
        .await;
    if let Err(e) = removed {
        tracing::warn!(delivery = %id, error = %e, "could not remove a finished webhook delivery");
    }
}
