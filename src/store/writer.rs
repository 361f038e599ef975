//! The group-commit writer.
//!
//! redb fsyncs every durable commit (about 2 ms on the reference machine, so ~470
//! commits/s), while one transaction of 1,000 rows commits at ~195k rows/s. All writes
//! therefore go through one dedicated writer thread: it blocks for the first operation,
//! drains every other queued operation (up to a batch limit), applies them all in one
//! write transaction, commits it with `Durability::Immediate`, and only then answers each
//! caller. While one batch is being fsynced the next one accumulates in the channel, so
//! under concurrency the commit rate approaches the batched rate on its own, and a lone
//! writer still pays just one commit.
//!
//! Invariant: an operation either applies fully or returns `Err` having written nothing;
//! an `Err` from one operation never affects the others in its batch. A panic inside an
//! operation aborts its whole batch (nothing of it is committed) and every caller of that
//! batch receives [`StoreError::Aborted`].

use super::StoreError;
use super::health::Slot;
use redb::{Database, Durability, WriteTransaction};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::sync::{mpsc, oneshot};

/// The most operations applied in one transaction.
pub const MAX_BATCH: usize = 4096;

/// One queued write: applied inside the batch transaction, then told the commit outcome.
pub(crate) trait WriteOp: Send {
    /// Applies the operation. Its own result is kept until `finish`.
    fn apply(&mut self, txn: &WriteTransaction);
    /// Tells the caller the outcome once the batch commit succeeded or failed.
    fn finish(self: Box<Self>, commit: Result<(), StoreError>);
}

/// A typed operation and the channel its caller waits on.
pub(crate) struct Op<T, E, F> {
    f: Option<F>,
    out: Option<Result<T, E>>,
    reply: Option<oneshot::Sender<Result<T, E>>>,
}

impl<T, E, F> Op<T, E, F>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
{
    /// Wraps `f` as a queueable operation and returns the channel its outcome arrives on.
    pub(crate) fn boxed(f: F) -> (Box<dyn WriteOp>, oneshot::Receiver<Result<T, E>>) {
        let (reply, rx) = oneshot::channel();
        (Box::new(Op { f: Some(f), out: None, reply: Some(reply) }), rx)
    }
}

impl<T, E, F> WriteOp for Op<T, E, F>
where
    T: Send,
    E: From<StoreError> + Send,
    F: FnOnce(&WriteTransaction) -> Result<T, E> + Send,
{
    fn apply(&mut self, txn: &WriteTransaction) {
        if let Some(f) = self.f.take() {
            self.out = Some(f(txn));
        }
    }

    fn finish(mut self: Box<Self>, commit: Result<(), StoreError>) {
        let result = match (commit, self.out.take()) {
            (Ok(()), Some(out)) => out,
            (Err(e), Some(Err(own))) => {
                // The op failed by itself; its own error is the more useful one.
                let _ = e;
                Err(own)
            }
            (Err(e), _) => Err(E::from(e)),
            (Ok(()), None) => Err(E::from(StoreError::Aborted)),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

/// Counters the writer keeps, read by metrics and benchmarks.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Operations applied.
    pub ops: AtomicU64,
}

/// Sending side of the writer; cheap to clone.
#[derive(Clone)]
pub(crate) struct WriterHandle {
    pub(crate) tx: mpsc::Sender<Box<dyn WriteOp>>,
    pub(crate) stats: Arc<WriterStats>,
}

/// Starts the writer thread. It exits once every handle is dropped and the queue is drained.
pub(crate) fn start(db: Arc<Slot>, queue: usize) -> (WriterHandle, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel::<Box<dyn WriteOp>>(queue.max(1));
    let stats = Arc::new(WriterStats::default());
    let thread_stats = stats.clone();
    let join =
        std::thread::Builder::new().name("hearth-writer".into()).spawn(move || run(db, rx, thread_stats)).expect("spawn writer thread");
    (WriterHandle { tx, stats }, join)
}

fn run(slot: Arc<Slot>, mut rx: mpsc::Receiver<Box<dyn WriteOp>>, stats: Arc<WriterStats>) {
    let mut batch: Vec<Box<dyn WriteOp>> = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        let n = batch.len() as u64;
        // A full disk or a database being re-opened fails the batch without touching
        // redb; a storage failure during the commit re-opens it (see `health.rs`).
        let outcome = slot.before_commit().and_then(|db| commit_batch(&db, &mut batch));
        slot.after_commit(&outcome);
        stats.commits.fetch_add(1, Ordering::Relaxed);
        stats.ops.fetch_add(n, Ordering::Relaxed);
        for op in batch.drain(..) {
            op.finish(outcome.clone());
        }
    }
}

fn commit_batch(db: &Database, batch: &mut [Box<dyn WriteOp>]) -> Result<(), StoreError> {
    let mut txn = db.begin_write().map_err(StoreError::from)?;
    txn.set_durability(Durability::Immediate).map_err(|e| StoreError::Db(e.to_string()))?;
    let applied = catch_unwind(AssertUnwindSafe(|| {
        for op in batch.iter_mut() {
            op.apply(&txn);
        }
    }));
    if applied.is_err() {
        tracing::error!("a write operation panicked; its batch of {} was rolled back", batch.len());
        let _ = txn.abort();
        return Err(StoreError::Aborted);
    }
    txn.commit().map_err(StoreError::from)
}
