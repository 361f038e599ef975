//! What every live stream shares, so that each module only says what it sends:
//!
//! - [`pump`] serves a WebSocket from a [`Source`]: it sends the source's frames (those
//!   ready together with one flush), hands
//!   the client's text frames to the source, pings every [`PING_EVERY`], drops a client
//!   that does not take a frame within [`SEND_TIMEOUT`], and closes with 1001 at shutdown.
//! - [`sse`] serves server-sent events from a step function, with keep-alive comments,
//!   ending at shutdown; the stream holds the caller's [`StreamPermit`] while it lives.
//!
//! Used by `/ws/progress`, `/ws/notifications`, `/ws/jobs` and the `/events` routes.

use super::limits::StreamPermit;
use crate::error::{ApiError, ErrorCode};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::response::{
    IntoResponse, Response,
    sse::{Event as SseEvent, KeepAlive, Sse},
};
use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Keep-alive ping interval of WebSockets.
pub const PING_EVERY: Duration = Duration::from_secs(30);
/// A WebSocket client that does not take a frame within this time is disconnected.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Keep-alive comment interval of SSE streams.
pub const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What one WebSocket connection sends, and how it answers the client.
pub trait Source: Send {
    /// The next frame to send; `None` closes the connection. Must be cancel-safe (it
    /// races the client's frames and pings).
    fn next(&mut self) -> impl Future<Output = Option<Message>> + Send;

    /// The answer to a text frame from the client, if any (default: ignored).
    fn command(&mut self, _text: &str) -> Option<Message> {
        None
    }

    /// The answer to a binary frame from the client, if any (default: ignored).
    fn binary(&mut self) -> Option<Message> {
        None
    }
}

/// Answers a WebSocket upgrade by serving `source` (see [`pump`]) and holding `permit`
/// while the socket lives; a request that is no upgrade is a 400.
pub fn websocket(
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
    shutdown: CancellationToken,
    permit: StreamPermit,
    source: impl Source + 'static,
) -> Result<Response, ApiError> {
    Ok(upgraded(upgrade)?.on_upgrade(move |socket| async move {
        pump(socket, shutdown, source).await;
        drop(permit);
    }))
}

/// The upgrade of a WebSocket route, or 400 for a request that is no upgrade.
pub fn upgraded(upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>) -> Result<WebSocketUpgrade, ApiError> {
    upgrade.map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("expected a WebSocket upgrade: {e}")))
}

/// Serves `socket` from `source` until either side closes or `shutdown` fires.
pub async fn pump(mut socket: WebSocket, shutdown: CancellationToken, mut source: impl Source) {
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let out = tokio::select! {
            _ = shutdown.cancelled() => {
                let close = Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }));
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(close)).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => match source.command(t.as_str()) {
                    Some(m) => m,
                    None => continue,
                },
                Some(Ok(Message::Binary(_))) => match source.binary() {
                    Some(m) => m,
                    None => continue,
                },
                Some(Ok(_)) => continue,
            },
            msg = source.next() => match msg {
                Some(m) => m,
                None => return,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        tokio::select! {
            _ = shutdown.cancelled() => return,
            sent = tokio::time::timeout(SEND_TIMEOUT, send_burst(&mut socket, &mut source, out)) => {
                if !matches!(sent, Ok(Ok(()))) {
                    return;
                }
            }
        }
    }
}

/// Most frames written before one flush.
const BURST: usize = 64;

/// Sends `first` and the frames the source has ready right now (up to [`BURST`]) with one
/// flush, so that a busy stream costs one write per burst instead of one per frame.
async fn send_burst(socket: &mut WebSocket, source: &mut impl Source, first: Message) -> Result<(), axum::Error> {
    use futures::{FutureExt, SinkExt};
    socket.feed(first).await?;
    for _ in 1..BURST {
        // `next` is cancel-safe: a frame not ready now stays in the source.
        match source.next().now_or_never() {
            Some(Some(m)) => socket.feed(m).await?,
            _ => break,
        }
    }
    socket.flush().await
}

/// A server-sent-event response: `step` turns its state into the next event and the state
/// after it (`None`: the stream ends after this event); `None` from `step` ends it at once.
/// The stream also ends at `shutdown`, and holds `permit` until it ends.
pub fn sse<T, F, Fut>(init: T, shutdown: CancellationToken, permit: StreamPermit, step: F) -> Response
where
    T: Send + 'static,
    F: Fn(T) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Option<(SseEvent, Option<T>)>> + Send + 'static,
{
    let stream = futures::stream::unfold(Some((init, shutdown, permit, step)), |state| async move {
        let (t, shutdown, permit, step) = state?;
        let (event, next) = tokio::select! {
            _ = shutdown.cancelled() => None,
            r = step(t) => r,
        }?;
        Some((Ok::<_, Infallible>(event), next.map(|t| (t, shutdown, permit, step))))
    });
    Sse::new(stream).keep_alive(KeepAlive::new().interval(SSE_KEEP_ALIVE)).into_response()
}

/// A JSON text frame `{"event": event, "data": data}`, the shape of every WebSocket frame.
pub fn frame(event: &str, data: &serde_json::Value) -> Message {
    Message::Text(serde_json::json!({"event": event, "data": data}).to_string().into())
}
