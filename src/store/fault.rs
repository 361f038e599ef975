//! A redb storage backend that fails on demand, for fault-injection tests: the database
//! file, plus a switch that makes writes (and syncs) fail as a full disk or a broken one
//! would. Tests open a store with [`crate::store::Store::open_with_backend`] and flip the
//! switch to drive the store's fault handling deterministically.

use super::StoreError;
use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// What the backend does with writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Fault {
    /// Writes work.
    None = 0,
    /// Writes and syncs fail with ENOSPC.
    DiskFull = 1,
    /// Writes and syncs fail with EIO.
    IoError = 2,
}

/// The switch shared by a test and every backend it opened.
#[derive(Debug, Clone, Default)]
pub struct FaultSwitch(Arc<AtomicU8>);

impl FaultSwitch {
    /// Sets what writes do from now on.
    pub fn set(&self, fault: Fault) {
        self.0.store(fault as u8, Ordering::SeqCst);
    }

    fn error(&self) -> Option<std::io::Error> {
        match self.0.load(Ordering::SeqCst) {
            1 => Some(std::io::Error::from_raw_os_error(28)),
            2 => Some(std::io::Error::from_raw_os_error(5)),
            _ => None,
        }
    }
}

/// A file backend whose writes fail while its [`FaultSwitch`] says so.
#[derive(Debug)]
pub struct FaultyFile {
    inner: FileBackend,
    switch: FaultSwitch,
}

impl FaultyFile {
    /// Opens (or creates) `path`, failing writes while `switch` is set.
    pub fn open(path: &Path, switch: FaultSwitch) -> Result<FaultyFile, StoreError> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| StoreError::Db(format!("cannot open {}: {e}", path.display())))?;
        Ok(FaultyFile { inner: FileBackend::new(file).map_err(StoreError::from)?, switch })
    }

    /// A maker for [`crate::store::Store::open_with_backend`]: the database file in `dir`.
    pub fn maker(dir: &Path, switch: FaultSwitch) -> impl Fn() -> Result<FaultyFile, StoreError> + Send + Sync + 'static {
        let path: PathBuf = dir.join(super::DB_FILE);
        move || FaultyFile::open(&path, switch.clone())
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> Result<u64, std::io::Error> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> Result<(), std::io::Error> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> Result<(), std::io::Error> {
        match self.switch.error() {
            Some(e) => Err(e),
            None => self.inner.set_len(len),
        }
    }

    fn sync_data(&self) -> Result<(), std::io::Error> {
        match self.switch.error() {
            Some(e) => Err(e),
            None => self.inner.sync_data(),
        }
    }

    fn write(&self, offset: u64, data: &[u8]) -> Result<(), std::io::Error> {
        match self.switch.error() {
            Some(e) => Err(e),
            None => self.inner.write(offset, data),
        }
    }

    fn close(&self) -> Result<(), std::io::Error> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
