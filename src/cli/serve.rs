//! `hearth serve`: logging, the listener, the app, and a graceful stop on SIGINT/SIGTERM.

use crate::config::{Config, LogFormat, LoggingConfig};

/// Runs the server until SIGINT/SIGTERM.
pub(super) fn run(config: Config) -> Result<(), String> {
    init_logging(&config.logging);
    let addr = config.bind_addr().map_err(|e| e.to_string())?;
    crate::http::auth::check_bind(&config, addr)?;
    if config.auth.api_keys.is_empty() {
        tracing::warn!("no API keys configured: authentication is off and hearth serves {addr} (loopback) only");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(async move {
        let app = crate::App::build(config).await.map_err(|e| e.to_string())?;
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr}: {e}"))?;
        crate::resp::start(&app).await?;
        tracing::info!("hearth listening on http://{}", listener.local_addr().map_err(|e| e.to_string())?);
        crate::http::serve(listener, app, shutdown_signal()).await.map_err(|e| e.to_string())
    })
}

/// Installs the log subscriber: `RUST_LOG` when set, else the configured levels; JSON
/// lines with `logging.format: json`; ANSI colours only when standard output is a
/// terminal and `NO_COLOR` is unset (a file or a pipe gets plain text).
fn init_logging(cfg: &LoggingConfig) {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter =
        std::env::var("RUST_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| EnvFilter::new(cfg.directives()));
    let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let fmt = tracing_subscriber::fmt().with_env_filter(filter).with_target(true);
    match cfg.format {
        LogFormat::Json => fmt.json().with_current_span(true).with_span_list(false).init(),
        LogFormat::Text => fmt.with_ansi(colour).init(),
    }
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
