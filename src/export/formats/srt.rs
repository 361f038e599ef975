//! SubRip: `N\nHH:MM:SS,mmm --> HH:MM:SS,mmm\ntext\n\n`, numbered 1..N, sorted by time.
//! The output is exactly what the Python `srt` library composes from it (round-trip
//! byte-identical): no blank lines inside a cue, trimmed lines.

use super::{RenderContext, cue_lines, cues, require_transcript, templated_cue, write_timestamp};
use crate::export::{error::ExportError, model::Source};
use std::fmt::Write;

/// Renders a transcript as SRT.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let t = require_transcript(source, "srt")?;
    let mut out = String::with_capacity(t.segments.len() * 80);
    for (i, (start, end, seg)) in cues(t).into_iter().enumerate() {
        let _ = writeln!(out, "{}", i + 1);
        write_timestamp(&mut out, start, ',');
        out.push_str(" --> ");
        write_timestamp(&mut out, end, ',');
        out.push('\n');
        if let Some(text) = templated_cue(ctx, "srt", i + 1, seg)? {
            cue_lines(&text).for_each(|line| {
                out.push_str(line);
                out.push('\n');
            });
            out.push('\n');
            continue;
        }
        let mut first = true;
        for line in cue_lines(&seg.text) {
            if first
                && ctx.options.speakers
                && let Some(sp) = seg.speaker.as_deref().map(str::trim).filter(|s| !s.is_empty())
            {
                out.push_str(sp);
                out.push_str(": ");
            }
            first = false;
            out.push_str(line);
            out.push('\n');
        }
        out.push('\n');
    }
    Ok(out.into_bytes())
}

#[cfg(test)]
mod tests {
    use crate::export::formats::test_util::{render, sample};

    #[test]
    fn exact_layout() {
        let out = render("srt", &sample());
        assert!(out.starts_with("1\n00:00:00,000 --> 00:00:02,500\nAnna: Grüße aus München,\ncafé!\n\n2\n"), "{out}");
        assert!(out.contains("01:01:01,001 --> 01:01:02,000"));
        assert!(out.ends_with("\n\n") && !out.ends_with("\n\n\n"));
    }

    #[test]
    fn a_cue_template_shapes_each_cue_text() {
        let out = crate::export::formats::test_util::render_with_template("srt", "custom", &sample());
        assert!(out.starts_with("1\n00:00:00,000 --> 00:00:02,500\n[Anna] Grüße aus München,\ncafé!\n\n2\n"), "{out}");
    }
}
