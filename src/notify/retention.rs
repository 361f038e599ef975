//! Retention: read notifications are removed `retention.read` seconds after they were
//! read, unread ones `retention.unread` seconds after they were sent (seed: 30 and 90
//! days). Ages are measured on the service's clock, so tests drive it with a `ManualClock`
//! and call [`Notifications::sweep`].

use super::error::NotifyError;
use super::{Notifications, metrics};
use std::time::Duration;

/// Deletions per transaction.
const BATCH: usize = 1000;

impl Notifications {
    /// Removes every notification past its retention now; returns how many went.
    pub async fn sweep(&self) -> Result<usize, NotifyError> {
        let inner = &self.inner;
        let r = &inner.config.persistence.retention;
        let now = inner.clock.now();
        let secs = |s: u64| chrono::Duration::seconds(s.min(i64::MAX as u64 / 1000) as i64);
        let (unread_before, read_before) = (now - secs(r.unread), now - secs(r.read));
        let mut total = 0;
        loop {
            let n = inner.store.delete_expired(unread_before, read_before, BATCH).await?;
            total += n;
            if n < BATCH {
                break;
            }
        }
        if total > 0 {
            metrics::swept(total);
            tracing::info!(removed = total, "notify: retention sweep");
        }
        Ok(total)
    }
}

/// Sweeps at start and then every `persistence.sweep_interval_seconds` until shutdown.
pub(super) fn start(svc: &Notifications, bg: &crate::runtime::Background) {
    let svc = svc.clone();
    let shutdown = bg.shutdown.clone();
    let every = Duration::from_secs(svc.inner.config.persistence.sweep_interval_seconds.max(1));
    bg.supervise("notify.retention", move || {
        let (svc, shutdown) = (svc.clone(), shutdown.clone());
        async move {
            loop {
                if let Err(e) = svc.sweep().await {
                    tracing::error!(error = %e, "notify: retention sweep failed");
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
            }
        }
    });
}
