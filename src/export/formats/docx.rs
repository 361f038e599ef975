//! DOCX through docx-rs: a `Title` paragraph, `Heading 1..6` styles defined in the
//! document, one paragraph per segment (timestamp, bold speaker label, text) or a table
//! (`options.layout = "table"`), and header/footer from the `docx/<template>.j2` blocks
//! with live PAGE / NUMPAGES fields.

use super::{Layout, RenderContext, short_timestamp};
use crate::export::{
    error::ExportError,
    model::{Block, Segment, Source, Transcript, blocks},
    templates::source_context,
};
use docx_rs::{
    Docx, Footer, Header, NumPages, PageNum, Paragraph, Run, Style, StyleType, Table, TableCell, TableLayoutType, TableRow, WidthType,
};
use minijinja::context;

/// Placeholders the template sees for `page` and `pages`; replaced by Word fields.
const PAGE_MARK: &str = "\u{E000}";
const PAGES_MARK: &str = "\u{E001}";

/// The styles every export defines (id, display name, half-points, bold).
const STYLES: &[(&str, &str, usize)] = &[
    ("Title", "Title", 48),
    ("Heading1", "Heading 1", 32),
    ("Heading2", "Heading 2", 28),
    ("Heading3", "Heading 3", 26),
    ("Heading4", "Heading 4", 24),
    ("Heading5", "Heading 5", 22),
    ("Heading6", "Heading 6", 22),
];

fn styled(docx: Docx) -> Docx {
    STYLES.iter().enumerate().fold(docx, |d, (i, (id, name, size))| {
        let mut s = Style::new(*id, StyleType::Paragraph).name(*name).based_on("Normal").next("Normal").size(*size).bold().q_format(true);
        if i > 0 {
            s = s.outline_lvl(i - 1);
        }
        d.add_style(s)
    })
}

/// A run with `text`, line breaks inside the text kept as breaks.
fn text_run(text: &str) -> Run {
    let mut run = Run::new();
    for (i, line) in super::cue_lines(text).enumerate() {
        if i > 0 {
            run = run.add_break(docx_rs::BreakType::TextWrapping);
        }
        run = run.add_text(line);
    }
    run
}

fn speaker_of<'a>(s: &'a Segment, ctx: &RenderContext<'_>) -> Option<&'a str> {
    s.speaker.as_deref().map(str::trim).filter(|x| ctx.options.speakers && !x.is_empty())
}

/// A body paragraph. The style is explicit because docx-rs does not mark `Normal` as the
/// default paragraph style, and readers (python-docx) then see no style at all.
fn normal() -> Paragraph {
    Paragraph::new().style("Normal")
}

fn segment_paragraph(s: &Segment, ctx: &RenderContext<'_>) -> Paragraph {
    let mut p = normal();
    if ctx.options.timestamps {
        p = p.add_run(Run::new().add_text(format!("[{}] ", short_timestamp(s.start))).color("666666"));
    }
    if let Some(sp) = speaker_of(s, ctx) {
        p = p.add_run(Run::new().add_text(format!("{sp}: ")).bold());
    }
    p.add_run(text_run(&s.text))
}

fn segment_table(t: &Transcript, ctx: &RenderContext<'_>) -> Table {
    let cell = |p: Paragraph| TableCell::new().add_paragraph(p);
    let head = |s: &str| cell(normal().add_run(Run::new().add_text(s).bold()));
    let mut rows = vec![TableRow::new(vec![head("Start"), head("End"), head("Speaker"), head("Text")])];
    for s in &t.segments {
        rows.push(TableRow::new(vec![
            cell(normal().add_run(Run::new().add_text(short_timestamp(s.start)))),
            cell(normal().add_run(Run::new().add_text(short_timestamp(s.end)))),
            cell(normal().add_run(Run::new().add_text(speaker_of(s, ctx).unwrap_or("")).bold())),
            cell(normal().add_run(text_run(&s.text))),
        ]));
    }
    Table::new(rows).layout(TableLayoutType::Autofit).width(5000, WidthType::Pct)
}

/// A paragraph from template text where the page markers become fields.
fn field_paragraph(text: &str) -> Paragraph {
    let mut p = normal();
    let mut rest = text;
    while let Some(pos) = rest.find([PAGE_MARK.chars().next().unwrap(), PAGES_MARK.chars().next().unwrap()]) {
        if pos > 0 {
            p = p.add_run(Run::new().add_text(&rest[..pos]));
        }
        let mark = &rest[pos..pos + PAGE_MARK.len()];
        p = if mark == PAGE_MARK { p.add_page_num(PageNum::new()) } else { p.add_num_pages(NumPages::new()) };
        rest = &rest[pos + PAGE_MARK.len()..];
    }
    if !rest.is_empty() {
        p = p.add_run(Run::new().add_text(rest));
    }
    p
}

/// Renders the source as DOCX.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let mut docx = styled(Docx::new());
    let v = context! { page => PAGE_MARK, pages => PAGES_MARK, ..source_context(source, ctx.options) };
    if let Some(h) = ctx.templates.render_block("docx", ctx.template, "header", &v)?.filter(|s| !s.is_empty()) {
        docx = docx.header(Header::new().add_paragraph(field_paragraph(&h)));
    }
    if let Some(f) = ctx.templates.render_block("docx", ctx.template, "footer", &v)?.filter(|s| !s.is_empty()) {
        docx = docx.footer(Footer::new().add_paragraph(field_paragraph(&f)));
    }
    if !source.title().trim().is_empty() {
        docx = docx.add_paragraph(Paragraph::new().style("Title").add_run(Run::new().add_text(source.title().trim())));
    }
    match source {
        Source::Transcript(t) if ctx.options.layout == Layout::Table => docx = docx.add_table(segment_table(t, ctx)),
        Source::Transcript(t) => {
            for s in &t.segments {
                docx = docx.add_paragraph(segment_paragraph(s, ctx));
            }
        }
        Source::Document(d) => {
            for b in blocks(&d.content) {
                docx = match b {
                    Block::Heading(level, text) => {
                        docx.add_paragraph(Paragraph::new().style(&format!("Heading{level}")).add_run(Run::new().add_text(text)))
                    }
                    Block::Paragraph(text) => docx.add_paragraph(normal().add_run(Run::new().add_text(text))),
                };
            }
        }
    }
    let mut out = std::io::Cursor::new(Vec::new());
    docx.build().pack(&mut out).map_err(|e| ExportError::Render(format!("docx packaging failed: {e}")))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use crate::export::formats::test_util::{render_bytes, sample};

    #[test]
    fn is_a_zip_with_the_text() {
        let out = render_bytes("docx", &sample());
        assert!(out.starts_with(b"PK"));
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(out)).unwrap();
        let mut xml = String::new();
        std::io::Read::read_to_string(&mut zip.by_name("word/document.xml").unwrap(), &mut xml).unwrap();
        assert!(xml.contains("Grüße aus München,"), "{xml}");
        assert!(xml.contains("Heading1") || xml.contains("Title"));
    }
}
