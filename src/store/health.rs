//! Storage faults: what the store can do right now ([`Health`]), how redb's errors are
//! classified ([`classify`]), and the database slot that can be re-opened after one.
//!
//! redb refuses every operation after an I/O error ("previous I/O error: close and
//! re-open the database"), and a disk that filled up is one. So after a failed commit the
//! writer drops the database and opens it again from the last durable commit (nothing
//! acknowledged is lost: an acknowledged write is in a committed transaction). Reads then
//! work again while the disk is still full; writes are refused with
//! [`StoreError::Full`] without touching redb until free space is back above
//! `min_free_bytes` — checked before each commit, so a full disk rarely reaches redb at
//! all — and everything resumes without a restart once the fault clears.

use super::StoreError;
use parking_lot::{Mutex, RwLock};
use redb::Database;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the store can do right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Reads and writes work.
    Ok,
    /// The disk is full: writes are refused until space is freed; reads work.
    Full(String),
    /// The last commit failed with an I/O error; the database was re-opened and reads
    /// work; the next successful commit clears this.
    Failing(String),
    /// No database is open: it is being re-opened after an I/O error, or cannot be.
    Unavailable(String),
}

/// The classified form of any redb error.
pub(crate) fn classify(e: redb::Error) -> StoreError {
    match e {
        redb::Error::Io(io) if is_full(&io) => StoreError::Full(format!("the disk is full ({io})")),
        redb::Error::Io(io) => StoreError::Unavailable(format!("I/O error: {io}")),
        redb::Error::PreviousIo => StoreError::Unavailable("the database is recovering from an I/O error".into()),
        redb::Error::DatabaseClosed => StoreError::Closed,
        redb::Error::Corrupted(m) => StoreError::Corrupt(m),
        other => StoreError::Db(other.to_string()),
    }
}

/// ENOSPC, EDQUOT and EFBIG: nothing more fits.
fn is_full(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull
        || e.kind() == std::io::ErrorKind::QuotaExceeded
        || matches!(e.raw_os_error(), Some(27 | 28 | 122))
}

/// Opens the database (again): the file, or a custom redb storage backend.
pub(crate) type Opener = Box<dyn Fn() -> Result<Database, StoreError> + Send + Sync>;

/// The database behind the store, which the writer may swap for a re-opened one.
pub(crate) struct Slot {
    db: RwLock<Option<Arc<Database>>>,
    health: Mutex<Health>,
    opener: Opener,
    /// Serialises re-opens and rate-limits them.
    reopen: Mutex<Option<Instant>>,
    /// Where free space is measured.
    dir: PathBuf,
    /// Writes are refused below this much free space (0: no check).
    min_free_bytes: u64,
    /// While full, the last time a write was tried anyway.
    last_try: Mutex<Option<Instant>>,
}

/// How often a full store tries a commit anyway, and how often a re-open is retried.
const RETRY_EVERY: Duration = Duration::from_millis(500);
/// How long a re-open waits for in-flight reads of the old database to finish.
const DRAIN_READS: Duration = Duration::from_secs(5);

impl Slot {
    /// Opens the database with `opener`.
    pub(crate) fn open(opener: Opener, dir: PathBuf, min_free_bytes: u64) -> Result<Slot, StoreError> {
        let db = opener()?;
        Ok(Slot {
            db: RwLock::new(Some(Arc::new(db))),
            health: Mutex::new(Health::Ok),
            opener,
            reopen: Mutex::new(None),
            dir,
            min_free_bytes,
            last_try: Mutex::new(None),
        })
    }

    /// The current health.
    pub(crate) fn health(&self) -> Health {
        self.health.lock().clone()
    }

    /// The open database, re-opening it first if a previous re-open failed.
    pub(crate) fn database(&self) -> Result<Arc<Database>, StoreError> {
        if let Some(db) = self.db.read().as_ref() {
            return Ok(db.clone());
        }
        self.reopen_if_due();
        self.db.read().clone().ok_or_else(|| StoreError::Unavailable(self.unavailable_reason()))
    }

    fn unavailable_reason(&self) -> String {
        match self.health() {
            Health::Unavailable(r) | Health::Full(r) | Health::Failing(r) => r,
            Health::Ok => "the database is being re-opened".into(),
        }
    }

    /// Called by the writer before a batch: the database to commit to, or why not now.
    pub(crate) fn before_commit(&self) -> Result<Arc<Database>, StoreError> {
        if self.min_free_bytes > 0
            && let Ok(free) = fs4::available_space(&self.dir)
            && free < self.min_free_bytes
        {
            let reason =
                format!("the disk is full: {free} bytes free in {}, below the {} bytes kept free", self.dir.display(), self.min_free_bytes);
            *self.health.lock() = Health::Full(reason.clone());
            return Err(StoreError::Full(reason));
        }
        if let Health::Full(reason) = self.health() {
            // Space may be back (or the fault gone): try a commit now and then.
            let mut last = self.last_try.lock();
            if last.is_some_and(|t| t.elapsed() < RETRY_EVERY) {
                return Err(StoreError::Full(reason));
            }
            *last = Some(Instant::now());
        }
        self.database()
    }

    /// Called by the writer after a batch: a success clears a fault; a storage failure
    /// records it and re-opens the database so that reads work again.
    pub(crate) fn after_commit(&self, outcome: &Result<(), StoreError>) {
        match outcome {
            Ok(()) => {
                let mut h = self.health.lock();
                if *h != Health::Ok {
                    tracing::info!("storage recovered: writes are accepted again");
                    *h = Health::Ok;
                }
            }
            Err(StoreError::Full(reason)) => {
                tracing::error!(%reason, "storage full: writes are refused until space is freed");
                *self.health.lock() = Health::Full(reason.clone());
                self.reopen_now();
            }
            Err(StoreError::Unavailable(reason)) => {
                tracing::error!(%reason, "storage I/O error: re-opening the database");
                *self.health.lock() = Health::Failing(reason.clone());
                self.reopen_now();
            }
            Err(_) => {}
        }
    }

    fn reopen_if_due(&self) {
        let last = *self.reopen.lock();
        if last.is_none_or(|t| t.elapsed() >= RETRY_EVERY) {
            self.reopen_now();
        }
    }

    /// Drops the database (waiting briefly for in-flight reads) and opens it again.
    fn reopen_now(&self) {
        let mut guard = self.reopen.lock();
        *guard = Some(Instant::now());
        let old = self.db.write().take();
        if let Some(old) = old {
            let deadline = Instant::now() + DRAIN_READS;
            while Arc::strong_count(&old) > 1 && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
            drop(old);
        }
        match (self.opener)() {
            Ok(db) => {
                *self.db.write() = Some(Arc::new(db));
                let mut h = self.health.lock();
                if let Health::Unavailable(r) = &*h {
                    *h = Health::Failing(r.clone());
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot re-open the database; retrying");
                *self.health.lock() = Health::Unavailable(format!("cannot re-open the database: {e}"));
            }
        }
    }
}
