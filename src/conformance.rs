//! What every seam's conformance suite shares (compiled for tests and with the
//! `conformance` feature): the [`Harness`] through which a suite opens the backend under
//! test, and — for hearth's own tests — [`TempDb`], a harness over temporary directories.
//!
//! A backend author implements `Harness` for their backend (a fresh Redis database, a new
//! PostgreSQL schema, ...) and calls the seam's `conformance::run`. Every suite uses only
//! the seam's trait, and panics with a message naming the rule that broke.
//!
//! The job broker's suite has a harness of its own (`jobs::conformance::Harness`): a
//! broker is opened *as of* a time, because what is ready depends on it.

use async_trait::async_trait;

/// Opens the backend under test.
#[async_trait]
pub trait Harness<S>: Send {
    /// A backend over fresh, empty storage (no data of earlier calls visible).
    async fn fresh(&mut self) -> S;
    /// The storage `backend` used, opened again as after a restart: `backend` is dropped
    /// (its connections closed, its files released) before the new one opens.
    async fn reopen(&mut self, backend: S) -> S;
}

/// A [`Harness`] over temporary directories: each fresh backend gets a directory of its
/// own; a re-open drops the backend and opens the directory of the most recent fresh one
/// again (the suites re-open the backend they made last).
#[cfg(test)]
pub(crate) struct TempDb<S> {
    root: tempfile::TempDir,
    made: usize,
    open: Box<dyn Fn(std::path::PathBuf) -> futures::future::BoxFuture<'static, S> + Send>,
}

#[cfg(test)]
impl<S> TempDb<S> {
    /// Backends that `open` opens on a directory.
    pub(crate) fn new<F, Fut>(open: F) -> Self
    where
        F: Fn(std::path::PathBuf) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = S> + Send + 'static,
    {
        TempDb { root: tempfile::tempdir().expect("temp dir"), made: 0, open: Box::new(move |dir| Box::pin(open(dir))) }
    }

    /// Backends built by `make` on a redb [`crate::store::Store`] in the directory.
    pub(crate) fn on_store(make: fn(crate::store::Store) -> S) -> Self
    where
        S: 'static,
    {
        TempDb::new(move |dir| async move { make(crate::store::Store::open(&dir).expect("the store opens")) })
    }

    fn dir(&self) -> std::path::PathBuf {
        self.root.path().join(self.made.to_string())
    }
}

#[cfg(test)]
#[async_trait]
impl<S: Send + 'static> Harness<S> for TempDb<S> {
    async fn fresh(&mut self) -> S {
        self.made += 1;
        (self.open)(self.dir()).await
    }

    async fn reopen(&mut self, backend: S) -> S {
        drop(backend);
        (self.open)(self.dir()).await
    }
}
