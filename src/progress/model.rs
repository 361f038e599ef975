//! The progress data model: the public [`Progress`] object, creation requests, and the
//! stored [`ProgressRecord`] it is derived from.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

/// Lifecycle of a progress: `pending` until the first update, then `processing`, then one
/// of the terminal states. Terminal states never change again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProgressStatus {
    /// Created, no update yet.
    Pending,
    /// At least one update received.
    Processing,
    /// Finished successfully (terminal).
    Completed,
    /// Finished with an error (terminal).
    Failed,
    /// Stopped on request (terminal).
    Cancelled,
}

impl ProgressStatus {
    /// Every status, in lifecycle order.
    pub const ALL: [ProgressStatus; 5] =
        [ProgressStatus::Pending, ProgressStatus::Processing, ProgressStatus::Completed, ProgressStatus::Failed, ProgressStatus::Cancelled];

    /// True for completed, failed and cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(self, ProgressStatus::Completed | ProgressStatus::Failed | ProgressStatus::Cancelled)
    }

    /// The wire name (`pending`, `processing`...).
    pub fn as_str(self) -> &'static str {
        match self {
            ProgressStatus::Pending => "pending",
            ProgressStatus::Processing => "processing",
            ProgressStatus::Completed => "completed",
            ProgressStatus::Failed => "failed",
            ProgressStatus::Cancelled => "cancelled",
        }
    }

    /// Parses a wire name.
    pub fn parse(s: &str) -> Option<ProgressStatus> {
        ProgressStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// The event topic that announces a progress in this state: `progress.update` while
    /// running, `progress.completed` / `.failed` / `.cancelled` once finished.
    pub fn topic(self) -> &'static str {
        match self {
            ProgressStatus::Pending | ProgressStatus::Processing => topics::UPDATE,
            ProgressStatus::Completed => topics::COMPLETED,
            ProgressStatus::Failed => topics::FAILED,
            ProgressStatus::Cancelled => topics::CANCELLED,
        }
    }
}

/// Event-bus topics published by the tracker (key = progress id, data = [`Progress`] JSON).
pub mod topics {
    /// The percent changed within the current stage.
    pub const UPDATE: &str = "progress.update";
    /// The current stage changed (advance, or an update naming another stage).
    pub const STAGE: &str = "progress.stage";
    /// The progress completed.
    pub const COMPLETED: &str = "progress.completed";
    /// The progress failed.
    pub const FAILED: &str = "progress.failed";
    /// The progress was cancelled.
    pub const CANCELLED: &str = "progress.cancelled";
    /// Prefix shared by every progress topic.
    pub const PREFIX: &str = "progress.";
}

/// One stage of a progress and its share of the overall percentage.
///
/// In JSON a stage is either a bare name (`"upload"`, weight 1) or an object
/// `{"name": "upload", "weight": 3}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StageSpec {
    /// Stage name, unique within the progress.
    pub name: String,
    /// Relative weight (> 0); the overall percentage weighs each stage by it.
    pub weight: f64,
}

impl StageSpec {
    /// A stage with weight 1.
    pub fn named(name: impl Into<String>) -> Self {
        StageSpec { name: name.into(), weight: 1.0 }
    }
}

/// The JSON forms a stage may take in a request (documentation and parsing of [`StageSpec`]).
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum StageInput {
    /// A bare stage name; weight 1.
    Name(String),
    /// A name with an explicit weight.
    Spec {
        /// Stage name.
        name: String,
        /// Relative weight (> 0, default 1).
        weight: Option<f64>,
    },
}

impl<'de> Deserialize<'de> for StageSpec {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // JSON accepts both request forms; the binary store codec uses the plain struct.
        if d.is_human_readable() {
            Ok(match StageInput::deserialize(d)? {
                StageInput::Name(name) => StageSpec { name, weight: 1.0 },
                StageInput::Spec { name, weight } => StageSpec { name, weight: weight.unwrap_or(1.0) },
            })
        } else {
            #[derive(Deserialize)]
            struct Raw {
                name: String,
                weight: f64,
            }
            let r = Raw::deserialize(d)?;
            Ok(StageSpec { name: r.name, weight: r.weight })
        }
    }
}

/// A request to create a progress (`POST /api/progress`).
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct NewProgress {
    /// The id to use (e.g. a job or file id; letters, digits, `-_.:@`, up to 200
    /// characters); generated (UUID v7) when absent.
    pub id: Option<String>,
    /// The stages in order, each a name or `{"name", "weight"}`; may be empty (then the
    /// progress is one implicit stage and `stage` is null).
    #[schema(value_type = Vec<StageInput>)]
    pub stages: Vec<StageSpec>,
    /// Application data kept with the progress; a JSON object (or null).
    #[schema(value_type = Option<Object>)]
    pub metadata: serde_json::Value,
}

impl NewProgress {
    /// A request with equally weighted stages named `names`.
    pub fn with_stages(id: Option<String>, names: &[&str]) -> Self {
        NewProgress { id, stages: names.iter().map(|n| StageSpec::named(*n)).collect(), metadata: serde_json::Value::Null }
    }

    /// Sets the metadata.
    pub fn metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata = metadata;
        self
    }
}

/// A percent update, as `PATCH /api/progress/{id}` carries it.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ProgressUpdate {
    /// Percent within the (new) current stage, 0–100. When absent the stage must change,
    /// and the percent of the new stage starts at 0.
    pub progress: Option<f64>,
    /// The stage the percent refers to. A later stage moves forward (skipped stages count
    /// as done); an earlier stage is a conflict unless `allow_backwards`.
    pub stage: Option<String>,
    /// Permits moving back to an earlier stage (e.g. a retry of a previous step).
    pub allow_backwards: bool,
}

