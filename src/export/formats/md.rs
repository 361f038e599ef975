//! Markdown through the `md/<template>.j2` template.

use super::RenderContext;
use crate::export::{error::ExportError, model::Source, templates::source_context};

/// Renders the source as markdown.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let v = source_context(source, ctx.options);
    Ok(ctx.templates.render("md", ctx.template, &v)?.into_bytes())
}

#[cfg(test)]
mod tests {
    use crate::export::formats::test_util::{render, sample, sample_document};

    #[test]
    fn title_and_segments() {
        let out = render("md", &sample());
        assert!(out.starts_with("# Grüße\n\n`0:00` **Anna:** Grüße aus München,\ncafé!\n\n"), "{out}");
    }

    #[test]
    fn document_headings_nest_below_the_title() {
        let out = render("md", &sample_document());
        assert!(out.contains("## Überblick\n\nErster Absatz"), "{out}");
    }
}
