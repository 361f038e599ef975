//! Ready notices between the nodes sharing a Redis broker: a script that made jobs ready
//! is followed by a `PUBLISH` naming their queues and job names, and every node relays the
//! other nodes' notices to its pools and long-polling workers
//! ([`crate::jobs::JobBroker::remote_ready`]). A notice is a wake-up, not state: a lost
//! one costs latency (a lost subscription wakes everyone), never a job.

use super::RedisBroker;
use crate::cluster::Redis;
use crate::jobs::broker::Ready;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

impl RedisBroker {
    /// The `[q1, n1, q2, n2, ...]` a script returned, as pairs, told to the other nodes
    /// (in the background: the notice is a wake-up, not part of the state change).
    pub(super) fn ready(&self, flat: Vec<String>) -> Vec<Ready> {
        let pairs = pairs(flat);
        if !pairs.is_empty() {
            let mut distinct: Vec<&Ready> = pairs.iter().collect();
            distinct.sort();
            distinct.dedup();
            let mut msg = self.redis.node_id().to_string();
            for (q, n) in distinct {
                msg.push('\n');
                msg.push_str(q);
                msg.push('\n');
                msg.push_str(n);
            }
            let (redis, channel) = (self.redis.clone(), self.key("ready"));
            tokio::spawn(async move {
                if let Err(e) = redis.query::<i64>(::redis::cmd("PUBLISH").arg(channel).arg(msg)).await {
                    tracing::debug!(error = %e, "could not tell the other nodes about ready jobs");
                }
            });
        }
        pairs
    }
}

/// Relays the ready notices of the other nodes to `tx` until `shutdown`, resubscribing
/// after a lost connection (and then sending an empty batch: notices may have been missed).
pub(super) async fn relay_ready(redis: Redis, channel: String, tx: mpsc::UnboundedSender<Vec<Ready>>, shutdown: CancellationToken) {
    use futures::StreamExt;
    let me = redis.node_id().to_string();
    let mut first = true;
    while !shutdown.is_cancelled() {
        let mut sub = match redis.pubsub().await {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(error = %e, "ready notices: no subscription; retrying");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => continue,
                    _ = shutdown.cancelled() => return,
                }
            }
        };
        if sub.subscribe(&channel).await.is_err() {
            continue;
        }
        if !first && tx.send(Vec::new()).is_err() {
            return;
        }
        first = false;
        let mut messages = sub.on_message();
        loop {
            let msg = tokio::select! {
                m = messages.next() => m,
                _ = shutdown.cancelled() => return,
            };
            let Some(msg) = msg else { break };
            let Ok(text) = msg.get_payload::<String>() else { continue };
            let mut parts = text.split('\n');
            if parts.next() == Some(me.as_str()) {
                continue;
            }
            let rest: Vec<String> = parts.map(str::to_string).collect();
            if tx.send(pairs(rest)).is_err() {
                return;
            }
        }
    }
}

/// `[q1, n1, q2, n2, ...]` as pairs.
fn pairs(flat: Vec<String>) -> Vec<Ready> {
    let mut it = flat.into_iter();
    let mut out = Vec::new();
    while let (Some(q), Some(n)) = (it.next(), it.next()) {
        out.push((q, n));
    }
    out
}
