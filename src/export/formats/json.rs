//! JSON: the source as stored (`{id, title, language, segments, metadata}` or
//! `{id, title, content, metadata}`), pretty-printed unless configured or asked otherwise.

use super::RenderContext;
use crate::export::{error::ExportError, model::Source};

/// Renders the source as JSON.
pub fn render(source: &Source, ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    let pretty = ctx.options.pretty.unwrap_or(ctx.pretty_json);
    let res = match (source, pretty) {
        (Source::Transcript(t), true) => serde_json::to_vec_pretty(t),
        (Source::Transcript(t), false) => serde_json::to_vec(t),
        (Source::Document(d), true) => serde_json::to_vec_pretty(d),
        (Source::Document(d), false) => serde_json::to_vec(d),
    };
    res.map_err(|e| ExportError::Render(e.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::export::formats::test_util::{render, sample};
    use crate::export::model::Transcript;

    #[test]
    fn round_trips_through_the_model() {
        let out = render("json", &sample());
        let back: Transcript = serde_json::from_str(&out).unwrap();
        assert_eq!(crate::export::model::Source::Transcript(back), sample());
        assert!(out.contains("\n  \"title\""), "pretty by default");
    }
}
