//! The data exports are made from: transcripts (timed segments) and documents (text).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// One timed piece of a transcript. Times are seconds from the start, fractional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Segment {
    /// Start time in seconds, `>= 0`.
    pub start: f64,
    /// End time in seconds, `> start`.
    pub end: f64,
    /// Who speaks, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speaker: Option<String>,
    /// What is said; never empty.
    pub text: String,
}

/// A transcript: a title and segments sorted by start time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transcript {
    /// Identifier; assigned on save when empty.
    #[serde(default)]
    pub id: String,
    /// Title shown in headers of txt, md, docx and pdf output.
    #[serde(default)]
    pub title: String,
    /// BCP 47 language tag, e.g. `de` (used as the VTT/DOCX language hint).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The timed segments.
    pub segments: Vec<Segment>,
    /// Free-form caller data, carried into json output.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// A document: a title and plain text whose paragraphs are separated by blank lines;
/// lines starting with `#`..`######` are headings (markdown style).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Document {
    /// Identifier; assigned on save when empty.
    #[serde(default)]
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// The text.
    pub content: String,
    /// Free-form caller data, carried into json output.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Anything a formatter can render. Sources of other types are converted into one of
/// these by their [`crate::export::sources::ExportSource`] implementation.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// Timed segments.
    Transcript(Transcript),
    /// Plain text with headings.
    Document(Document),
}

impl Source {
    /// The title of the source.
    pub fn title(&self) -> &str {
        match self {
            Source::Transcript(t) => &t.title,
            Source::Document(d) => &d.title,
        }
    }

    /// The id of the source.
    pub fn id(&self) -> &str {
        match self {
            Source::Transcript(t) => &t.id,
            Source::Document(d) => &d.id,
        }
    }

    /// A rough count of work units (segments or paragraphs), for progress reporting.
    pub fn units(&self) -> usize {
        match self {
            Source::Transcript(t) => t.segments.len(),
            Source::Document(d) => d.content.lines().count(),
        }
    }
}

/// One block of a document's content, as parsed by [`blocks`].
#[derive(Debug, Clone, PartialEq)]
pub enum Block<'a> {
    /// A heading of level 1..=6.
    Heading(u8, &'a str),
    /// A paragraph; inner line breaks are joined with spaces.
    Paragraph(String),
}

/// Splits document content into headings and paragraphs (blank lines separate paragraphs).
pub fn blocks(content: &str) -> Vec<Block<'_>> {
    let mut out = Vec::new();
    let mut para: Vec<&str> = Vec::new();
    let flush = |para: &mut Vec<&str>, out: &mut Vec<Block<'_>>| {
        if !para.is_empty() {
            out.push(Block::Paragraph(para.join(" ")));
            para.clear();
        }
    };
    for line in content.lines() {
        let trimmed = line.trim();
        if trimmed.is_empty() {
            flush(&mut para, &mut out);
            continue;
        }
        let hashes = trimmed.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && trimmed[hashes..].starts_with(' ') {
            flush(&mut para, &mut out);
            out.push(Block::Heading(hashes as u8, trimmed[hashes..].trim()));
        } else {
            para.push(trimmed);
        }
    }
    flush(&mut para, &mut out);
    out
}

/// A validation failure of a source, naming the offending field (e.g. `segments[3].end`).
#[derive(Debug, Clone, PartialEq)]
pub struct Invalid {
    /// Dotted path of the field.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl Transcript {
    /// Checks `start >= 0`, `end > start`, finite times and non-empty text, then sorts
    /// segments by start (stable, so equal starts keep their order).
    pub fn validate_and_sort(&mut self) -> Result<(), Invalid> {
        for (i, s) in self.segments.iter().enumerate() {
            let bad = |f: &str, m: &str| Invalid { field: format!("segments[{i}].{f}"), message: m.to_string() };
            if !s.start.is_finite() || s.start < 0.0 {
                return Err(bad("start", "must be a finite number >= 0"));
            }
            if !s.end.is_finite() || s.end <= s.start {
                return Err(bad("end", "must be greater than start"));
            }
            if s.text.trim().is_empty() {
                return Err(bad("text", "must not be empty"));
            }
        }
        self.segments.sort_by(|a, b| a.start.total_cmp(&b.start));
        Ok(())
    }
}

impl Document {
    /// Checks that the content is not empty.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.content.trim().is_empty() {
            return Err(Invalid { field: "content".into(), message: "must not be empty".into() });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(start: f64, end: f64, text: &str) -> Segment {
        Segment { start, end, speaker: None, text: text.into() }
    }

    #[test]
    fn validation_names_the_segment_field_and_sorts() {
        let mut t = Transcript {
            id: String::new(),
            title: "t".into(),
            language: None,
            segments: vec![seg(2.0, 3.0, "b"), seg(0.0, 1.0, "a")],
            metadata: Map::new(),
        };
        t.validate_and_sort().unwrap();
        assert_eq!(t.segments[0].text, "a");
        t.segments.push(seg(5.0, 4.0, "x"));
        assert_eq!(t.validate_and_sort().unwrap_err().field, "segments[2].end");
        t.segments[2] = seg(-1.0, 4.0, "x");
        assert_eq!(t.validate_and_sort().unwrap_err().field, "segments[2].start");
        t.segments[2] = seg(1.0, 4.0, "  ");
        assert_eq!(t.validate_and_sort().unwrap_err().field, "segments[2].text");
    }

    #[test]
    fn blocks_split_headings_and_paragraphs() {
        let b = blocks("# Title\n\nline one\nline two\n\n## Sub\ntext\n#nohead");
        assert_eq!(
            b,
            vec![
                Block::Heading(1, "Title"),
                Block::Paragraph("line one line two".into()),
                Block::Heading(2, "Sub"),
                Block::Paragraph("text #nohead".into()),
            ]
        );
    }
}
