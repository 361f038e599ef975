//! The export job record (stored in redb and returned by the API) and the work item the
//! job handler reads (sources to render, webhook secret — never returned).

use super::formats::RenderOptions;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Life cycle of an export: `pending` → `running` → `completed` | `failed`; `cancelled`
/// from `pending` or `running`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ExportStatus {
    /// Queued.
    Pending,
    /// Being rendered.
    Running,
    /// The file is ready for download.
    Completed,
    /// Rendering failed; `error` says why. No file exists.
    Failed,
    /// Cancelled by a caller. No file exists.
    Cancelled,
}

impl ExportStatus {
    /// Every status.
    pub const ALL: [ExportStatus; 5] =
        [ExportStatus::Pending, ExportStatus::Running, ExportStatus::Completed, ExportStatus::Failed, ExportStatus::Cancelled];

    /// The API name.
    pub fn as_str(self) -> &'static str {
        match self {
            ExportStatus::Pending => "pending",
            ExportStatus::Running => "running",
            ExportStatus::Completed => "completed",
            ExportStatus::Failed => "failed",
            ExportStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the API name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// True for states an export never leaves.
    pub fn is_final(self) -> bool {
        matches!(self, ExportStatus::Completed | ExportStatus::Failed | ExportStatus::Cancelled)
    }
}

/// An export as stored and as returned by `GET /api/exports/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportJob {
    /// Export id = job id = progress id.
    pub id: String,
    /// Source type (`transcript`, `document`, a registered type, or `batch`).
    pub source_type: String,
    /// The stored source's id (None for inline sources and batches).
    pub source_id: Option<String>,
    /// Output format (`zip` for batches is reported as the items' format with `batch = true`).
    pub format: String,
    /// True when several sources are packed into one zip.
    pub batch: bool,
    /// Template name.
    pub template: String,
    /// Download file name, extension included.
    pub filename: String,
    /// MIME type of the file.
    pub content_type: String,
    /// Rendering options.
    pub options: RenderOptions,
    /// Current status.
    pub status: ExportStatus,
    /// 0–100.
    pub progress: f64,
    /// File size in bytes once completed.
    pub size: Option<u64>,
    /// Strong validator of the file (quoted hex SHA-256 prefix) once completed.
    pub etag: Option<String>,
    /// Why it failed or was cancelled.
    pub error: Option<String>,
    /// User who created it (user-token callers), for access checks.
    pub user_id: Option<String>,
    /// User notified on completion.
    pub notify_user_id: Option<String>,
    /// URL POSTed (signed) on completion or failure.
    pub webhook_url: Option<String>,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// When rendering started.
    pub started_at: Option<DateTime<Utc>>,
    /// When it reached a final state.
    pub finished_at: Option<DateTime<Utc>>,
}

impl ExportJob {
    /// The storage key of the file (chosen by hearth: `<id>.<ext>`).
    pub fn storage_key(&self) -> String {
        let ext = self.filename.rsplit_once('.').map(|(_, e)| e).unwrap_or("bin");
        format!("{}.{}", self.id, ext)
    }
}

/// One source of an export, as the handler needs it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkItem {
    /// Source type.
    pub source_type: String,
    /// Stored source id, or None for inline.
    pub source_id: Option<String>,
    /// Inline source as JSON text.
    pub inline: Option<String>,
    /// File name inside a batch zip (extension included).
    pub filename: String,
}

/// What the handler renders; stored beside the record until the export is final.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Work {
    /// The sources (one unless batch).
    pub items: Vec<WorkItem>,
    /// HMAC secret for the webhook signature.
    pub webhook_secret: Option<String>,
}
