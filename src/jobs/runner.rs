//! In-process worker pools: `count` tasks per pool of `job_queue.workers`, each claiming
//! one job at a time from the pool's queues (only names with a registered handler) —
//! through the pool's claimer, which claims for all waiting workers in one broker call
//! (`claimer.rs`) — sleeping on the pool's `Notify` when nothing is ready.
//!
//! A run is raced against the job's timeout; at the timeout the handler's future is
//! dropped (forced cancellation) and the attempt fails. The end of the run is handed to
//! the queue's completer task so the worker moves to its next job at once: the completer
//! takes every end waiting (up to [`MAX_ENDS`]) and records them in one durable write
//! (one [`super::JobBroker::finish`] call). The channel is bounded, so workers that outrun the disk
//! wait for it. At shutdown the workers stop, their senders drop, and the completer
//! records what is left before it ends.
//!
//! **Poison jobs.** Every task here runs under [`Background::supervise`], and a panic
//! while processing one job costs that job only: a handler that panics makes its job
//! dead at once with the panic as the reason (it would panic again); a panic while
//! recording a batch of ends is retried end by end, and an end that panics on its own
//! is recorded as a fatal failure (dead, with the reason). Each is counted in
//! `hearth_jobs_panics_total`.

use super::JobQueue;
use super::broker::{RunEnd, RunOutcome};
use super::claimer;
use super::context::JobContext;
use super::metrics;
use super::model::Job;
use crate::runtime::{Background, panic_message};
use futures::FutureExt;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

/// Most run ends recorded in one write.
const MAX_ENDS: usize = 1024;

/// Starts every pool's workers and the completer that records their runs' ends, each
/// supervised (restarted after a panic).
pub(super) fn start(q: &JobQueue, bg: &Background) {
    let (ends, rx) = mpsc::channel(4 * MAX_ENDS);
    // The receiver outlives restarts of the completer.
    let rx = Arc::new(Mutex::new(rx));
    let completer_q = q.clone();
    bg.supervise("jobs.completer", move || completer(completer_q.clone(), rx.clone()));
    let now = q.now();
    for (i, pool) in q.shared.pools.iter().enumerate() {
        pool.activity.lock().started(now);
        let claims = claimer::Claims::new(pool.count);
        let (claimer_q, claims_rx) = (q.clone(), claims.rx.clone());
        bg.supervise("jobs.claimer", move || claimer::run(claimer_q.clone(), i, claims_rx.clone()));
        for _ in 0..pool.count {
            let (q, shutdown, ends, claims) = (q.clone(), bg.shutdown.clone(), ends.clone(), claims.tx.clone());
            bg.supervise("jobs.worker", move || worker(q.clone(), i, shutdown.clone(), ends.clone(), claims.clone()));
        }
    }
}

/// Records the ends of in-process runs, as many per durable write as are waiting.
async fn completer(q: JobQueue, rx: Arc<Mutex<mpsc::Receiver<RunEnd>>>) {
    let mut rx = rx.lock().await;
    let mut batch = Vec::with_capacity(MAX_ENDS);
    while rx.recv_many(&mut batch, MAX_ENDS).await > 0 {
        let ends = std::mem::replace(&mut batch, Vec::with_capacity(MAX_ENDS));
        record(&q, ends).await;
    }
}

/// Records a batch of ends; when that panics, records them one by one, and an end that
/// panics on its own as a fatal failure (see the module doc).
async fn record(q: &JobQueue, ends: Vec<RunEnd>) {
    let ids: Vec<String> = ends.iter().map(|e| e.id.clone()).collect();
    // Kept for the rare batch that panics (an end is cheap next to its durable write).
    let kept = ends.clone();
    let recorded = AssertUnwindSafe(q.finish_runs(ends)).catch_unwind().await;
    q.forget_runs(ids.iter().map(String::as_str));
    match recorded {
        Ok(results) => warn_unrecorded(results, &ids),
        Err(panic) if kept.len() == 1 => {
            let end = kept.into_iter().next().expect("one end");
            poison(q, end, &panic_message(panic.as_ref())).await;
        }
        Err(panic) => {
            tracing::error!(panic = %panic_message(panic.as_ref()), "recording run ends panicked; recording them one by one");
            for end in kept {
                let id = [end.id.clone()];
                match AssertUnwindSafe(q.finish_runs(vec![end.clone()])).catch_unwind().await {
                    Ok(results) => warn_unrecorded(results, &id),
                    Err(panic) => poison(q, end, &panic_message(panic.as_ref())).await,
                }
            }
        }
    }
}

