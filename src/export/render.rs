//! The rendering engine shared by the service, the CLI and the benchmarks: the format
//! table, templates and the PDF font, configured from [`ExportConfig`]. No store, no jobs.

use super::config::ExportConfig;
use super::error::ExportError;
use super::fonts::FontProvider;
use super::formats::{BUILTIN, FormatSpec, RenderContext, RenderOptions};
use super::model::Source;
use super::templates::{Templates, valid_name};
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Formats whose output comes from a template (`template` selects it).
const TEMPLATED: &[&str] = &["txt", "md", "docx", "pdf"];
/// Formats whose cue text a named template shapes; `default` is their built-in layout.
const CUE_TEMPLATED: &[&str] = &["srt", "vtt"];

/// Renders sources in any registered format. Cheap to clone.
#[derive(Clone)]
pub struct Renderer {
    formats: Arc<RwLock<BTreeMap<String, FormatSpec>>>,
    templates: Arc<Templates>,
    fonts: Arc<FontProvider>,
    config: Arc<ExportConfig>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("formats", &self.formats.read().keys().collect::<Vec<_>>()).finish()
    }
}

impl Renderer {
    /// A renderer with the built-in formats, templates from `config.template_dir` (and
    /// per-format `template_dir`s) and the PDF font found as `fonts.rs` describes.
    pub fn new(config: &ExportConfig) -> Self {
        let formats = BUILTIN.iter().map(|f| (f.name.to_string(), *f)).collect();
        let format_dirs =
            config.formats.iter().filter_map(|(name, fc)| fc.template_dir.as_ref().map(|d| (name.clone(), PathBuf::from(d)))).collect();
        let templates = Templates::with_format_dirs(Some(PathBuf::from(&config.template_dir)), format_dirs);
        let fonts = FontProvider::new(config.pdf_font.as_ref().map(PathBuf::from), Some(PathBuf::from(&config.font_dir)));
        Renderer {
            formats: Arc::new(RwLock::new(formats)),
            templates: Arc::new(templates),
            fonts: Arc::new(fonts),
            config: Arc::new(config.clone()),
        }
    }

    /// Adds (or replaces) a format.
    pub fn register_format(&self, spec: FormatSpec) {
        self.formats.write().insert(spec.name.to_string(), spec);
    }

    /// Names of the enabled formats.
    pub fn format_names(&self) -> Vec<String> {
        self.formats.read().keys().filter(|n| self.config.formats.get(*n).is_none_or(|c| c.enabled)).cloned().collect()
    }

    /// The format `name`, if registered and enabled; otherwise a 400 naming `format`.
    pub fn format(&self, name: &str) -> Result<FormatSpec, ExportError> {
        let spec = self.formats.read().get(name).copied();
        match spec {
            None => Err(ExportError::invalid("format", format!("unknown format '{name}'; known: {}", self.format_names().join(", ")))),
            Some(_) if self.config.formats.get(name).is_some_and(|c| !c.enabled) => {
                Err(ExportError::invalid("format", format!("format '{name}' is disabled in the configuration")))
            }
            Some(s) => Ok(s),
        }
    }

    /// Checks that `template` can be used with `format`.
    pub fn check_template(&self, format: &str, template: &str) -> Result<(), ExportError> {
        if !valid_name(template) {
            return Err(ExportError::invalid("template", "must be 1-64 letters, digits, '-' or '_'"));
        }
        if CUE_TEMPLATED.contains(&format) && template == "default" {
            return Ok(());
        }
        if !TEMPLATED.contains(&format) && !CUE_TEMPLATED.contains(&format) {
            return if template == "default" {
                Ok(())
            } else {
                Err(ExportError::invalid("template", format!("format '{format}' does not use templates")))
            };
        }
        if !self.templates.exists(format, template) {
            return Err(ExportError::invalid("template", format!("no template '{template}' for format '{format}'")));
        }
        Ok(())
    }

    /// Renders `source` (CPU-bound: call from a blocking thread in async code).
    pub fn render(&self, source: &Source, format: &str, template: &str, options: &RenderOptions) -> Result<Vec<u8>, ExportError> {
        let spec = self.format(format)?;
        options.validate()?;
        let pretty_json = self.config.formats.get("json").is_none_or(|c| c.pretty);
        let ctx = RenderContext { options, templates: &self.templates, template, fonts: &self.fonts, pretty_json };
        (spec.render)(source, &ctx)
    }

    /// The PDF font provider (for readiness reporting).
    pub fn fonts(&self) -> &FontProvider {
        &self.fonts
    }
}
