//! What formatters and templates share: rendering options and timestamp/cue helpers. A
//! leaf, so that `templates.rs` can use it while the formatters use the templates.

use crate::export::error::ExportError;
use serde::{Deserialize, Serialize};

/// Layout of transcript segments in docx output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    /// One paragraph per segment.
    #[default]
    Paragraphs,
    /// A table with time, speaker and text columns.
    Table,
}

/// Page size of pdf output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PageSize {
    /// 210 × 297 mm.
    #[default]
    A4,
    /// 8.5 × 11 in.
    Letter,
}

/// Per-request rendering options (`options` in the export request).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct RenderOptions {
    /// Show segment timestamps (txt, md, docx, pdf).
    pub timestamps: bool,
    /// Show speaker labels (all formats that have text lines; VTT uses `<v>` tags).
    pub speakers: bool,
    /// docx: paragraphs or a table.
    pub layout: Layout,
    /// json: pretty-print; defaults to the format's configured `pretty`.
    pub pretty: Option<bool>,
    /// pdf: page size.
    pub page_size: PageSize,
    /// pdf: body font size in points (6..=36).
    pub font_size: f32,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            timestamps: true,
            speakers: true,
            layout: Layout::Paragraphs,
            pretty: None,
            page_size: PageSize::A4,
            font_size: 11.0,
        }
    }
}

impl RenderOptions {
    /// Checks value ranges, naming the field as `options.<name>`.
    pub fn validate(&self) -> Result<(), ExportError> {
        if !(6.0..=36.0).contains(&self.font_size) {
            return Err(ExportError::invalid("options.font_size", "must be between 6 and 36"));
        }
        Ok(())
    }
}

/// Splits seconds into (hours, minutes, seconds, milliseconds), rounding to the millisecond.
pub fn split_ms(total_ms: u64) -> (u64, u64, u64, u64) {
    (total_ms / 3_600_000, (total_ms / 60_000) % 60, (total_ms / 1000) % 60, total_ms % 1000)
}

/// Seconds → whole milliseconds (rounded; negative and non-finite clamp to 0).
pub fn to_ms(seconds: f64) -> u64 {
    if seconds.is_finite() && seconds > 0.0 { (seconds * 1000.0).round() as u64 } else { 0 }
}

/// Cue times in milliseconds with `end > start` guaranteed even when both round to the
/// same millisecond.
pub fn cue_ms(start: f64, end: f64) -> (u64, u64) {
    let s = to_ms(start);
    (s, to_ms(end).max(s + 1))
}

/// `HH:MM:SS` followed by `sep` and milliseconds; hours grow beyond two digits if needed.
pub fn write_timestamp(out: &mut String, ms: u64, sep: char) {
    use std::fmt::Write;
    let (h, m, s, ms) = split_ms(ms);
    let _ = write!(out, "{h:02}:{m:02}:{s:02}{sep}{ms:03}");
}

/// A short human timestamp for documents: `M:SS` or `H:MM:SS`.
pub fn short_timestamp(seconds: f64) -> String {
    let (h, m, s, _) = split_ms(to_ms(seconds.floor().max(0.0)));
    if h > 0 { format!("{h}:{m:02}:{s:02}") } else { format!("{m}:{s:02}") }
}

/// Cue text with no blank or whitespace-only lines, each line trimmed, no `\r`:
/// what subtitle formats require inside one cue.
pub fn cue_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines().map(str::trim).filter(|l| !l.is_empty())
}
