//! The export request (`POST /api/exports`) and its validation into stored work.

use super::error::ExportError;
use super::formats::{FormatSpec, RenderOptions};
use super::model::Source;
use super::record::WorkItem;
use super::sources::SourceRegistry;
use super::storage::check_filename;
use serde::{Deserialize, Serialize};

/// A request to export one source (`source_type` + `source_id` or inline `source`) or
/// several (`batch`, packed into one zip).
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExportRequest {
    /// `transcript`, `document` or a registered type. Required unless `batch` is used.
    #[serde(default)]
    pub source_type: Option<String>,
    /// Id of a stored source.
    #[serde(default)]
    pub source_id: Option<String>,
    /// The source itself, for callers that keep their data elsewhere.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub source: Option<serde_json::Value>,
    /// Several sources exported in one zip (instead of `source_id`/`source`).
    #[serde(default)]
    pub batch: Vec<BatchItem>,
    /// `txt`, `json`, `srt`, `vtt`, `md`, `docx`, `pdf` or a registered format.
    pub format: String,
    /// Template name (txt, md, docx, pdf; for srt and vtt a cue template, `custom` built
    /// in); default `default`.
    #[serde(default)]
    pub template: Option<String>,
    /// Download file name without path; the extension is added.
    #[serde(default)]
    pub filename: Option<String>,
    /// Rendering options.
    #[serde(default)]
    pub options: RenderOptions,
    /// User to notify (in-app) when the export completes or fails.
    #[serde(default)]
    pub notify_user_id: Option<String>,
    /// URL to POST a signed `export.completed` / `export.failed` callback to.
    #[serde(default)]
    pub webhook_url: Option<String>,
    /// Secret for the callback's `X-Hearth-Signature` (HMAC-SHA256).
    #[serde(default)]
    pub webhook_secret: Option<String>,
}

/// One source of a batch export.
#[derive(Debug, Clone, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchItem {
    /// Source type.
    pub source_type: String,
    /// Id of a stored source.
    #[serde(default)]
    pub source_id: Option<String>,
    /// Inline source.
    #[serde(default)]
    #[schema(value_type = Option<Object>)]
    pub source: Option<serde_json::Value>,
    /// File name inside the zip (extension added).
    #[serde(default)]
    pub filename: Option<String>,
}

/// The answer to an accepted export.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ExportCreated {
    /// Export id = job id = progress id.
    pub job_id: String,
    /// Always `pending`.
    pub status: String,
}

/// A file-name stem from free text: letters, digits, `-`, `_`, `.`, spaces → `_`.
pub fn default_stem(parts: &[&str]) -> String {
    let s: String =
        parts.join("_").chars().map(|c| if c.is_alphanumeric() || matches!(c, '-' | '_') { c } else { '_' }).take(100).collect();
    if s.trim_matches('_').is_empty() { "export".into() } else { s }
}

/// Resolves one source reference: checks the type, that exactly one of id / inline is
/// given, that a stored source exists (`load`), and validates inline data. `prefix` is
/// the field path of the reference (empty, or `batch[3].`).
pub async fn resolve(
    sources: &SourceRegistry,
    spec: &FormatSpec,
    prefix: &str,
    source_type: &str,
    source_id: Option<&str>,
    inline: Option<serde_json::Value>,
) -> Result<(Source, WorkItem), ExportError> {
    let f = |name: &str| format!("{prefix}{name}");
    let src = sources.get(source_type).ok_or_else(|| {
        ExportError::invalid(f("source_type"), format!("unknown source type '{source_type}'; known: {}", sources.names().join(", ")))
    })?;
    let (source, item) = match (source_id, inline) {
        (Some(_), Some(_)) => return Err(ExportError::invalid(f("source"), "give either source_id or source, not both")),
        (None, None) => return Err(ExportError::invalid(f("source_id"), "source_id or source is required")),
        (Some(id), None) => {
            if id.trim().is_empty() {
                return Err(ExportError::invalid(f("source_id"), "must not be empty"));
            }
            let source = src.load(id).await.map_err(|e| match e {
                ExportError::NotFound { kind, id } => ExportError::invalid(f("source_id"), format!("{kind} '{id}' not found")),
                other => other,
            })?;
            (source, WorkItem { source_type: source_type.into(), source_id: Some(id.into()), inline: None, filename: String::new() })
        }
        (None, Some(v)) => {
            let source = src.from_inline(v).map_err(|e| match e {
                ExportError::Invalid { field, message } => {
                    ExportError::Invalid { field: if field.is_empty() { f("source") } else { format!("{}.{field}", f("source")) }, message }
                }
                other => other,
            })?;
            let json = match &source {
                Source::Transcript(t) => serde_json::to_string(t),
                Source::Document(d) => serde_json::to_string(d),
            }
            .map_err(|e| ExportError::Render(e.to_string()))?;
            (source, WorkItem { source_type: source_type.into(), source_id: None, inline: Some(json), filename: String::new() })
        }
    };
    if spec.timed && !matches!(source, Source::Transcript(_)) {
        return Err(ExportError::invalid("format", format!("{} needs a transcript source (timed segments)", spec.name)));
    }
    Ok((source, item))
}

/// The download file name (extension included) from a caller's `filename` or a default.
pub fn file_name(field: &str, given: Option<&str>, default: &[&str], ext: &str) -> Result<String, ExportError> {
    let stem = match given {
        Some(name) => check_filename(name, ext).map_err(|e| match e {
            ExportError::Invalid { message, .. } => ExportError::invalid(field, message),
            other => other,
        })?,
        None => default_stem(default),
    };
    Ok(format!("{stem}.{ext}"))
}

/// Checks the webhook fields.
pub fn check_webhook(url: Option<&str>, secret: Option<&str>, allow_private: bool) -> Result<(), ExportError> {
    if let Some(u) = url {
        // Host names are checked again after DNS resolution, at each delivery.
        crate::outbound::check_url(u, allow_private).map_err(|why| ExportError::invalid("webhook_url", why))?;
    } else if secret.is_some() {
        return Err(ExportError::invalid("webhook_secret", "needs webhook_url"));
    }
    Ok(())
}
