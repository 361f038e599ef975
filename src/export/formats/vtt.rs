//! WebVTT: `WEBVTT` header, blank-line separated cues `HH:MM:SS.mmm --> HH:MM:SS.mmm`,
//! speakers as `<v Name>` voice spans, `&`, `<`, `>` escaped, no `-->` inside cue text.

use super::{RenderContext, cue_lines, cues, require_transcript, templated_cue, write_timestamp};
use crate::export::{error::ExportError, model::Source};

/// Appends `text` escaped for a cue payload.
fn escape_into(out: &mut String, text: &str) {
    for c in text.replace("-->", "\u{2192}").chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
}

/// Renders a transcript as WebVTT.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let t = require_transcript(source, "vtt")?;
    let mut out = String::with_capacity(t.segments.len() * 80 + 64);
    out.push_str("WEBVTT");
    let title = t.title.replace(['\n', '\r'], " ").replace("-->", "\u{2192}");
    if !title.trim().is_empty() {
        out.push_str(" - ");
        out.push_str(title.trim());
    }
    out.push_str("\n\n");
    for (i, (start, end, seg)) in cues(t).into_iter().enumerate() {
        write_timestamp(&mut out, start, '.');
        out.push_str(" --> ");
        write_timestamp(&mut out, end, '.');
        out.push('\n');
        if let Some(text) = templated_cue(ctx, "vtt", i + 1, seg)? {
            cue_lines(&text).for_each(|line| {
                escape_into(&mut out, line);
                out.push('\n');
            });
            out.push('\n');
            continue;
        }
        let speaker = seg.speaker.as_deref().map(str::trim).filter(|s| ctx.options.speakers && !s.is_empty());
        for (i, line) in cue_lines(&seg.text).enumerate() {
            if i == 0
                && let Some(sp) = speaker
            {
                out.push_str("<v ");
                escape_into(&mut out, sp);
                out.push('>');
            }
            escape_into(&mut out, line);
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
    fn header_cues_and_escaping() {
        let out = render("vtt", &sample());
        assert!(out.starts_with("WEBVTT - Grüße\n\n00:00:00.000 --> 00:00:02.500\n<v Anna>Grüße aus München,\ncafé!\n\n"), "{out}");
        assert!(out.contains("a &lt;b&gt; &amp; c \u{2192} d"));
    }
}
