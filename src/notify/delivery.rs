//! Queued delivery: the jobs that send email, webhooks and custom channels, and the
//! outbox that makes "stored" imply "will be delivered".
//!
//! A send writes the notification and an outbox entry (its queued channels) in one
//! transaction. It then enqueues one job per channel with the deterministic id
//! `notify-<notification id>-<channel>` and clears the entry. At start, entries left by a
//! crash are enqueued again; the job queue answers an existing id with that job, so a
//! replay never duplicates a delivery job.
//!
//! The job handler records each attempt on the notification: `pending` with the last
//! error while retries remain, then `delivered` or `failed`. A job that dies without
//! reaching the handler's last-attempt path (timeout, lease loss) is recorded as failed by
//! a job hook.

use super::channel::{DeliveryError, DeliveryInput, DeliveryMode};
use super::model::{Delivery, DeliveryState, EMAIL, WEBHOOK};
use super::store::OutboxEntry;
use super::{Inner, Notifications, TOPIC_DELIVERY, metrics};
use crate::jobs::{Backoff, EnqueueRequest, Job, JobContext, JobFailure, JobHooks, JobStatus};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Weak};

/// Job names used for deliveries.
const JOB_EMAIL: &str = "notify.email";
const JOB_WEBHOOK: &str = "notify.webhook";
const JOB_CUSTOM: &str = "notify.deliver";
/// Notifications per enqueue batch (each has at most a few channels).
const ENQUEUE_CHUNK: usize = 1000;

fn job_name(channel: &str) -> &'static str {
    match channel {
        EMAIL => JOB_EMAIL,
        WEBHOOK => JOB_WEBHOOK,
        _ => JOB_CUSTOM,
    }
}

/// The payload of a delivery job.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Payload {
    notification_id: String,
    channel: String,
    max_attempts: u32,
}

/// Registers the delivery handlers and the dead-job hook. They hold the service weakly so
/// that the job queue does not keep it (and the store) alive after the app is dropped.
pub(super) fn register_handlers(svc: &Notifications) {
    for name in [JOB_EMAIL, JOB_WEBHOOK, JOB_CUSTOM] {
        let weak = Arc::downgrade(&svc.inner);
        svc.inner.jobs.handler(name, move |ctx: JobContext, payload: serde_json::Value| {
            let weak = weak.clone();
            async move {
                let inner = weak.upgrade().ok_or_else(|| JobFailure::retry("notification service is shutting down"))?;
                Notifications { inner }.run_delivery(ctx.attempt(), payload).await
            }
        });
    }
    svc.inner.jobs.register_hooks(Arc::new(DeadJobHook(Arc::downgrade(&svc.inner))));
}

/// Replays the outbox once at start.
pub(super) fn start(svc: &Notifications, bg: &crate::runtime::Background) {
    let svc = svc.clone();
    let shutdown = bg.shutdown.clone();
    bg.spawn(async move {
        let pending = match svc.inner.store.outbox().await {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, "notify: cannot read the delivery outbox");
                return;
            }
        };
        if !pending.is_empty() && !shutdown.is_cancelled() {
            tracing::info!(count = pending.len(), "notify: re-enqueueing deliveries left in the outbox");
            svc.enqueue_deliveries(pending).await;
        }
    });
}

struct DeadJobHook(Weak<Inner>);

impl JobHooks for DeadJobHook {
    fn on_fail(&self, job: &Job, error: &str) {
        if job.status != JobStatus::Dead || ![JOB_EMAIL, JOB_WEBHOOK, JOB_CUSTOM].contains(&job.name.as_str()) {
            return;
        }
        let (Some(inner), Ok(p)) = (self.0.upgrade(), serde_json::from_value::<Payload>(job.payload.clone())) else { return };
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        let error = error.to_string();
        let attempts = job.attempts;
        rt.spawn(async move {
            let svc = Notifications { inner };
            svc.finish(&p, DeliveryState::Failed, attempts, Some(error)).await;
        });
    }
}

impl Notifications {
    /// Enqueues the delivery jobs of outbox entries, a chunk per durable write, then
    /// settles the entries. Failures are logged and left in the outbox for the next start.
    pub(super) async fn enqueue_deliveries(&self, items: Vec<OutboxEntry>) {
        for chunk in items.chunks(ENQUEUE_CHUNK) {
            let mut reqs = Vec::new();
            for OutboxEntry { notification_id: id, channels } in chunk {
                for channel in channels {
                    let (max_attempts, retry_base_ms) = match self.inner.channels.get(channel).map(|c| c.mode()) {
                        Some(DeliveryMode::Queued { max_attempts, retry_base_ms }) => (max_attempts.max(1), retry_base_ms),
                        _ => (1, 1000),
                    };
                    let payload = Payload { notification_id: id.clone(), channel: channel.clone(), max_attempts };
                    reqs.push(EnqueueRequest {
                        id: Some(format!("notify-{id}-{channel}")),
                        max_attempts: Some(max_attempts),
                        backoff: Some(Backoff { base_ms: retry_base_ms.max(1), ..Backoff::default() }),
                        ..EnqueueRequest::new(job_name(channel), serde_json::to_value(&payload).unwrap_or_default())
                    });
                }
            }
            if let Err(e) = self.inner.jobs.enqueue_batch(reqs).await {
                tracing::error!(error = %e, count = chunk.len(), "notify: cannot enqueue deliveries; kept in the outbox for the next start");
                continue;
            }
            let done: Vec<String> = chunk.iter().map(|e| e.notification_id.clone()).collect();
            if let Err(e) = self.inner.store.settle_outbox(&done).await {
                tracing::warn!(error = %e, "notify: cannot clear the delivery outbox (deliveries are already enqueued)");
            }
        }
    }

