//! `hearth serve`: logging, the listener, the app, and a graceful stop on SIGINT/SIGTERM.

use crate::config::{Config, LoggingConfig};

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

fn init_logging(cfg: &LoggingConfig) {
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("RUST_LOG").ok().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| {
        let mut directives = vec![cfg.level.clone(), "tantivy=warn".into(), "ort=warn".into(), "hnsw_rs=warn".into()];
        for (module, level) in &cfg.modules {
            let target = match module.as_str() {
                "job_queue" | "jobs" => "crate::jobs",
                "notification" | "notify" => "crate::notify",
                "progress" => "crate::progress",
                "cache" => "crate::cache",
                "export" => "crate::export",
                "search" => "crate::search",
                "http" => "crate::http",
                "store" => "crate::store",
                other => other,
            };
            directives.push(format!("{target}={level}"));
        }
        EnvFilter::new(directives.join(","))
    });
    tracing_subscriber::fmt().with_env_filter(filter).with_target(true).init();
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
