//! What every module needs from the process around it, without depending on the
//! composition root: background-task handles with the shutdown signal and a supervisor
//! ([`Background`]), and the one definition of readiness ([`Readiness`]).
//!
//! This file is a leaf: it imports nothing of hearth, so any module may use it and
//! `app.rs` (which builds the modules) stays on top of the house.

use futures::FutureExt;
use parking_lot::Mutex;
use serde::Serialize;
use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Handles background tasks get: a shutdown signal, a tracker that shutdown waits on, and
/// the supervisor that restarts supervised tasks that panic.
#[derive(Clone, Default)]
pub struct Background {
    /// Cancelled when the app shuts down.
    pub shutdown: CancellationToken,
    /// Every background task is spawned on this so shutdown can wait for it.
    pub tasks: TaskTracker,
    supervisor: Arc<Supervisor>,
}

/// Panics within this window count towards a crash loop.
const CRASH_WINDOW: Duration = Duration::from_secs(60);
/// This many panics of one task within [`CRASH_WINDOW`] is a crash loop.
const CRASH_LOOP: usize = 5;
/// The first restart waits this long; each further panic in a row doubles it.
const FIRST_RESTART: Duration = Duration::from_millis(100);
/// The longest wait before a restart.
const MAX_RESTART: Duration = Duration::from_secs(5);

/// Recent panics of each supervised task.
#[derive(Default)]
struct Supervisor {
    panics: Mutex<BTreeMap<&'static str, VecDeque<Instant>>>,
}

impl Supervisor {
    /// Records a panic of `task`; returns how many it had within the window.
    fn record(&self, task: &'static str) -> usize {
        let mut all = self.panics.lock();
        let recent = all.entry(task).or_default();
        let now = Instant::now();
        recent.push_back(now);
        while recent.front().is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW) {
            recent.pop_front();
        }
        recent.len()
    }

    /// The tasks in a crash loop now, with their panics within the window.
    fn crash_loops(&self) -> Vec<(&'static str, usize)> {
        let now = Instant::now();
        let mut all = self.panics.lock();
        let mut out = Vec::new();
        for (task, recent) in all.iter_mut() {
            while recent.front().is_some_and(|t| now.duration_since(*t) > CRASH_WINDOW) {
                recent.pop_front();
            }
            if recent.len() >= CRASH_LOOP {
                out.push((*task, recent.len()));
            }
        }
        out
    }
}

impl Background {
    /// Spawns a tracked background task.
    pub fn spawn<F>(&self, fut: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(fut);
    }

    /// Spawns a supervised background task: `make` builds the task; when it panics, the
    /// panic is logged and counted (`hearth_task_panics_total{task}`) and a new task is
    /// made after a short backoff, so one bad input never stops a loop for good. A task
    /// that returns is not restarted (it returns at shutdown). A task that panics
    /// [`CRASH_LOOP`] times within a minute is in a crash loop, which makes the process
    /// unhealthy ([`Background::crash_loops`], `/healthz`) until it calms down; it keeps
    /// being restarted meanwhile. State the task needs across restarts (a channel's
    /// receiving end...) must live outside the future `make` builds.
    pub fn supervise<F, Fut>(&self, task: &'static str, make: F)
    where
        F: Fn() -> Fut + Send + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        describe_metrics();
        let supervisor = self.supervisor.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let mut wait = FIRST_RESTART;
            loop {
                match AssertUnwindSafe(make()).catch_unwind().await {
                    Ok(()) => return,
                    Err(panic) => {
                        let what = panic_message(panic.as_ref());
                        let recent = supervisor.record(task);
                        ::metrics::counter!("hearth_task_panics_total", "task" => task).increment(1);
                        tracing::error!(task, panic = %what, recent, "background task panicked; restarting it");
                    }
                }
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(wait) => {}
                }
                wait = (wait * 2).min(MAX_RESTART);
            }
        });
    }

    /// Supervised tasks in a crash loop (five panics or more within a minute), with their
    /// recent panic counts. Empty when the process is healthy.
    pub fn crash_loops(&self) -> Vec<(&'static str, usize)> {
        self.supervisor.crash_loops()
    }
}

