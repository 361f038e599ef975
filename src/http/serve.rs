//! The listener loop: each accepted connection is served by hyper-util's builder with the
//! limits of `server:` that `axum::serve` cannot set.
//!
//! - **Connections.** At most `server.max_connections` are open; the loop waits for a free
//!   slot before it accepts, so further clients queue in the kernel's listen backlog.
//! - **Header timeout.** A client has `server.header_timeout_seconds` to send a request's
//!   headers; hyper starts that timer whenever the connection is idle, so it also closes
//!   idle keep-alive connections and clients that send nothing or a byte at a time
//!   (slowloris).
//! - **Head sizes.** hyper's own hard limits (a 128 KiB read buffer, 100 header lines) sit
//!   above hearth's configured ones, which `limits.rs` enforces with the JSON error body;
//!   only bytes that are not HTTP at all get hyper's bare 400.
//! - **Shutdown.** When `shutdown` resolves (or the app's shutdown token fires), the loop
//!   stops accepting, open connections finish their in-flight requests (streams watch the
//!   app's token and close), then the app stops its background work.

use super::router;
use crate::App;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Semaphore;
use tower::ServiceExt;

/// hyper's hard cap on its read buffer, which must hold a whole request head; hearth's
/// configured head limits are lower.
const HYPER_MAX_BUF_BYTES: usize = 128 * 1024;

/// Serves `app` on `listener` until `shutdown` resolves, then drains in-flight requests,
/// stops background work and lets the writer flush. Tests call this on `127.0.0.1:0`.
pub async fn serve<F>(listener: tokio::net::TcpListener, app: Arc<App>, shutdown: F) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send + 'static,
{
    let _ = crate::telemetry::recorder();
    super::metrics::describe_once();
    let router = router(app.clone());
    let token = app.background().shutdown.clone();
    let stop = {
        let token = token.clone();
        async move {
            tokio::select! {
                _ = shutdown => {},
                _ = token.cancelled() => {},
            }
            // Long-lived streams (WebSocket, SSE) watch this token and close.
            token.cancel();
        }
    };
    tokio::pin!(stop);
    let cfg = &app.config.server;
    let slots = Arc::new(Semaphore::new(cfg.max_connections));
    let mut builder = Builder::new(TokioExecutor::new());
    // (Not `max_headers`: setting it moves hyper's header array to the heap for every
    // request; its default of 100 lines stays.)
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_secs(cfg.header_timeout_seconds))
        .max_buf_size(HYPER_MAX_BUF_BYTES);
    builder.http2().timer(TokioTimer::new()).max_concurrent_streams(256).max_header_list_size(HYPER_MAX_BUF_BYTES as u32);
    let builder = Arc::new(builder);
    let header_timeout = Duration::from_secs(cfg.header_timeout_seconds);
    let graceful = GracefulShutdown::new();
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s.expect("the semaphore is never closed"),
            _ = &mut stop => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut stop => break,
        };
        // Small answers (WebSocket acks, short JSON) go out at once instead of waiting for
        // Nagle's algorithm to gather more.
        let _ = stream.set_nodelay(true);
        let service = router.clone().map_request(move |mut req: axum::extract::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
            req
        });
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            // hyper reads the first bytes to tell HTTP/1 from HTTP/2 before its header
            // timer runs: a client that sends nothing is bounded here instead.
            // (`readable()` may wake spuriously; a peek waits for a real byte or EOF.)
            if !matches!(tokio::time::timeout(header_timeout, stream.peek(&mut [0u8; 1])).await, Ok(Ok(n)) if n > 0) {
                return drop(slot);
            }
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), TowerToHyperService::new(service));
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    let grace = Duration::from_secs(app.config.server.shutdown_grace_seconds);
    if tokio::time::timeout(grace, graceful.shutdown()).await.is_err() {
        tracing::warn!("connections still open after {grace:?}; closing them");
    }
    app.shutdown().await;
    Ok(())
}
