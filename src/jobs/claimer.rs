//! Claims for the idle workers of an in-process pool, together.
//!
//! Each worker still asks for one job at a time, but through its pool's claimer task: the
//! claimer takes every request waiting (up to [`MAX_CLAIM`]) and claims that many jobs in
//! ONE broker call, then hands one job to each worker, and `None` to the rest (they sleep
//! on the pool's `Notify`, enabled before they asked). When many workers finish at about
//! the same time — a busy queue — a claim then costs one round trip and one script run on
//! Redis for many jobs instead of one each, and one lock and write on the embedded broker.
//! A lone idle worker pays one channel hop. No job is claimed that no worker asked for.

use super::JobQueue;
use super::broker::{Holder, Names};
use super::error::JobError;
use super::model::Job;
use std::sync::Arc;
use tokio::sync::{Mutex, mpsc, oneshot};

/// Most jobs claimed in one broker call.
pub(super) const MAX_CLAIM: usize = 256;

/// One worker's request: where to send its job (or `None`: nothing is ready).
pub(super) type Request = oneshot::Sender<Result<Option<Job>, JobError>>;

/// A pool's channel of requests; the receiver outlives restarts of the claimer task.
pub(super) struct Claims {
    pub tx: mpsc::Sender<Request>,
    pub rx: Arc<Mutex<mpsc::Receiver<Request>>>,
}

impl Claims {
    pub(super) fn new(workers: usize) -> Claims {
        let (tx, rx) = mpsc::channel(workers.max(1));
        Claims { tx, rx: Arc::new(Mutex::new(rx)) }
    }
}

/// Asks the pool's claimer for one job. `Err` when the claim failed or the claimer is gone
/// (at shutdown).
pub(super) async fn claim_one(tx: &mpsc::Sender<Request>) -> Result<Option<Job>, JobError> {
    let stopped = || JobError::Unavailable("the pool's claimer stopped".into());
    let (reply, answer) = oneshot::channel();
    if tx.send(reply).await.is_err() {
        return Err(stopped());
    }
    answer.await.unwrap_or_else(|_| Err(stopped()))
}

/// The claimer of pool `pool`: answers every waiting request with one broker call.
pub(super) async fn run(q: JobQueue, pool: usize, rx: Arc<Mutex<mpsc::Receiver<Request>>>) {
    let mut rx = rx.lock().await;
    let mut waiting: Vec<Request> = Vec::with_capacity(MAX_CLAIM);
    while rx.recv_many(&mut waiting, MAX_CLAIM).await > 0 {
        let p = &q.shared.pools[pool];
        let handled = q.shared.handlers.read().names.clone();
        let claimed = q.claim_with(&p.queues, Names::Only(&handled), Holder::InProcess, waiting.len()).await;
        match claimed {
            Ok(c) => {
                p.activity.lock().claimed(q.now(), !c.jobs.is_empty(), c.more);
                let mut jobs = c.jobs.into_iter();
                for reply in waiting.drain(..) {
                    let job = jobs.next();
                    if let Err(Ok(Some(job))) = reply.send(Ok(job)) {
                        // Its worker is gone (it never leaves a request unanswered, so only
                        // in a runtime shutdown): the job runs again once its lease expires.
                        tracing::warn!(job = %job.id, "a claimed job lost its worker; it runs again after its lease");
                    }
                }
            }
            Err(e) => {
                for reply in waiting.drain(..) {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
