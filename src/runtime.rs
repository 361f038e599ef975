//! What every module needs from the process around it, without depending on the
//! composition root: background-task handles with the shutdown signal ([`Background`]),
//! and the one definition of readiness ([`Readiness`]).
//!
//! This file is a leaf: it imports nothing of hearth, so any module may use it and
//! `app.rs` (which builds the modules) stays on top of the house.

use serde::Serialize;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Handles background tasks get: a shutdown signal and a tracker that shutdown waits on.
#[derive(Clone, Default)]
pub struct Background {
    /// Cancelled when the app shuts down.
    pub shutdown: CancellationToken,
    /// Every background task is spawned on this so shutdown can wait for it.
    pub tasks: TaskTracker,
}

impl Background {
    /// Spawns a tracked background task.
    pub fn spawn<F>(&self, fut: F)
    where
        F: std::future::Future<Output = ()> + Send + 'static,
    {
        self.tasks.spawn(fut);
    }
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
