//! `hearth export`: renders a transcript or document file in any format without a server.
//!
//! ```text
//! hearth export --format srt --input transcript.json --output out.srt
//! ```
//! The input is the JSON of a transcript (`{title, segments: [...]}`) or a document
//! (`{title, content}`); `--source-type` picks one explicitly, otherwise a `segments` key
//! means transcript. Configuration (templates, PDF font) comes from `--config` or
//! `./hearth.yaml` as for `hearth serve`.

use crate::config::{CliOverrides, Config};
use crate::export::formats::RenderOptions;
use crate::export::model::Source;
use crate::export::render::Renderer;
use crate::export::sources::{document_from_json, transcript_from_json};
use crate::export::storage;
use std::path::PathBuf;

/// Arguments of `hearth export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Output format: txt, json, srt, vtt, md, docx or pdf.
    #[arg(long)]
    pub format: String,
    /// Input JSON file (`-` for stdin).
    #[arg(long)]
    pub input: PathBuf,
    /// Output file (`-` for stdout). Written atomically (temp file + rename).
    #[arg(long)]
    pub output: PathBuf,
    /// `transcript` or `document` (default: detected from the input).
    #[arg(long)]
    pub source_type: Option<String>,
    /// Template name (txt, md, docx, pdf).
    #[arg(long, default_value = "default")]
    pub template: String,
    /// Rendering options as JSON, e.g. '{"timestamps": false, "layout": "table"}'.
    #[arg(long)]
    pub options: Option<String>,
    /// Configuration file (default: ./hearth.yaml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Reads the source from `args.input`.
fn read_source(args: &ExportArgs) -> Result<Source, String> {
    let text = if args.input.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).map_err(|e| format!("stdin: {e}"))?
    } else {
        std::fs::read_to_string(&args.input).map_err(|e| format!("{}: {e}", args.input.display()))?
    };
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", args.input.display()))?;
    let kind =
        args.source_type.clone().unwrap_or_else(|| if value.get("segments").is_some() { "transcript".into() } else { "document".into() });
    match kind.as_str() {
        "transcript" => transcript_from_json(value).map(Source::Transcript),
        "document" => document_from_json(value).map(Source::Document),
        other => return Err(format!("--source-type: unknown source type '{other}' (transcript or document)")),
    }
    .map_err(|e| format!("{}: {e}", args.input.display()))
}

/// Runs the command.
pub fn run(args: ExportArgs) -> Result<(), String> {
    let mut config =
        Config::load(&CliOverrides { config_file: args.config.clone(), data_dir: None, bind: None }).map_err(|e| e.to_string())?;
    super::models::apply_bundle(&mut config)?;
    let renderer = Renderer::new(&config.export);
    let spec = renderer.format(&args.format).map_err(|e| e.to_string())?;
    renderer.check_template(spec.name, &args.template).map_err(|e| e.to_string())?;
    let options: RenderOptions = match &args.options {
        Some(o) => serde_json::from_str(o).map_err(|e| format!("--options: {e}"))?,
        None => RenderOptions::default(),
    };
    let source = read_source(&args)?;
    let bytes = renderer.render(&source, spec.name, &args.template, &options).map_err(|e| e.to_string())?;
    if args.output.as_os_str() == "-" {
        use std::io::Write;
        return std::io::stdout().write_all(&bytes).map_err(|e| e.to_string());
    }
    let dir = args.output.parent().filter(|p| !p.as_os_str().is_empty()).map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
    storage::write_file_atomic(&dir, &args.output, &bytes).map_err(|e| format!("{}: {e}", args.output.display()))
}
