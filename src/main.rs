//! The `hearth` command line. Thin: everything lives in the library.

use clap::{Args, Parser, Subcommand};
use hearth::config::{CliOverrides, Config, LoggingConfig};
use std::path::PathBuf;
use std::process::ExitCode;

/// mimalloc instead of the system allocator: measured on the job-queue bench, glibc malloc
/// and free were a quarter of all CPU time (many small, short-lived allocations across
/// threads), which is mimalloc's strength. The library does not impose it on embedders.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "hearth", version, about = "Back-office services in one binary: progress, notifications, jobs, cache, export, search.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve(ConfigArgs),
    /// Validate the configuration and print it with secrets redacted.
    CheckConfig(ConfigArgs),
    /// Render a transcript or document JSON file to txt, json, srt, vtt, md, docx or pdf (no server needed).
    Export(hearth::export::cli::ExportArgs),
    /// Evaluate search quality (nDCG@10, recall@100) on a BEIR-format data set.
    Eval(hearth::search::eval::EvalArgs),
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

#[derive(Args)]
struct ConfigArgs {
    /// Configuration file (default: ./hearth.yaml when present).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (default ./data).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Listen address (default 127.0.0.1:8080).
    #[arg(long, value_name = "ADDR")]
    bind: Option<String>,
}

impl ConfigArgs {
    fn load(&self) -> Result<Config, String> {
        let cli = CliOverrides { config_file: self.config.clone(), data_dir: self.data_dir.clone(), bind: self.bind.clone() };
        Config::load(&cli).map_err(|e| e.to_string())
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => args.load().and_then(serve),
        Command::CheckConfig(args) => args.load().map(|c| print!("{}", c.redacted_yaml())),
        Command::Export(args) => hearth::export::cli::run(args),
        Command::Eval(args) => hearth::search::eval::run(args),
        Command::StoreProbe { data_dir, tag, writers, limit } => store_probe(&data_dir, &tag, writers, limit),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(cfg: &LoggingConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| {
        let mut directives = vec![cfg.level.clone(), "tantivy=warn".into(), "ort=warn".into(), "hnsw_rs=warn".into()];
        for (module, level) in &cfg.modules {
            let target = match module.as_str() {
                "job_queue" | "jobs" => "hearth::jobs",
                "notification" | "notify" => "hearth::notify",
                "progress" => "hearth::progress",
                "cache" => "hearth::cache",
                "export" => "hearth::export",
                "search" => "hearth::search",
                "http" => "hearth::http",
                "store" => "hearth::store",
                other => other,
            };
            directives.push(format!("{target}={level}"));
        }
        EnvFilter::new(directives.join(","))
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_target(true).init();
}

fn serve(config: Config) -> Result<(), String> {
    init_logging(&config.logging);
    let addr = config.bind_addr().map_err(|e| e.to_string())?;
    hearth::http::auth::check_bind(&config, addr)?;
    if config.auth.api_keys.is_empty() {
        tracing::warn!("no API keys configured: authentication is off and hearth serves {addr} (loopback) only");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let app = hearth::App::build(config).await.map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        tracing::info!("hearth listening on http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        hearth::http::serve(listener, app, shutdown_signal()).await.map_err(|e| e.to_string())
    })
}

fn store_probe(dir: &std::path::Path, tag: &str, writers: usize, limit: u64) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(hearth::store::probe::run(dir, tag, writers, limit)).map_err(|e| e.to_string())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: draining requests and workers");
}
