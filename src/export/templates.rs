//! minijinja templates for txt and md output, for the header/footer blocks of docx
//! and pdf, and for the text of each srt/vtt cue (any name but `default`, which is the
//! built-in cue layout). Files in `export.template_dir` override the built-in defaults compiled from
//! `templates/exports/`.

use super::error::ExportError;
use super::formats::common::{RenderOptions, cue_lines, short_timestamp};
use super::model::{Block, Segment, Source, blocks};
use minijinja::{Environment, Value, context};
use std::path::PathBuf;

/// Built-in templates, compiled in so hearth works without the templates directory.
const BUILTIN: &[(&str, &str)] = &[
    ("txt/default.j2", include_str!("../../templates/exports/txt/default.j2")),
    ("md/default.j2", include_str!("../../templates/exports/md/default.j2")),
    ("docx/default.j2", include_str!("../../templates/exports/docx/default.j2")),
    ("pdf/default.j2", include_str!("../../templates/exports/pdf/default.j2")),
    ("srt/custom.j2", CUE_CUSTOM),
    ("vtt/custom.j2", CUE_CUSTOM),
];

/// The built-in `custom` cue template of srt and vtt (the seed's export example asks for
/// `"format": "srt", "template": "custom"`): the speaker in brackets before the text.
const CUE_CUSTOM: &str = include_str!("../../templates/exports/srt/custom.j2");

/// The template environment. Cheap to share (`Arc` it); templates are loaded lazily and cached.
pub struct Templates {
    env: Environment<'static>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Templates")
    }
}

/// Whether a request-supplied template name is acceptable (no path tricks).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= 64 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Templates {
    /// Templates from `dir` (when given and present), falling back to the built-ins.
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self::with_format_dirs(dir, std::collections::BTreeMap::new())
    }

    /// As [`Templates::new`], with per-format directories (`export.formats.<f>.template_dir`)
    /// searched first: `<format dir>/<name>.j2`.
    pub fn with_format_dirs(dir: Option<PathBuf>, format_dirs: std::collections::BTreeMap<String, PathBuf>) -> Self {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::None);
        env.add_filter("md", md_escape);
        env.set_loader(move |name: &str| {
            let per_format = name.split_once('/').and_then(|(f, rest)| format_dirs.get(f).map(|d| d.join(rest)));
            for path in per_format.into_iter().chain(dir.as_ref().map(|d| d.join(name))) {
                match std::fs::read_to_string(&path) {
                    Ok(s) => return Ok(Some(s)),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(minijinja::Error::new(
                            minijinja::ErrorKind::InvalidOperation,
                            format!("cannot read template {name}: {e}"),
                        ));
                    }
                }
            }
            Ok(BUILTIN.iter().find(|(n, _)| *n == name).map(|(_, s)| s.to_string()))
        });
        Templates { env }
    }

    fn path(format: &str, name: &str) -> String {
        format!("{format}/{name}.j2")
    }

    /// Whether template `name` exists for `format`.
    pub fn exists(&self, format: &str, name: &str) -> bool {
        valid_name(name) && self.env.get_template(&Self::path(format, name)).is_ok()
    }

    /// Renders the whole template `format/name.j2`.
    pub fn render(&self, format: &str, name: &str, ctx: &Value) -> Result<String, ExportError> {
        let t = self.env.get_template(&Self::path(format, name)).map_err(|e| ExportError::invalid("template", e.to_string()))?;
        t.render(ctx).map_err(|e| ExportError::Render(format!("template {format}/{name}: {e}")))
    }

    /// Renders one block (`header`, `footer`) of `format/name.j2`; `None` when the template
    /// does not define it.
    pub fn render_block(&self, format: &str, name: &str, block: &str, ctx: &Value) -> Result<Option<String>, ExportError> {
        let t = self.env.get_template(&Self::path(format, name)).map_err(|e| ExportError::invalid("template", e.to_string()))?;
        let render_err = |e: minijinja::Error| ExportError::Render(format!("template {format}/{name}: {e}"));
        let mut captured = t.render_captured(ctx).map_err(render_err)?;
        match captured.with_state_mut(|state| state.render_block(block)) {
            Ok(s) => Ok(Some(s.trim().to_string())),
            Err(e) if e.kind() == minijinja::ErrorKind::UnknownBlock => Ok(None),
            Err(e) => Err(render_err(e)),
        }
    }
}

