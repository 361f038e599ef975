//! HTTP routes of the progress module: the seed's REST contract (create, update, get,
//! complete, fail) plus list, advance, cancel and delete; live updates over the
//! `/ws/progress` WebSocket and over SSE at `/api/progress/{id}/events`.
//!
//! Authorisation: API keys (and auth off) may do everything their scope allows; a user
//! token may read a progress by id and subscribe to specific ids (not `*`).

use super::limits::StreamPermit;
use super::{
    AppState,
    auth::Principal,
    error::{ApiResult, Json, Query, body_error, parse_json},
};
use crate::error::{ApiError, ErrorCode};
use crate::progress::{ListQuery, NewProgress, Progress, ProgressStatus, ProgressUpdate, live::Feed, machine};
use axum::{
    Extension,
    body::Bytes,
    extract::{
        Path, State,
        rejection::BytesRejection,
        ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{
        IntoResponse, Response,
        sse::{Event as SseEvent, KeepAlive, Sse},
    },
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use std::convert::Infallible;
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of the progress module.
pub fn routes() -> OpenApiRouter<AppState> {
    // The metrics recorder is installed by now, so the HELP texts stick.
    crate::progress::metrics::describe();
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, update, delete_one))
        .routes(routes!(advance))
        .routes(routes!(complete))
        .routes(routes!(fail))
        .routes(routes!(cancel))
        .routes(routes!(events))
        .routes(routes!(ws))
}

/// Parses an optional JSON body: an empty body is `T::default()`.
fn optional_json<T: DeserializeOwned + Default>(headers: &HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult<T> {
    let body = body.map_err(body_error)?;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if mime != "application/json" && !mime.ends_with("+json") {
        return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "expected Content-Type: application/json"));
    }
    parse_json(&body)
}

/// Creates a progress. Stored durably before the answer; an `id` already in use is 409.
#[utoipa::path(post, path = "/api/progress", tag = "progress", request_body = NewProgress,
    responses((status = 201, body = Progress), (status = 400, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody), (status = 415, body = crate::error::ErrorBody)))]
async fn create(State(s): State<AppState>, Json(req): Json<NewProgress>) -> ApiResult<(StatusCode, axum::Json<Progress>)> {
    Ok((StatusCode::CREATED, axum::Json(s.progress.create(req).await?)))
}

/// Query of the list endpoint.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only progress in this state: `pending`, `processing`, `completed`, `failed`, `cancelled`.
    pub status: Option<String>,
    /// Page size, 1–1000 (default 50).
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// A page of progress records, ordered by id.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgressPage {
    /// The records.
    pub items: Vec<Progress>,
    /// Pass as `cursor` for the next page; null on the last page.
    pub next_cursor: Option<String>,
}

const MAX_PAGE: usize = 1000;

/// Lists progress records by id, optionally by status, in pages.
#[utoipa::path(get, path = "/api/progress", tag = "progress", params(ListParams),
    responses((status = 200, body = ProgressPage), (status = 400, body = crate::error::ErrorBody)))]
async fn list(State(s): State<AppState>, Query(q): Query<ListParams>) -> ApiResult<axum::Json<ProgressPage>> {
    let status = match q.status.as_deref() {
        None | Some("") => None,
        Some(v) => Some(
            ProgressStatus::parse(v)
                .ok_or_else(|| ApiError::invalid_query("status", "must be one of pending, processing, completed, failed, cancelled"))?,
        ),
    };
    let limit = q.limit.unwrap_or(50);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::invalid_query("limit", format!("must be between 1 and {MAX_PAGE}")));
    }
    let after = match q.cursor.as_deref() {
        None | Some("") => None,
        Some(c) => {
            let bad = || ApiError::invalid_query("cursor", "not a cursor returned by this endpoint");
            let id = String::from_utf8(URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?).map_err(|_| bad())?;
            machine::validate_id(&id).map_err(|_| bad())?;
            Some(id)
        }
    };
    let mut items = s.progress.list(ListQuery { status, after, limit: limit + 1 }).await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|p| URL_SAFE_NO_PAD.encode(p.id.as_bytes()))
    } else {
        None
    };
    Ok(axum::Json(ProgressPage { items, next_cursor }))
}

/// The current state of a progress (including percents not yet flushed to disk).
#[utoipa::path(get, path = "/api/progress/{id}", tag = "progress", params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, body = Progress), (status = 404, body = crate::error::ErrorBody)))]
async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Progress>> {
    Ok(axum::Json(s.progress.get(&id).await?))
}

