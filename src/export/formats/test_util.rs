//! Shared fixtures for formatter unit tests.

use super::{RenderContext, RenderOptions, builtin};
use crate::export::fonts::FontProvider;
use crate::export::model::{Document, Segment, Source, Transcript};
use crate::export::templates::Templates;

/// A small transcript with non-ASCII text, a multi-line segment, markup characters and
/// a segment past one hour.
pub fn sample() -> Source {
    let seg = |start: f64, end: f64, speaker: Option<&str>, text: &str| Segment {
        start,
        end,
        speaker: speaker.map(Into::into),
        text: text.into(),
    };
    Source::Transcript(Transcript {
        id: "t1".into(),
        title: "Grüße".into(),
        language: Some("de".into()),
        segments: vec![
            seg(0.0, 2.5, Some("Anna"), "Grüße aus München,\n\ncafé!"),
            seg(2.5, 4.0, Some("Ben"), "a <b> & c --> d"),
            seg(3661.001, 3662.0, None, "Eine Stunde später. 你好"),
        ],
        metadata: Default::default(),
    })
}

/// A document with headings and paragraphs.
pub fn sample_document() -> Source {
    Source::Document(Document {
        id: "d1".into(),
        title: "Bericht".into(),
        content: "# Überblick\n\nErster Absatz\nüber zwei Zeilen.\n\n## Details\n\nZweiter Absatz, café.".into(),
        metadata: Default::default(),
    })
}

/// Renders with default options and built-in templates.
pub fn render_bytes(format: &str, source: &Source) -> Vec<u8> {
    render_bytes_with_template(format, "default", source)
}

/// Renders with default options and the built-in template `template`.
pub fn render_bytes_with_template(format: &str, template: &str, source: &Source) -> Vec<u8> {
    let templates = Templates::new(None);
    let fonts = FontProvider::new(None, None);
    let options = RenderOptions::default();
    let ctx = RenderContext { options: &options, templates: &templates, template, fonts: &fonts, pretty_json: true };
    (builtin(format).unwrap().render)(source, &ctx).unwrap()
}

/// Renders a text format with the built-in template `template` to a string.
pub fn render_with_template(format: &str, template: &str, source: &Source) -> String {
    String::from_utf8(render_bytes_with_template(format, template, source)).unwrap()
}

/// Renders a text format to a string.
pub fn render(format: &str, source: &Source) -> String {
    String::from_utf8(render_bytes(format, source)).unwrap()
}
