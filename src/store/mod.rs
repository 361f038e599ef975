//! The storage core: one redb database in the data directory, the versioned codec, and
//! the group-commit writer every durable write goes through.
//!
//! - Reads go straight to redb read transactions ([`Store::read`] on the blocking pool,
//!   or [`Store::read_now`] from code already off the async executor).
//! - Writes are closures queued to the writer ([`Store::write`]); the returned future
//!   resolves only after the transaction holding the write is durable on disk.
//! - Tables are declared by each module next to its domain (`jobs/store.rs`, ...) as
//!   `redb::TableDefinition`s; values are encoded with [`codec`].

pub mod codec;
pub mod fault;
mod health;
pub mod probe;
mod writer;

pub use health::Health;
pub use writer::{MAX_BATCH, WriterStats};

use health::Slot;
use redb::{Database, ReadTransaction, ReadableDatabase, WriteTransaction};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Storage failures. Callers usually map these to `ApiError::internal`.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The database could not be opened, read or committed.
    #[error("database error: {0}")]
    Db(String),
    /// A stored value could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// A value could not be encoded.
    #[error("encoding error: {0}")]
    Codec(String),
    /// The batch holding this write was rolled back because another operation panicked.
    #[error("write batch aborted")]
    Aborted,
    /// The store is shutting down and takes no more writes.
    #[error("store is closed")]
    Closed,
    /// The disk is full; writes are refused until space is freed (HTTP 507).
    #[error("storage full: {0}")]
    Full(String),
    /// An I/O error; the database is being re-opened (HTTP 503).
    #[error("storage unavailable: {0}")]
    Unavailable(String),
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { health::classify(redb::Error::from(e)) }
        }
    )*};
}
from_redb!(redb::Error, redb::DatabaseError, redb::TransactionError, redb::TableError, redb::StorageError, redb::CommitError);

/// The file name of the database inside the data directory.
pub const DB_FILE: &str = "hearth.redb";

/// Handle on the database and its writer; cheap to clone. When the last clone is dropped
/// the writer commits what is queued, stops, and the database file is closed before the
/// drop returns, so the same directory can be opened again at once (an in-process restart).
#[derive(Clone)]
pub struct Store {
    slot: Arc<Slot>,
    writer: Arc<WriterOwner>,
    path: PathBuf,
}

/// How a store is opened.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Writes are refused (HTTP 507) while the data directory's filesystem has less free
    /// space than this, so a full disk is met before redb fails a commit (0: no check).
    pub min_free_bytes: u64,
    /// redb's page cache, in bytes.
    pub cache_bytes: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { min_free_bytes: 32 * 1024 * 1024, cache_bytes: 64 * 1024 * 1024 }
    }
}

/// Owns the writer's channel and thread; dropping it drains and joins the writer.
struct WriterOwner {
    handle: Option<writer::WriterHandle>,
    join: Option<std::thread::JoinHandle<()>>,
}

impl WriterOwner {
    fn handle(&self) -> &writer::WriterHandle {
        self.handle.as_ref().expect("the writer handle lives until drop")
    }
}

impl Drop for WriterOwner {
    fn drop(&mut self) {
        // Closing the channel lets the writer finish its queue and exit; joining means its
        // reference to the database is gone when this returns.
        self.handle.take();
        if let Some(join) = self.join.take()
            && join.thread().id() != std::thread::current().id()
        {
            let _ = join.join();
        }
    }
}