    /// Runs one delivery attempt (the job handler).
    async fn run_delivery(&self, attempt: u32, payload: serde_json::Value) -> Result<serde_json::Value, JobFailure> {
        let p: Payload = serde_json::from_value(payload).map_err(|e| JobFailure::fatal(format!("bad delivery payload: {e}")))?;
        let id = p.notification_id.clone();
        let inner = &self.inner;
        let loaded = if p.channel == EMAIL {
            inner.store.get_with_email(&id).await
        } else {
            inner.store.get(&id).await.map(|n| n.map(|n| (n, None)))
        };
        let loaded = loaded.map_err(|e| JobFailure::retry(e.to_string()))?;
        let Some((n, email)) = loaded else {
            return Ok(serde_json::json!({"skipped": "the notification was deleted"}));
        };
        match n.deliveries.get(&p.channel).map(|d| d.state) {
            Some(DeliveryState::Pending) => {}
            Some(state) => return Ok(serde_json::json!({"skipped": format!("already {state:?}")})),
            None => return Ok(serde_json::json!({"skipped": "channel not routed"})),
        }
        let Some(channel) = inner.channels.get(&p.channel) else {
            let msg = format!("channel '{}' is no longer available", p.channel);
            self.finish(&p, DeliveryState::Failed, attempt, Some(msg.clone())).await;
            return Err(JobFailure::fatal(msg));
        };
        let result = channel.deliver(DeliveryInput { notification: &n, email: email.as_ref(), attempt }).await;
        match result {
            Ok(()) => {
                let latency = (inner.clock.now() - n.created_at).num_milliseconds().max(0) as f64 / 1000.0;
                if self.finish(&p, DeliveryState::Delivered, attempt, None).await {
                    metrics::delivered(&p.channel, latency);
                }
                Ok(serde_json::json!({"delivered": p.channel}))
            }
            Err(DeliveryError::Retry(msg)) if attempt < p.max_attempts => {
                metrics::retried(&p.channel);
                self.finish(&p, DeliveryState::Pending, attempt, Some(msg.clone())).await;
                Err(JobFailure::retry(msg))
            }
            Err(DeliveryError::Retry(msg) | DeliveryError::Fatal(msg)) => {
                self.finish(&p, DeliveryState::Failed, attempt, Some(msg.clone())).await;
                Err(JobFailure::fatal(msg))
            }
        }
    }

    /// Records a delivery state; for final states also publishes, counts and runs hooks.
    /// Returns true when the record changed (a final state is never overwritten).
    async fn finish(&self, p: &Payload, state: DeliveryState, attempts: u32, error: Option<String>) -> bool {
        let inner = &self.inner;
        let now = inner.clock.now();
        let next = Delivery { state, attempts, error: error.clone(), updated_at: now };
        let n = match inner.store.record_delivery(&p.notification_id, &p.channel, next).await {
            Ok(Some(n)) => n,
            Ok(None) => return false,
            Err(e) => {
                tracing::error!(error = %e, notification = %p.notification_id, "notify: cannot record delivery state");
                return false;
            }
        };
        if state != DeliveryState::Pending {
            if state == DeliveryState::Failed {
                metrics::failed(&p.channel);
                tracing::warn!(notification = %n.id, channel = %p.channel, error = ?error, "notify: delivery failed");
            }
            let d = n.deliveries.get(&p.channel).cloned();
            inner.events.emit(
                TOPIC_DELIVERY,
                &n.id,
                Some(&n.user_id),
                serde_json::json!({"id": n.id, "channel": p.channel, "delivery": d}),
            );
            inner.hooks.deliver(&n, &p.channel);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::channel::NotificationChannel;
    use crate::notify::model::IN_APP;
    use crate::notify::store::NewNotification;
    use async_trait::async_trait;
    use std::sync::atomic::{AtomicUsize, Ordering};

    struct Counting(AtomicUsize);

    #[async_trait]
    impl NotificationChannel for Counting {
        fn name(&self) -> &str {
            "push"
        }
        async fn deliver(&self, _input: DeliveryInput<'_>) -> Result<(), DeliveryError> {
            self.0.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    /// A crash after the notification's commit but before its jobs were enqueued leaves an
    /// outbox entry; the replay at start enqueues the delivery exactly once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn outbox_left_by_a_crash_is_replayed_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = crate::Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config.modules.search.enabled = false;
        let app = crate::App::build(config).await.unwrap();
        let svc = app.notify.clone();
        let push = Arc::new(Counting(AtomicUsize::new(0)));
        svc.register_channel(push.clone());
        let n = crate::notify::conformance::note("u", &[IN_APP, "push"], app.clock.now());
        let item = NewNotification { notification: n.clone(), email: None, outbox: vec!["push".to_string()] };
        svc.inner.store.insert(vec![item]).await.unwrap();
        // Two replays (as after two restarts): the deterministic job id keeps it to one job.
        let bg = app.background().clone();
        start(&svc, &bg);
        start(&svc, &bg);
        let mut state = DeliveryState::Pending;
        for _ in 0..1500 {
            state = svc.get(&n.id).await.unwrap().deliveries["push"].state;
            if state == DeliveryState::Delivered {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(state, DeliveryState::Delivered);
        assert!(svc.inner.store.outbox().await.unwrap().is_empty(), "the outbox is cleared");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert_eq!(push.0.load(Ordering::SeqCst), 1);
        app.shutdown().await;
    }
}
