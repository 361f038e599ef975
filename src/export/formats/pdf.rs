//! PDF through printpdf: title, wrapped paragraphs, header and footer from the
//! `pdf/<template>.j2` blocks (page numbers), pagination, and a subset Unicode font.
//!
//! printpdf positions text but does not wrap it; [`wrap`] breaks lines greedily on
//! whitespace using the font's advance widths (and inside a word only when the word alone
//! is wider than the line, which also handles CJK text without spaces).

use super::{PageSize, RenderContext, short_timestamp};
use crate::export::{
    error::ExportError,
    fonts::LoadedFont,
    model::{Block, Source, blocks},
    templates::source_context,
};
use minijinja::context;
use printpdf::{Op, PdfDocument, PdfFontHandle, PdfPage, PdfSaveOptions, Point, Pt, TextItem};
use std::collections::BTreeSet;

const MARGIN_X: f32 = 56.7;
const MARGIN_TOP: f32 = 62.0;
const MARGIN_BOTTOM: f32 = 62.0;
const HEADER_FOOTER_SIZE: f32 = 8.5;

/// One laid-out line of body text.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    /// The text.
    pub text: String,
    /// Font size in points.
    pub size: f32,
    /// Extra space above the line in points (paragraph spacing).
    pub gap_before: f32,
}