impl Store {
    /// Opens (or creates) `<dir>/hearth.redb` and starts the writer thread.
    ///
    /// Fails with a clear message, leaving files untouched, when the directory cannot be
    /// created or the file is not a readable redb database.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        Store::open_with(dir, StoreOptions::default())
    }

    /// As [`Store::open`] with explicit options.
    pub fn open_with(dir: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(format!("cannot create data dir {}: {e}", dir.display())))?;
        let path = dir.join(DB_FILE);
        let (file, cache) = (path.clone(), options.cache_bytes);
        let opener = move || {
            Database::builder()
                .set_cache_size(cache)
                .create(&file)
                .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", file.display())))
        };
        Store::start(dir, path, Box::new(opener), options.min_free_bytes)
    }

    /// Opens a store on a custom redb storage backend that `make` builds; `make` runs again
    /// whenever the database is re-opened after an I/O error. Fault-injection tests use it
    /// with [`fault::FaultyFile`].
    pub fn open_with_backend<B, F>(dir: &Path, options: StoreOptions, make: F) -> Result<Store, StoreError>
    where
        B: redb::StorageBackend,
        F: Fn() -> Result<B, StoreError> + Send + Sync + 'static,
    {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Db(format!("cannot create data dir {}: {e}", dir.display())))?;
        let cache = options.cache_bytes;
        let opener = move || Database::builder().set_cache_size(cache).create_with_backend(make()?).map_err(StoreError::from);
        Store::start(dir, dir.join(DB_FILE), Box::new(opener), options.min_free_bytes)
    }

    fn start(dir: &Path, path: PathBuf, opener: health::Opener, min_free_bytes: u64) -> Result<Store, StoreError> {
        let slot = Arc::new(Slot::open(opener, dir.to_path_buf(), min_free_bytes)?);
        let (writer, join) = writer::start(slot.clone(), 64 * 1024);
        Ok(Store { slot, writer: Arc::new(WriterOwner { handle: Some(writer), join: Some(join) }), path })
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the store can do right now (disk full, I/O errors).
    pub fn health(&self) -> Health {
        self.slot.health()
    }

    /// The underlying database, for code that needs redb directly (benchmarks, migrations).
    /// It may be replaced after an I/O error: take it per use, do not keep it.
    pub fn database(&self) -> Result<Arc<Database>, StoreError> {
        self.slot.database()
    }

    /// Counters of the group-commit writer.
    pub fn writer_stats(&self) -> &WriterStats {
        &self.writer.handle().stats
    }

    /// Queues `op` to the group-commit writer and waits until the transaction holding it
    /// is durable. `op` runs on the writer thread: keep it short, and make it either
    /// apply fully or return `Err` having written nothing.
    pub async fn write<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (boxed, rx) = writer::Op::boxed(op);
        if self.writer.handle().tx.send(boxed).await.is_err() {
            return Err(E::from(StoreError::Closed));
        }
        rx.await.unwrap_or_else(|_| Err(E::from(StoreError::Aborted)))
    }

    /// As [`Store::write`], for callers on a blocking thread (never call it on the async
    /// executor: it blocks until the commit).
    pub fn write_blocking<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&WriteTransaction) -> Result<T, E> + Send + 'static,
    {
        let (boxed, rx) = writer::Op::boxed(op);
        if self.writer.handle().tx.blocking_send(boxed).is_err() {
            return Err(E::from(StoreError::Closed));
        }
        rx.blocking_recv().unwrap_or_else(|_| Err(E::from(StoreError::Aborted)))
    }

    /// Runs `op` in a read transaction on the blocking pool.
    pub async fn read<T, E, F>(&self, op: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnOnce(&ReadTransaction) -> Result<T, E> + Send + 'static,
    {
        let slot = self.slot.clone();
        tokio::task::spawn_blocking(move || {
            let txn = slot.database()?.begin_read().map_err(StoreError::from)?;
            op(&txn)
        })
        .await
        .unwrap_or_else(|e| Err(E::from(StoreError::Db(format!("read task failed: {e}")))))
    }

    /// Runs `op` in a read transaction on the current thread. For code already on a
    /// blocking thread, or for tiny point reads where a thread hop costs more than the read.
    pub fn read_now<T, E, F>(&self, op: F) -> Result<T, E>
    where
        E: From<StoreError>,
        F: FnOnce(&ReadTransaction) -> Result<T, E>,
    {
        let txn = self.slot.database()?.begin_read().map_err(StoreError::from)?;
        op(&txn)
    }

    /// Drops this handle. Once every clone is gone, queued writes are committed and the
    /// database is closed (see the type's doc).
    pub fn close(self) {
        drop(self);
    }
}

