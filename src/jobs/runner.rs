//! In-process worker pools: `count` tasks per pool of `job_queue.workers`, each claiming
//! one job at a time from the pool's queues (only names with a registered handler),
//! sleeping on the pool's `Notify` when nothing is ready.
//!
//! A run is raced against the job's timeout; at the timeout the handler's future is
//! dropped (forced cancellation) and the attempt fails. The end of the run is handed to
//! the queue's completer task so the worker moves to its next job at once: the completer
//! takes every end waiting (up to [`MAX_ENDS`]) and records them in one durable write
//! (one [`super::JobBroker::finish`] call). The channel is bounded, so workers that outrun the disk
//! wait for it. At shutdown the workers stop, their senders drop, and the completer
//! records what is left before it ends.

use super::JobQueue;
use super::broker::{Holder, Names, RunEnd, RunOutcome};
use super::context::JobContext;
use super::model::Job;
use crate::runtime::Background;
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Most run ends recorded in one write.
const MAX_ENDS: usize = 1024;

/// Starts every pool's workers and the completer that records their runs' ends.
pub(super) fn start(q: &JobQueue, bg: &Background) {
    let (ends, rx) = mpsc::channel(4 * MAX_ENDS);
    bg.spawn(completer(q.clone(), rx));
    for (i, pool) in q.shared.pools.iter().enumerate() {
        for _ in 0..pool.count {
            bg.spawn(worker(q.clone(), i, bg.shutdown.clone(), ends.clone()));
        }
    }
}

/// Records the ends of in-process runs, as many per durable write as are waiting.
async fn completer(q: JobQueue, mut rx: mpsc::Receiver<RunEnd>) {
    let mut batch = Vec::with_capacity(MAX_ENDS);
    while rx.recv_many(&mut batch, MAX_ENDS).await > 0 {
        let ends = std::mem::replace(&mut batch, Vec::with_capacity(MAX_ENDS));
        let ids: Vec<String> = ends.iter().map(|e| e.id.clone()).collect();
        let results = q.finish_runs(ends).await;
        q.forget_runs(ids.iter().map(String::as_str));
        for (r, id) in results.into_iter().zip(&ids) {
            if let Err(e) = r {
                tracing::warn!(job = %id, error = %e, "could not record the end of a run; it will run again");
            }
        }
    }
}

async fn worker(q: JobQueue, pool: usize, shutdown: CancellationToken, ends: mpsc::Sender<RunEnd>) {
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let p = &q.shared.pools[pool];
        let notified = p.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        let handled = q.shared.handlers.read().names.clone();
        let claimed = q.claim_with(&p.queues, Names::Only(&handled), Holder::InProcess, 1).await;
        let job = match claimed {
            Ok(mut jobs) => jobs.pop(),
            Err(e) => {
                tracing::warn!(error = %e, "in-process claim failed; retrying in a second");
                tokio::select! {
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                    _ = shutdown.cancelled() => break,
                }
                continue;
            }
        };
        match job {
            Some(job) => {
                let end = run(&q, job).await;
                if ends.send(end).await.is_err() {
                    break;
                }
            }
            None => {
                tokio::select! {
                    _ = &mut notified => {}
                    _ = shutdown.cancelled() => break,
                }
            }
        }
    }
}

/// Runs one claimed job to the end of its attempt.
async fn run(q: &JobQueue, mut job: Job) -> RunEnd {
    let handler = q.shared.handlers.read().by_name.get(&job.name).cloned();
    let cancel = q.run_signal(&job);
    let outcome = match handler {
        None => RunOutcome::Fail { error: format!("no handler for '{}'", job.name), retry: true },
        Some(h) => {
            let ctx = JobContext { queue: q.clone(), id: job.id.clone(), attempt: job.attempts, cancel };
            let fut = AssertUnwindSafe(h(ctx, std::mem::take(&mut job.payload))).catch_unwind();
            match tokio::time::timeout(std::time::Duration::from_secs(job.timeout), fut).await {
                Ok(Ok(Ok(v))) => RunOutcome::Complete(Some(v)),
                Ok(Ok(Err(f))) => RunOutcome::Fail { error: f.message, retry: f.retry },
                Ok(Err(_)) => RunOutcome::Fail { error: "handler panicked".into(), retry: true },
                Err(_) => RunOutcome::Fail { error: format!("timed out after {} s", job.timeout), retry: true },
            }
        }
    };
    RunEnd { id: job.id, worker_id: None, outcome }
}