fn warn_unrecorded(results: Vec<Result<super::broker::Ended, super::JobError>>, ids: &[String]) {
    for (r, id) in results.into_iter().zip(ids) {
        if let Err(e) = r {
            tracing::warn!(job = %id, error = %e, "could not record the end of a run; it will run again");
        }
    }
}

/// Records `end`, whose recording panicked, as a fatal failure naming the panic.
async fn poison(q: &JobQueue, end: RunEnd, panic: &str) {
    let name = match q.get_status(&end.id).await {
        Ok(job) => job.name,
        Err(_) => "unknown".into(),
    };
    metrics::panicked(&name, "recording");
    tracing::error!(job = %end.id, panic, "recording the end of a run panicked; the job is dead (poison)");
    let error = format!("poison job: recording the end of its run panicked: {panic}");
    let fatal = RunEnd { outcome: RunOutcome::Fail { error, retry: false }, ..end };
    let id = fatal.id.clone();
    match AssertUnwindSafe(q.finish_runs(vec![fatal])).catch_unwind().await {
        Ok(mut r) => {
            if let Some(Err(e)) = r.pop() {
                tracing::error!(job = %id, error = %e, "the poison job could not be recorded dead");
            }
        }
        Err(again) => tracing::error!(job = %id, panic = %panic_message(again.as_ref()), "recording the poison job dead panicked too"),
    }
}

async fn worker(q: JobQueue, pool: usize, shutdown: CancellationToken, ends: mpsc::Sender<RunEnd>, claims: mpsc::Sender<claimer::Request>) {
    loop {
        if shutdown.is_cancelled() {
            break;
        }
        let p = &q.shared.pools[pool];
        let notified = p.notify.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Never abandoned once asked: the claimer may already hold a job for this worker.
        let job = match claimer::claim_one(&claims).await {
            Ok(job) => job,
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
                let (id, name) = (job.id.clone(), job.name.clone());
                // A panic here is ours, not the handler's (run catches those): the job
                // still ends, as a poison job, and this worker goes on.
                let end = match AssertUnwindSafe(run(&q, job)).catch_unwind().await {
                    Ok(end) => end,
                    Err(panic) => {
                        metrics::panicked(&name, "handler");
                        let error = format!("poison job: running it panicked: {}", panic_message(panic.as_ref()));
                        RunEnd { id, worker_id: None, outcome: RunOutcome::Fail { error, retry: false } }
                    }
                };
                p.activity.lock().ended(q.now());
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

/// Runs one claimed job to the end of its attempt. A handler that panics makes the job
/// dead (a poison job: it would panic again), with the panic as the reason.
async fn run(q: &JobQueue, mut job: Job) -> RunEnd {
    let handler = q.shared.handlers.read().by_name.get(&job.name).cloned();
    let cancel = q.run_signal(&job);
    let timeout = job.timeout.min(super::limits::MAX_TIMEOUT_SECONDS);
    let outcome = match handler {
        None => RunOutcome::Fail { error: format!("no handler for '{}'", job.name), retry: true },
        Some(h) => {
            let ctx = JobContext { queue: q.clone(), id: job.id.clone(), attempt: job.attempts, cancel };
            let fut = AssertUnwindSafe(h(ctx, std::mem::take(&mut job.payload))).catch_unwind();
            match tokio::time::timeout(std::time::Duration::from_secs(timeout), fut).await {
                Ok(Ok(Ok(v))) => RunOutcome::Complete(Some(v)),
                Ok(Ok(Err(f))) => RunOutcome::Fail { error: f.message, retry: f.retry },
                Ok(Err(panic)) => {
                    let what = panic_message(panic.as_ref());
                    metrics::panicked(&job.name, "handler");
                    tracing::error!(job = %job.id, name = %job.name, panic = %what, "job handler panicked; the job is dead (poison)");
                    RunOutcome::Fail { error: format!("poison job: handler panicked: {what}"), retry: false }
                }
                Err(_) => RunOutcome::Fail { error: format!("timed out after {timeout} s"), retry: true },
            }
        }
    };
    RunEnd { id: job.id, worker_id: None, outcome }
}