/// Opens an existing table in a read transaction, treating a table that was never
/// written as empty (`Ok(None)`) rather than as an error.
pub fn open_read<K: redb::Key + 'static, V: redb::Value + 'static>(
    txn: &ReadTransaction,
    def: redb::TableDefinition<K, V>,
) -> Result<Option<redb::ReadOnlyTable<K, V>>, StoreError> {
    match txn.open_table(def) {
        Ok(t) => Ok(Some(t)),
        Err(redb::TableError::TableDoesNotExist(_)) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableDatabase, ReadableTableMetadata, TableDefinition};

    const T: TableDefinition<u64, u64> = TableDefinition::new("test");

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_are_all_committed_and_batched() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut tasks = Vec::new();
        for i in 0..500u64 {
            let s = store.clone();
            tasks.push(tokio::spawn(async move {
                s.write(move |txn| -> Result<(), StoreError> {
                    txn.open_table(T)?.insert(i, i * 2)?;
                    Ok(())
                })
                .await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let n = store.read(|txn| -> Result<u64, StoreError> { Ok(txn.open_table(T)?.len()?) }).await.unwrap();
        assert_eq!(n, 500);
        let commits = store.writer_stats().commits.load(std::sync::atomic::Ordering::Relaxed);
        assert!(commits < 500, "expected batching, got {commits} commits for 500 writes");
        let _ = ReadableDatabase::begin_read(&*store.database().unwrap());
    }

    #[tokio::test]
    async fn an_erroring_op_does_not_affect_its_batch() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let bad = store.write(|_txn| -> Result<(), StoreError> { Err(StoreError::Codec("nope".into())) });
        let good = store.write(|txn| -> Result<(), StoreError> {
            txn.open_table(T)?.insert(1, 1)?;
            Ok(())
        });
        let (b, g) = tokio::join!(bad, good);
        assert!(b.is_err());
        g.unwrap();
        let v = store.read_now(|txn| -> Result<Option<u64>, StoreError> { Ok(txn.open_table(T)?.get(1)?.map(|v| v.value())) }).unwrap();
        assert_eq!(v, Some(1));
    }

    #[tokio::test]
    async fn reopening_keeps_acknowledged_writes() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            store
                .write(|txn| -> Result<(), StoreError> {
                    txn.open_table(T)?.insert(7, 49)?;
                    Ok(())
                })
                .await
                .unwrap();
            store.close();
        }
        let store = Store::open(dir.path()).unwrap();
        let v = store.read_now(|txn| -> Result<Option<u64>, StoreError> { Ok(txn.open_table(T)?.get(7)?.map(|v| v.value())) }).unwrap();
        assert_eq!(v, Some(49));
    }

    async fn put(store: &Store, k: u64) -> Result<(), StoreError> {
        store
            .write(move |txn| -> Result<(), StoreError> {
                txn.open_table(T)?.insert(k, k)?;
                Ok(())
            })
            .await
    }

    fn get(store: &Store, k: u64) -> Result<Option<u64>, StoreError> {
        store.read_now(|txn| -> Result<Option<u64>, StoreError> { Ok(txn.open_table(T)?.get(k)?.map(|v| v.value())) })
    }

    #[tokio::test]
    async fn storage_faults_are_classified_and_heal_without_a_restart() {
        use fault::{Fault, FaultSwitch, FaultyFile};
        let dir = tempfile::tempdir().unwrap();
        let switch = FaultSwitch::default();
        let opts = StoreOptions { min_free_bytes: 0, ..StoreOptions::default() };
        let store = Store::open_with_backend(dir.path(), opts, FaultyFile::maker(dir.path(), switch.clone())).unwrap();
        put(&store, 1).await.unwrap();

        for (fault, status, what) in [(Fault::DiskFull, 507, "disk full"), (Fault::IoError, 503, "I/O error")] {
            switch.set(fault);
            let err = put(&store, 2).await.unwrap_err();
            assert_eq!(crate::error::ApiError::from(err.clone()).status(), status, "a {what} is answered {status}: {err:?}");
            assert_ne!(store.health(), Health::Ok, "health names the {what}");
            // redb must write to re-open a database after an I/O error, so while the fault
            // lasts reads may be unavailable too (503, never a wrong answer).
            match get(&store, 1) {
                Ok(v) => assert_eq!(v, Some(1)),
                Err(e) => assert_eq!(crate::error::ApiError::from(e).status(), 503),
            }
            // The fault clears: writes work again without a restart.
            switch.set(Fault::None);
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            while put(&store, 2).await.is_err() {
                assert!(std::time::Instant::now() < deadline, "writes must resume once the {what} clears");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            assert_eq!(store.health(), Health::Ok);
            assert_eq!(get(&store, 1).unwrap(), Some(1));
            assert_eq!(get(&store, 2).unwrap(), Some(2));
        }
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!((get(&store, 1).unwrap(), get(&store, 2).unwrap()), (Some(1), Some(2)), "every acknowledged write survived");
    }

    #[tokio::test]
    async fn too_little_free_space_refuses_writes_and_keeps_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        put(&store, 1).await.unwrap();
        drop(store);
        // The same data on a disk with less free space than the store keeps.
        let store = Store::open_with(dir.path(), StoreOptions { min_free_bytes: u64::MAX, ..StoreOptions::default() }).unwrap();
        let err = put(&store, 2).await.unwrap_err();
        assert!(matches!(err, StoreError::Full(_)), "{err:?}");
        assert_eq!(crate::error::ApiError::from(err).code, crate::error::ErrorCode::StorageFull);
        assert!(matches!(store.health(), Health::Full(_)));
        assert_eq!(get(&store, 1).unwrap(), Some(1), "reads work while writes are refused");
        assert_eq!(get(&store, 2).unwrap(), None);
    }

    #[test]
    fn a_corrupt_file_is_a_clear_error_and_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(DB_FILE);
        std::fs::write(&path, b"this is not a redb file at all, just some bytes").unwrap();
        let before = std::fs::read(&path).unwrap();
        let err = Store::open(dir.path()).err().expect("must fail");
        assert!(err.to_string().contains("cannot open"), "{err}");
        assert_eq!(std::fs::read(&path).unwrap(), before);
    }
}
