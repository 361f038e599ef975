//! Configuration of the progress module (`progress:` in hearth.yaml).

use serde::{Deserialize, Serialize};

/// Settings for progress tracking (seed "Progress Tracking Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressConfig {
    /// Hours a completed progress is kept before the sweeper removes it.
    pub retain_completed_hours: u64,
    /// Hours a failed (or cancelled) progress is kept.
    pub retain_failed_hours: u64,
    /// Whether `/ws/progress` is served.
    pub websocket: bool,
}

impl Default for ProgressConfig {
    fn default() -> Self {
        ProgressConfig { retain_completed_hours: 24, retain_failed_hours: 168, websocket: true }
    }
}
