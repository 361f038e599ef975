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

pub mod common;
pub use common::*;

use super::error::ExportError;
use super::fonts::FontProvider;
use super::model::Source;
use super::templates::Templates;

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

/// The text of cue `index` (1-based) through the request's cue template
/// (`<format>/<name>.j2`), or `None` for `default`, the built-in layout. A template that
/// renders nothing but blank lines is an error: a cue cannot be empty.
pub fn templated_cue(
    ctx: &RenderContext<'_>,
    format: &str,
    index: usize,
    seg: &super::model::Segment,
) -> Result<Option<String>, ExportError> {
    if ctx.template == "default" {
        return Ok(None);
    }
    let text = ctx.templates.render(format, ctx.template, &super::templates::cue_context(seg, index, ctx.options))?;
    if cue_lines(&text).next().is_none() {
        return Err(ExportError::Render(format!("template {format}/{}: cue {index} rendered empty", ctx.template)));
    }
    Ok(Some(text))
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
