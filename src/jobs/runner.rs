//! In-process worker pools: `count` tasks per pool of `job_queue.workers`, each claiming
//! one job at a time from the pool's queues (only names with a registered handler),
//! sleeping on the pool's `Notify` when nothing is ready.
//!
//! A run is raced against the job's timeout; at the timeout the handler's future is
//! dropped (forced cancellation) and the attempt fails. The durable completion is
//! handed to a tracked task so the worker moves to its next job while the group-commit
//! writer batches completions.

use super::JobQueue;
use super::context::JobContext;
use super::index::{Holder, NameFilter};
use super::model::Job;
use super::ops::Outcome;
use crate::app::Background;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio_util::sync::CancellationToken;

/// Starts every pool's workers.
pub(super) fn start(q: &JobQueue, bg: &Background) {
    for (i, pool) in q.shared.pools.iter().enumerate() {
        for _ in 0..pool.count {
            bg.spawn(worker(q.clone(), i, bg.clone()));
        }
    }
}

async fn worker(q: JobQueue, pool: usize, bg: Background) {
    let shutdown = bg.shutdown.clone();
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let p = &q.shared.pools[pool];
        let notified = p.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let mut jobs = q.claim_with(&p.queues, NameFilter::Handled, Holder::Local, 1);
        match jobs.pop() {
            Some(job) => run(&q, job, &bg).await,
            None => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
}

async fn run(q: &JobQueue, job: Job, bg: &Background) {
    let handler = q.shared.handlers.read().get(&job.name).cloned();
    let cancel = q.shared.index.lock().live.get(&job.id).map(|l| l.cancel.clone()).unwrap_or_else(CancellationToken::new);
    let outcome = match handler {
        None => Outcome::Fail { error: format!("no handler for '{}'", job.name), retry: true },
        Some(h) => {
            let ctx = JobContext { queue: q.clone(), id: job.id.clone(), attempt: job.attempts, cancel };
            let fut = AssertUnwindSafe(h(ctx, job.payload.clone())).catch_unwind();
            match tokio::time::timeout(std::time::Duration::from_secs(job.timeout), fut).await {
                Ok(Ok(Ok(v))) => Outcome::Complete(Some(v)),
                Ok(Ok(Err(f))) => Outcome::Fail { error: f.message, retry: f.retry },
                Ok(Err(_)) => Outcome::Fail { error: "handler panicked".into(), retry: true },
                Err(_) => Outcome::Fail { error: format!("timed out after {} s", job.timeout), retry: true },
            }
        }
    };
    let q = q.clone();
    bg.spawn(async move {
        if let Err(e) = q.finish(&job.id, outcome, Some(None)).await {
            tracing::warn!(job = %job.id, error = %e, "could not record the end of a run; it will run again");
        }
    });
}