/// The message of a caught panic (`panic!("...")` payloads), or "a panic".
pub fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into())
}

fn describe_metrics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        ::metrics::describe_counter!("hearth_task_panics_total", "Panics of supervised background tasks, by task; each was restarted.");
    });
}

/// The three states of a module (or of the whole service).
///
/// - `ready`: serves every request.
/// - `degraded`: serves, but some feature is off (e.g. keyword search works while the
///   embedding model is missing). `/readyz` answers 200, with the reason.
/// - `unavailable`: cannot serve its requests. `/readyz` answers 503.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq, PartialOrd, Ord, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReadyState {
    /// Fully functional.
    Ready,
    /// Serving with a reduced feature set.
    Degraded,
    /// Not serving.
    Unavailable,
}

/// Whether one module can serve its requests, and why not.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
pub struct Readiness {
    /// `ready`, `degraded` or `unavailable`.
    pub status: ReadyState,
    /// True when the module serves requests (`ready` or `degraded`).
    pub ready: bool,
    /// Why it is degraded or unavailable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Module-specific facts (model loaded, documents indexed...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl Readiness {
    fn of(status: ReadyState, reason: Option<String>) -> Self {
        Readiness { status, ready: status != ReadyState::Unavailable, reason, details: None }
    }

    /// Fully ready.
    pub fn ready() -> Self {
        Readiness::of(ReadyState::Ready, None)
    }

    /// Serving, with a feature off; `reason` says which and why.
    pub fn degraded(reason: impl Into<String>) -> Self {
        Readiness::of(ReadyState::Degraded, Some(reason.into()))
    }

    /// Not serving, with the reason.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Readiness::of(ReadyState::Unavailable, Some(reason.into()))
    }

    /// Adds module-specific details.
    pub fn with_details(mut self, details: serde_json::Value) -> Self {
        self.details = Some(details);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(start_paused = true)]
    async fn a_panicking_task_is_restarted_and_a_crash_loop_is_reported() {
        let bg = Background::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        bg.supervise("flaky", move || {
            let r = r.clone();
            async move {
                // Panics on its first six runs, then works until shutdown.
                if r.fetch_add(1, Ordering::SeqCst) < 6 {
                    panic!("bad input");
                }
                std::future::pending::<()>().await
            }
        });
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert_eq!(runs.load(Ordering::SeqCst), 7, "restarted after each panic");
        let loops = bg.crash_loops();
        assert_eq!(loops.len(), 1, "six panics within a minute are a crash loop: {loops:?}");
        assert_eq!(loops[0].0, "flaky");
        bg.shutdown.cancel();
        bg.tasks.close();
    }

    #[tokio::test]
    async fn a_task_that_returns_is_not_restarted() {
        let bg = Background::default();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        bg.supervise("once", move || {
            let r = r.clone();
            async move {
                r.fetch_add(1, Ordering::SeqCst);
            }
        });
        bg.tasks.close();
        bg.tasks.wait().await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(bg.crash_loops().is_empty());
    }

    #[test]
    fn degraded_serves_and_unavailable_does_not() {
        assert!(Readiness::ready().ready);
        let d = Readiness::degraded("model missing");
        assert!(d.ready && d.status == ReadyState::Degraded);
        let u = Readiness::unavailable("store failed");
        assert!(!u.ready && u.status == ReadyState::Unavailable);
        assert!(ReadyState::Ready < ReadyState::Degraded && ReadyState::Degraded < ReadyState::Unavailable);
        let json = serde_json::to_value(&d).unwrap();
        assert_eq!(json["status"], "degraded");
        assert_eq!(json["reason"], "model missing");
    }
}
