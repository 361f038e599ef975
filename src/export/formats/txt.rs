//! Plain text through the `txt/<template>.j2` template (options: timestamps, speakers).

use super::RenderContext;
use crate::export::{error::ExportError, model::Source, templates::source_context};

/// Renders the source as plain text.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let v = source_context(source, ctx.options);
    Ok(ctx.templates.render("txt", ctx.template, &v)?.into_bytes())
}

#[cfg(test)]
mod tests {
    use crate::export::formats::test_util::{render, sample, sample_document};

    #[test]
    fn transcript_lines_have_timestamps_and_speakers() {
        let out = render("txt", &sample());
        assert!(out.starts_with("Grüße\nLanguage: de\n\n[0:00 - 0:02] Anna: Grüße aus München,\ncafé!\n"), "{out}");
        assert!(out.contains("[1:01:01 - 1:01:02] "));
    }

    #[test]
    fn document_paragraphs() {
        let out = render("txt", &sample_document());
        assert!(out.contains("Überblick\n\nErster Absatz über zwei Zeilen.\n\n"), "{out}");
    }
}
