//! The formatters, registered in one table ([`BUILTIN`]): name → content type, file
//! extension and render function. Every formatter is a pure function of the source and a
//! [`RenderContext`]; none does I/O except reading templates and the PDF font.

mod docx;
mod json;
mod md;
pub mod pdf;
mod srt;
mod txt;
mod vtt;

use super::error::ExportError;
use super::fonts::FontProvider;
use super::model::Source;
use super::templates::Templates;
use serde::{Deserialize, Serialize};

/// Renders a source to bytes.
pub type RenderFn = fn(&Source, &RenderContext<'_>) -> Result<Vec<u8>, ExportError>;

/// One output format.
#[derive(Clone, Copy)]
pub struct FormatSpec {
    /// Name used in requests (`"srt"`).
    pub name: &'static str,
    /// MIME type of the output.
    pub content_type: &'static str,
    /// File extension without the dot.
    pub extension: &'static str,
    /// True when the format needs timed segments (a transcript), like srt and vtt.
    pub timed: bool,
    /// The formatter.
    pub render: RenderFn,
}

impl std::fmt::Debug for FormatSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FormatSpec").field("name", &self.name).field("content_type", &self.content_type).finish()
    }
}

/// The built-in formats. Custom ones are added with [`crate::export::ExportService::register_format`].
pub const BUILTIN: &[FormatSpec] = &[
    FormatSpec { name: "txt", content_type: "text/plain; charset=utf-8", extension: "txt", timed: false, render: txt::render },
    FormatSpec { name: "json", content_type: "application/json", extension: "json", timed: false, render: json::render },
    FormatSpec { name: "srt", content_type: "application/x-subrip; charset=utf-8", extension: "srt", timed: true, render: srt::render },
    FormatSpec { name: "vtt", content_type: "text/vtt; charset=utf-8", extension: "vtt", timed: true, render: vtt::render },
    FormatSpec { name: "md", content_type: "text/markdown; charset=utf-8", extension: "md", timed: false, render: md::render },
    FormatSpec {
        name: "docx",
        content_type: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        extension: "docx",
        timed: false,
        render: docx::render,
    },
    FormatSpec { name: "pdf", content_type: "application/pdf", extension: "pdf", timed: false, render: pdf::render },
];

/// Looks a built-in format up by name.
pub fn builtin(name: &str) -> Option<&'static FormatSpec> {
    BUILTIN.iter().find(|f| f.name == name)
}

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

/// Everything a formatter may use besides the source.
pub struct RenderContext<'a> {
    /// The request's options.
    pub options: &'a RenderOptions,
    /// Template lookup.
    pub templates: &'a Templates,
    /// Template name (`default` unless the request names one).
    pub template: &'a str,
    /// PDF font resolution.
    pub fonts: &'a FontProvider,
    /// Default of `pretty` for json (from the format's configuration).
    pub pretty_json: bool,
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

#[cfg(test)]
pub(crate) mod test_util;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_handle_hours_and_rounding() {
        let mut s = String::new();
        write_timestamp(&mut s, to_ms(3723.4567), ',');
        assert_eq!(s, "01:02:03,457");
        s.clear();
        write_timestamp(&mut s, to_ms(360_000.0), '.');
        assert_eq!(s, "100:00:00.000");
        assert_eq!(cue_ms(1.0001, 1.0002), (1000, 1001));
        assert_eq!(short_timestamp(65.9), "1:05");
        assert_eq!(short_timestamp(3725.0), "1:02:05");
    }

    #[test]
    fn table_names_are_unique() {
        for (i, f) in BUILTIN.iter().enumerate() {
            assert!(BUILTIN[..i].iter().all(|g| g.name != f.name));
            assert_eq!(builtin(f.name).unwrap().extension, f.extension);
        }
    }
}

/// The transcript inside `source`, or an error naming `format` when it is a document.
pub fn require_transcript<'s>(source: &'s Source, format: &str) -> Result<&'s super::model::Transcript, ExportError> {
    match source {
        Source::Transcript(t) => Ok(t),
        Source::Document(_) => Err(ExportError::invalid("format", format!("{format} needs a transcript source (timed segments)"))),
    }
}

/// Cues in millisecond resolution sorted by (start, end), the order subtitle players
/// and the `srt` reference library expect.
pub fn cues(t: &super::model::Transcript) -> Vec<(u64, u64, &super::model::Segment)> {
    let mut v: Vec<_> = t
        .segments
        .iter()
        .map(|s| {
            let (a, b) = cue_ms(s.start, s.end);
            (a, b, s)
        })
        .collect();
    v.sort_by_key(|c| (c.0, c.1));
    v
}