/// The public progress object answered by every endpoint and carried by every event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Progress {
    /// The id (given at creation or generated).
    pub id: String,
    /// Stage names, in order.
    pub stages: Vec<String>,
    /// Relative stage weights, parallel to `stages`.
    pub weights: Vec<f64>,
    /// The current stage's name; null when the progress has no stages.
    pub stage: Option<String>,
    /// Index of the current stage in `stages` (0 when there are none).
    pub stage_index: usize,
    /// Percent done within the current stage, 0–100.
    pub progress: f64,
    /// Percent done overall, 0–100, weighting each stage by its weight.
    pub overall: f64,
    /// `pending`, `processing`, `completed`, `failed` or `cancelled`.
    pub status: ProgressStatus,
    /// Application data given at creation.
    #[schema(value_type = Object)]
    pub metadata: serde_json::Value,
    /// The result given on completion: any JSON value.
    #[schema(value_type = Value)]
    pub result: Option<serde_json::Value>,
    /// The error message given on failure.
    pub error: Option<String>,
    /// Estimated seconds to completion from the observed rate; null until it can be
    /// estimated (two updates with progress between them), 0 once completed.
    pub eta_seconds: Option<u64>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
    /// When the first update arrived.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a terminal state.
    pub finished_at: Option<DateTime<Utc>>,
    /// Increases with every change; a consumer may ignore an event whose version is not
    /// above the last one it saw for the same id.
    pub version: u64,
}

/// The stored form of a progress (the store codec is not self-describing: JSON values are
/// kept as text, no optional-field tricks). Public so custom [`super::ProgressStorage`]
/// implementations can persist it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProgressRecord {
    /// The id.
    pub id: String,
    /// Stages in order.
    pub stages: Vec<StageSpec>,
    /// Index of the current stage.
    pub stage_index: u32,
    /// Percent within the current stage.
    pub progress: f64,
    /// Lifecycle state.
    pub status: ProgressStatus,
    /// Application data.
    #[serde(with = "crate::store::codec::json")]
    pub metadata: serde_json::Value,
    /// Completion result.
    #[serde(with = "crate::store::codec::json_opt")]
    pub result: Option<serde_json::Value>,
    /// Failure message.
    pub error: Option<String>,
    /// Last ETA estimate, seconds.
    pub eta_seconds: Option<u64>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// First update.
    pub started_at: Option<DateTime<Utc>>,
    /// Terminal transition.
    pub finished_at: Option<DateTime<Utc>>,
    /// Monotonic change counter; storage never replaces a record by an older version.
    pub version: u64,
    /// Start of the rate window used for the ETA.
    pub rate_since: Option<DateTime<Utc>>,
    /// Overall percent at `rate_since`.
    pub rate_base: f64,
}

impl ProgressRecord {
    /// Overall percent, weighting completed stages fully and the current one by `progress`.
    pub fn overall(&self) -> f64 {
        if self.status == ProgressStatus::Completed {
            return 100.0;
        }
        if self.stages.is_empty() {
            return self.progress;
        }
        let total: f64 = self.stages.iter().map(|s| s.weight).sum();
        let idx = (self.stage_index as usize).min(self.stages.len() - 1);
        let done: f64 = self.stages[..idx].iter().map(|s| s.weight).sum();
        let v = (done + self.stages[idx].weight * self.progress / 100.0) / total * 100.0;
        // Rounding keeps the wire values stable (no 33.333333333333336).
        ((v * 1e6).round() / 1e6).clamp(0.0, 100.0)
    }

    /// The current stage's name.
    pub fn stage_name(&self) -> Option<&str> {
        self.stages.get(self.stage_index as usize).map(|s| s.name.as_str())
    }

    /// The public object.
    pub fn to_progress(&self) -> Progress {
        Progress {
            id: self.id.clone(),
            stages: self.stages.iter().map(|s| s.name.clone()).collect(),
            weights: self.stages.iter().map(|s| s.weight).collect(),
            stage: self.stage_name().map(str::to_string),
            stage_index: self.stage_index as usize,
            progress: self.progress,
            overall: self.overall(),
            status: self.status,
            metadata: self.metadata.clone(),
            result: self.result.clone(),
            error: self.error.clone(),
            eta_seconds: self.eta_seconds,
            created_at: self.created_at,
            updated_at: self.updated_at,
            started_at: self.started_at,
            finished_at: self.finished_at,
            version: self.version,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_parse_from_names_or_objects() {
        let n: NewProgress = serde_json::from_str(r#"{"stages": ["a", {"name": "b", "weight": 3}, {"name": "c"}]}"#).unwrap();
        assert_eq!(n.stages, vec![StageSpec::named("a"), StageSpec { name: "b".into(), weight: 3.0 }, StageSpec::named("c")]);
        assert!(serde_json::from_str::<NewProgress>(r#"{"stages": [1]}"#).is_err());
        assert!(serde_json::from_str::<NewProgress>(r#"{"bogus": 1}"#).is_err());
    }

    #[test]
    fn records_round_trip_through_the_store_codec() {
        let now = Utc::now();
        let r = ProgressRecord {
            id: "p".into(),
            stages: vec![StageSpec { name: "a".into(), weight: 2.5 }],
            stage_index: 0,
            progress: 12.5,
            status: ProgressStatus::Processing,
            metadata: serde_json::json!({"k": [1, 2]}),
            result: None,
            error: Some("x".into()),
            eta_seconds: Some(3),
            created_at: now,
            updated_at: now,
            started_at: Some(now),
            finished_at: None,
            version: 7,
            rate_since: Some(now),
            rate_base: 1.0,
        };
        let bytes = crate::store::codec::encode(&r).unwrap();
        assert_eq!(crate::store::codec::decode::<ProgressRecord>(&bytes).unwrap(), r);
    }
}