/// Greedy word wrap of `text` into lines no wider than `max` points at `size`.
pub fn wrap(font: &LoadedFont, text: &str, size: f32, max: f32) -> Vec<String> {
    let space = font.advance(' ') * size;
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut line_w = 0.0f32;
    for word in text.split_whitespace() {
        let w = font.width(word, size);
        if !line.is_empty() && line_w + space + w <= max {
            line.push(' ');
            line.push_str(word);
            line_w += space + w;
            continue;
        }
        if !line.is_empty() {
            lines.push(std::mem::take(&mut line));
        }
        if w <= max {
            line.push_str(word);
            line_w = w;
            continue;
        }
        // A word wider than the line: break it between characters.
        line_w = 0.0;
        for c in word.chars() {
            let cw = font.advance(c) * size;
            if !line.is_empty() && line_w + cw > max {
                lines.push(std::mem::take(&mut line));
                line_w = 0.0;
            }
            line.push(c);
            line_w += cw;
        }
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// Lays the body of `source` out as lines of at most `width` points.
pub fn layout(source: &Source, ctx: &RenderContext<'_>, font: &LoadedFont, width: f32) -> Vec<Line> {
    let body = ctx.options.font_size;
    let lh = font.line_height() * body;
    let mut out = Vec::new();
    let push = |text: &str, size: f32, gap: f32, out: &mut Vec<Line>| {
        for (i, l) in wrap(font, text, size, width).into_iter().enumerate() {
            out.push(Line { text: l, size, gap_before: if i == 0 { gap } else { 0.0 } });
        }
    };
    if !source.title().trim().is_empty() {
        push(source.title(), body * 1.8, 0.0, &mut out);
    }
    match source {
        Source::Transcript(t) => {
            let mut text = String::new();
            for s in &t.segments {
                text.clear();
                if ctx.options.timestamps {
                    text.push('[');
                    text.push_str(&short_timestamp(s.start));
                    text.push_str("] ");
                }
                if ctx.options.speakers
                    && let Some(sp) = s.speaker.as_deref().map(str::trim).filter(|x| !x.is_empty())
                {
                    text.push_str(sp);
                    text.push_str(": ");
                }
                text.push_str(&s.text);
                push(&text, body, lh * 0.35, &mut out);
            }
        }
        Source::Document(d) => {
            for b in blocks(&d.content) {
                match b {
                    Block::Heading(level, text) => push(text, body * (1.5 - 0.1 * f32::from(level - 1)).max(1.0), lh * 0.9, &mut out),
                    Block::Paragraph(text) => push(&text, body, lh * 0.5, &mut out),
                }
            }
        }
    }
    out
}

/// Splits lines into pages; returns, per page, the lines with their baseline y.
fn paginate<'l>(lines: &'l [Line], font: &LoadedFont, page_h: f32) -> Vec<Vec<(f32, &'l Line)>> {
    let mut pages = vec![Vec::new()];
    let top = page_h - MARGIN_TOP;
    let mut y = top;
    for line in lines {
        let lh = font.line_height() * line.size;
        let on_fresh_page = pages.last().is_some_and(|p| p.is_empty());
        let needed = if on_fresh_page { lh } else { lh + line.gap_before };
        if y - needed < MARGIN_BOTTOM && !on_fresh_page {
            pages.push(Vec::new());
            y = top;
        }
        y -= if pages.last().is_some_and(|p| p.is_empty()) { lh } else { lh + line.gap_before };
        pages.last_mut().expect("at least one page").push((y, line));
    }
    pages
}

/// Text-positioning ops for one page: one text object, relative `Td` moves.
struct PageOps {
    ops: Vec<Op>,
    cur: (f32, f32),
    size: f32,
    font: printpdf::FontId,
}

impl PageOps {
    fn new(font: printpdf::FontId) -> Self {
        PageOps { ops: vec![Op::StartTextSection], cur: (0.0, 0.0), size: 0.0, font }
    }

    fn text(&mut self, x: f32, y: f32, size: f32, text: &str) {
        if text.is_empty() {
            return;
        }
        if size != self.size {
            self.ops.push(Op::SetFont { font: PdfFontHandle::External(self.font.clone()), size: Pt(size) });
            self.size = size;
        }
        self.ops.push(Op::SetTextCursor { pos: Point { x: Pt(x - self.cur.0), y: Pt(y - self.cur.1) } });
        self.cur = (x, y);
        self.ops.push(Op::ShowText { items: vec![TextItem::Text(text.to_string())] });
    }

    fn finish(mut self) -> Vec<Op> {
        self.ops.push(Op::EndTextSection);
        self.ops
    }
}

/// Renders the source as PDF.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let font = ctx.fonts.get()?;
    let (page_w, page_h) = match ctx.options.page_size {
        PageSize::A4 => (595.276, 841.89),
        PageSize::Letter => (612.0, 792.0),
    };
    let width = page_w - 2.0 * MARGIN_X;
    let lines = layout(source, ctx, &font, width);
    let pages = paginate(&lines, &font, page_h);
    let n = pages.len();

    let base = source_context(source, ctx.options);
    let mut decorations = Vec::with_capacity(n);
    for i in 1..=n {
        let v = context! { page => i, pages => n, ..base.clone() };
        let header = ctx.templates.render_block("pdf", ctx.template, "header", &v)?.unwrap_or_default();
        let footer = ctx.templates.render_block("pdf", ctx.template, "footer", &v)?.unwrap_or_default();
        decorations.push((header.replace('\n', " "), footer.replace('\n', " ")));
    }

    let mut chars: BTreeSet<char> = lines.iter().flat_map(|l| l.text.chars()).collect();
    chars.extend(decorations.iter().flat_map(|(h, f)| h.chars().chain(f.chars())));
    let subset = font.subset(&chars)?;
    let mut doc = PdfDocument::new(source.title());
    let font_id = doc.add_font(&subset);

    let mut pdf_pages = Vec::with_capacity(n);
    for (page, (header, footer)) in pages.iter().zip(&decorations) {
        let mut ops = PageOps::new(font_id.clone());
        let header = wrap(&font, header, HEADER_FOOTER_SIZE, width).into_iter().next().unwrap_or_default();
        ops.text(MARGIN_X, page_h - 34.0, HEADER_FOOTER_SIZE, &header);
        for (y, line) in page {
            ops.text(MARGIN_X, *y, line.size, &line.text);
        }
        let footer = wrap(&font, footer, HEADER_FOOTER_SIZE, width).into_iter().next().unwrap_or_default();
        let fx = (page_w - font.width(&footer, HEADER_FOOTER_SIZE)) / 2.0;
        ops.text(fx, 30.0, HEADER_FOOTER_SIZE, &footer);
        pdf_pages.push(PdfPage::new(printpdf::Mm::from(Pt(page_w)), printpdf::Mm::from(Pt(page_h)), ops.finish()));
    }
    let opts = PdfSaveOptions { optimize: true, subset_fonts: false, secure: true, image_optimization: None };
    let mut warnings = Vec::new();
    let bytes = doc.with_pages(pdf_pages).save(&opts, &mut warnings);
    if bytes.is_empty() {
        return Err(ExportError::Render(format!("pdf serialisation failed: {warnings:?}")));
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::fonts::FontProvider;
    use crate::export::formats::test_util::{render_bytes, sample};

    #[test]
    fn wrap_respects_width_and_breaks_long_words() {
        let fonts = FontProvider::new(None, None);
        let f = fonts.get().unwrap();
        let text = "Grüße aus München, café ".repeat(20);
        let lines = wrap(&f, &text, 11.0, 200.0);
        assert!(lines.len() > 5);
        assert!(lines.iter().all(|l| f.width(l, 11.0) <= 200.0));
        assert_eq!(lines.join(" "), text.trim());
        let long = "x".repeat(200);
        let lines = wrap(&f, &long, 11.0, 100.0);
        assert!(lines.len() > 1 && lines.concat() == long);
    }

    #[test]
    fn small_pdf_with_subset_font() {
        let pdf = render_bytes("pdf", &sample());
        assert!(pdf.starts_with(b"%PDF-"));
        assert!(pdf.len() < 60_000, "pdf is {} bytes; the font was not subset", pdf.len());
    }
}