/// Reports progress: `progress` (0–100) within `stage` (default: the current stage).
/// Naming a later stage moves there (skipped stages count as done); an earlier stage is
/// 409 unless `"allow_backwards": true`. Stage changes are durable before the answer;
/// plain percent updates are broadcast at once and stored coalesced (≤ 1 write per id
/// per `flush_interval_ms`). A finished progress answers 409.
#[utoipa::path(patch, path = "/api/progress/{id}", tag = "progress", request_body = ProgressUpdate,
    params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, body = Progress), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn update(State(s): State<AppState>, Path(id): Path<String>, Json(u): Json<ProgressUpdate>) -> ApiResult<axum::Json<Progress>> {
    Ok(axum::Json(s.progress.update_with(&id, u).await?))
}

/// Deletes a progress in any state.
#[utoipa::path(delete, path = "/api/progress/{id}", tag = "progress", params(("id" = String, Path, description = "Progress id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<StatusCode> {
    s.progress.delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Moves to the next stage at 0 % (durable). 409 at the last stage or when finished.
#[utoipa::path(post, path = "/api/progress/{id}/advance", tag = "progress", params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, body = Progress), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn advance(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Progress>> {
    Ok(axum::Json(s.progress.advance_stage(&id).await?))
}

/// Body of `complete`; may be omitted.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct CompleteRequest {
    /// Any JSON result kept with the progress.
    #[schema(value_type = Option<Object>)]
    pub result: Option<serde_json::Value>,
}

/// Completes a progress (durable before the answer). 409 when already finished.
#[utoipa::path(post, path = "/api/progress/{id}/complete", tag = "progress", request_body(content = Option<CompleteRequest>),
    params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, body = Progress), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn complete(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<axum::Json<Progress>> {
    let req: CompleteRequest = optional_json(&headers, body)?;
    Ok(axum::Json(s.progress.complete(&id, req.result).await?))
}

/// Body of `fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// What went wrong (1–10,000 characters).
    pub error: String,
}

/// Fails a progress (durable before the answer). 409 when already finished.
#[utoipa::path(post, path = "/api/progress/{id}/fail", tag = "progress", request_body = FailRequest,
    params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, body = Progress), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn fail(State(s): State<AppState>, Path(id): Path<String>, Json(req): Json<FailRequest>) -> ApiResult<axum::Json<Progress>> {
    Ok(axum::Json(s.progress.fail(&id, &req.error).await?))
}

/// Cancels a progress (durable before the answer). 409 when already finished.
#[utoipa::path(post, path = "/api/progress/{id}/cancel", tag = "progress", params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, body = Progress), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn cancel(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<axum::Json<Progress>> {
    Ok(axum::Json(s.progress.cancel(&id).await?))
}

fn new_feed(s: &AppState) -> Feed {
    Feed::new(s.progress.clone(), s.config.progress.subscriber_buffer)
}

/// Server-sent events of one progress: first its current state, then every change, each
/// as `event: <topic>` with `data: <Progress JSON>` and `id: <version>`. The stream ends
/// after the terminal event (`progress.completed`, `.failed`, `.cancelled`) or at server
/// shutdown; intermediate percents may be skipped for a slow reader.
#[utoipa::path(get, path = "/api/progress/{id}/events", tag = "progress", params(("id" = String, Path, description = "Progress id")),
    responses((status = 200, description = "An event stream of Progress objects", content_type = "text/event-stream"),
        (status = 404, body = crate::error::ErrorBody)))]
async fn events(State(s): State<AppState>, permit: StreamPermit, Path(id): Path<String>) -> ApiResult<Response> {
    // Subscribe before reading the state so that no change in between is missed.
    let mut feed = new_feed(&s);
    s.progress.get(&id).await?;
    feed.subscribe(&id);
    let shutdown = s.background().shutdown.clone();
    // The stream holds the permit: the caller's slot is free again when the stream ends.
    let stream = futures::stream::unfold(Some((feed, shutdown, permit)), |state| async move {
        let (mut feed, shutdown, permit) = state?;
        let msg = tokio::select! {
            _ = shutdown.cancelled() => None,
            m = feed.next() => m,
        }?;
        let ev = SseEvent::default().event(msg.topic.as_str()).id(msg.version.to_string()).data(msg.data().to_string());
        let next = if msg.is_terminal() { None } else { Some((feed, shutdown, permit)) };
        Some((Ok::<_, Infallible>(ev), next))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))).into_response())
}

/// Keep-alive ping interval of the WebSocket.
const PING_EVERY: Duration = Duration::from_secs(30);
/// A client that does not take a frame within this time is disconnected.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);
/// Most ids one connection may subscribe to individually.
const MAX_SUBSCRIPTIONS: usize = 10_000;

/// A client command on `/ws/progress`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WsCommand {
    action: String,
    progress_id: String,
}