/// Escapes text for markdown so it renders literally: inline markup characters get a
/// backslash, and so does a line start that would begin a heading, list or quote.
pub fn md_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        let indent = &line[..line.len() - trimmed.len()];
        out.push_str(indent);
        let digits = trimmed.bytes().take_while(u8::is_ascii_digit).count();
        if trimmed.starts_with(['#', '-', '+', '>', '=']) || (digits > 0 && trimmed[digits..].starts_with(['.', ')'])) {
            out.push_str(&trimmed[..digits]);
            out.push('\\');
            out.push_str(&trimmed[digits..digits + 1]);
            escape_inline(&mut out, &trimmed[digits + 1..]);
        } else {
            escape_inline(&mut out, trimmed);
        }
    }
    out
}

fn escape_inline(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|') {
            out.push('\\');
        }
        out.push(c);
    }
}

/// The template context of one subtitle cue (`srt/<name>.j2`, `vtt/<name>.j2`).
pub fn cue_context(seg: &Segment, index: usize, options: &RenderOptions) -> Value {
    context! {
        index => index, start => seg.start, end => seg.end,
        start_ts => short_timestamp(seg.start), end_ts => short_timestamp(seg.end),
        speaker => seg.speaker.as_deref().map(str::trim).filter(|x| !x.is_empty()),
        text => cue_lines(&seg.text).collect::<Vec<_>>().join("\n"),
        speakers => options.speakers, timestamps => options.timestamps,
    }
}

/// The template context of a source: see `templates/exports/README.md` for the variables.
pub fn source_context(source: &Source, options: &RenderOptions) -> Value {
    let common = context! {
        timestamps => options.timestamps,
        speakers => options.speakers,
    };
    let specific = match source {
        Source::Transcript(t) => {
            let segments: Vec<Value> = t
                .segments
                .iter()
                .map(|s| {
                    context! {
                        start => s.start, end => s.end,
                        start_ts => short_timestamp(s.start), end_ts => short_timestamp(s.end),
                        speaker => s.speaker.as_deref().map(str::trim).filter(|x| !x.is_empty()),
                        text => cue_lines(&s.text).collect::<Vec<_>>().join("\n"),
                    }
                })
                .collect();
            context! {
                kind => "transcript", id => &t.id, title => &t.title, language => &t.language,
                metadata => Value::from_serialize(&t.metadata), segments => segments,
            }
        }
        Source::Document(d) => {
            let blocks: Vec<Value> = blocks(&d.content)
                .into_iter()
                .map(|b| match b {
                    Block::Heading(level, text) => {
                        context! { kind => "heading", level => level, hashes => "#".repeat(level as usize + 1), text => text }
                    }
                    Block::Paragraph(text) => context! { kind => "paragraph", text => text },
                })
                .collect();
            context! {
                kind => "document", id => &d.id, title => &d.title, language => Value::from(()),
                metadata => Value::from_serialize(&d.metadata), content => &d.content, blocks => blocks,
            }
        }
    };
    context! { ..specific, ..common }
}

#[cfg(test)]
mod tests {
    use super::md_escape;

    #[test]
    fn markdown_escaping_keeps_text_literal() {
        assert_eq!(md_escape("a *b* <c> [d]"), "a \\*b\\* \\<c\\> \\[d\\]");
        assert_eq!(md_escape("# not a heading\n- no list\n12. no item"), "\\# not a heading\n\\- no list\n12\\. no item");
        assert_eq!(md_escape("Grüße aus München, café"), "Grüße aus München, café");
    }
}