/// Live progress updates. Send `{"action": "subscribe", "progress_id": "<id>"}` (or
/// `"*"` for every progress; API keys only) and `{"action": "unsubscribe", ...}`. The
/// server answers `{"event": "subscribed" | "unsubscribed", "data": {"progress_id"}}`,
/// then sends `{"event": "progress.update" | "progress.stage" | "progress.completed" |
/// "progress.failed" | "progress.cancelled", "data": <Progress>}`, starting with the
/// current state of what was subscribed; every event other than an update is followed by
/// the same change as `{"event": "progress.update", "kind": "stage" | "completed" |
/// "failed" | "cancelled", "data"}`, for clients that listen for `progress.update` alone. Bad commands get `{"event": "error", "data":
/// {"code", "message"}}`. A slow client may skip intermediate percents but always gets
/// the latest state and every terminal event.
#[utoipa::path(get, path = "/ws/progress", tag = "progress",
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
async fn ws(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    permit: StreamPermit,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !s.config.progress.websocket {
        return Err(ApiError::new(ErrorCode::ModuleDisabled, "the progress WebSocket is disabled (progress.websocket: false)"));
    }
    let upgrade = upgrade.map_err(|e| ApiError::new(ErrorCode::BadRequest, format!("expected a WebSocket upgrade: {e}")))?;
    let feed = new_feed(&s);
    Ok(upgrade.on_upgrade(move |socket| async move {
        run_socket(socket, s, p, feed).await;
        drop(permit);
    }))
}

fn frame(event: &str, data: serde_json::Value) -> Message {
    Message::Text(serde_json::json!({"event": event, "data": data}).to_string().into())
}

fn error_frame(code: &str, message: impl Into<String>) -> Message {
    frame("error", serde_json::json!({"code": code, "message": message.into()}))
}

/// Applies one client command to the feed and returns the reply frame.
fn command(feed: &mut Feed, p: &Principal, text: &str) -> Message {
    let cmd: WsCommand = match parse_json(text.as_bytes()) {
        Ok(c) => c,
        Err(e) => return error_frame(e.code.as_str(), e.message),
    };
    let id = cmd.progress_id.as_str();
    if id != "*"
        && let Err(e) = machine::validate_id(id)
    {
        return error_frame(ErrorCode::InvalidField.as_str(), format!("progress_id: {e}"));
    }
    match (cmd.action.as_str(), id) {
        ("subscribe", "*") if !p.is_service() => {
            return error_frame(ErrorCode::Forbidden.as_str(), "a user token may only subscribe to specific progress ids");
        }
        ("subscribe", "*") => feed.subscribe_all(),
        ("subscribe", _) if feed.subscription_count() >= MAX_SUBSCRIPTIONS => {
            return error_frame(ErrorCode::BadRequest.as_str(), format!("at most {MAX_SUBSCRIPTIONS} subscriptions per connection"));
        }
        ("subscribe", _) => feed.subscribe(id),
        ("unsubscribe", "*") => feed.unsubscribe_all(),
        ("unsubscribe", _) => feed.unsubscribe(id),
        (other, _) => {
            return error_frame(
                ErrorCode::InvalidField.as_str(),
                format!("action: unknown action '{other}'; use subscribe or unsubscribe"),
            );
        }
    }
    frame(&format!("{}d", cmd.action), serde_json::json!({"progress_id": id}))
}

async fn run_socket(mut socket: WebSocket, s: AppState, p: Principal, mut feed: Feed) {
    let shutdown = s.background().shutdown.clone();
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    loop {
        let mut alias = None;
        let out = tokio::select! {
            _ = shutdown.cancelled() => {
                let close = Message::Close(Some(CloseFrame { code: 1001, reason: "server shutting down".into() }));
                let _ = tokio::time::timeout(Duration::from_secs(1), socket.send(close)).await;
                return;
            }
            incoming = socket.recv() => match incoming {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                Some(Ok(Message::Text(t))) => command(&mut feed, &p, t.as_str()),
                Some(Ok(Message::Binary(_))) => error_frame(ErrorCode::BadRequest.as_str(), "send commands as JSON text frames"),
                Some(Ok(_)) => continue,
            },
            msg = feed.next() => match msg {
                Some(m) => match Utf8Bytes::try_from(m.ws_frame()) {
                    Ok(text) => {
                        alias = m.ws_update_alias().and_then(|a| Utf8Bytes::try_from(a).ok()).map(Message::Text);
                        Message::Text(text)
                    }
                    Err(_) => continue,
                },
                None => return,
            },
            _ = ping.tick() => Message::Ping(Default::default()),
        };
        for out in std::iter::once(out).chain(alias) {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                sent = tokio::time::timeout(SEND_TIMEOUT, socket.send(out)) => {
                    if !matches!(sent, Ok(Ok(()))) {
                        return;
                    }
                }
            }
        }
    }
}
