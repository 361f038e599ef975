//! HTTP routes of the progress module: the seed's REST contract (create, update, get,
//! complete, fail) plus list, advance, cancel and delete; live updates over the
//! `/ws/progress` WebSocket and over SSE at `/api/progress/{id}/events`.
//!
//! Authorisation: API keys (and auth off) may do everything their scope allows; a user
//! token may read a progress by id and subscribe to specific ids (not `*`).

use super::limits::StreamPermit;
use super::stream;
use super::{
    AppState,
    auth::Principal,
    error::{ApiResult, Json, Query, body_error, parse_json, parse_optional_object},
};
use crate::error::{ApiError, ErrorCode};
use crate::progress::{ListQuery, NewProgress, Progress, ProgressStatus, ProgressUpdate, live::Feed, machine};
use axum::{
    Extension,
    body::Bytes,
    extract::{
        Path, State,
        rejection::BytesRejection,
        ws::{Message, Utf8Bytes, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, StatusCode, header},
    response::{Response, sse::Event as SseEvent},
};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
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

/// States in the OpenAPI document the rules `progress::machine` enforces on requests.
pub(super) fn refine(doc: &mut serde_json::Value) {
    use crate::progress::machine::{MAX_ID_LEN, MAX_STAGE_NAME, MAX_STAGES};
    use serde_json::json;
    let r = super::openapi::refine;
    let id = json!({"pattern": format!("^[A-Za-z0-9_.:@-]{{1,{MAX_ID_LEN}}}$")});
    let stage = json!({"minLength": 1, "maxLength": MAX_STAGE_NAME, "pattern": "\\S"});
    r(doc, "/components/schemas/NewProgress/properties/id", id);
    r(doc, "/components/schemas/NewProgress/properties/stages", json!({"maxItems": MAX_STAGES}));
    r(doc, "/components/schemas/StageInput/oneOf/0", stage.clone());
    r(doc, "/components/schemas/StageInput/oneOf/1/properties/name", stage.clone());
    r(doc, "/components/schemas/StageInput/oneOf/1/properties/weight", json!({"exclusiveMinimum": 0, "maximum": 1e9}));
    r(doc, "/components/schemas/ProgressUpdate/properties/progress", json!({"minimum": 0, "maximum": 100}));
    r(doc, "/components/schemas/ProgressUpdate/properties/stage", stage);
    super::openapi::refine_param(
        doc,
        "/api/progress",
        "get",
        "cursor",
        json!({"pattern": format!("^[A-Za-z0-9_.:@-]{{0,{MAX_ID_LEN}}}$")}),
    );
    super::openapi::refine_param(
        doc,
        "/api/progress",
        "get",
        "status",
        json!({"enum": ["", "pending", "processing", "completed", "failed", "cancelled"]}),
    );
}

/// Parses an optional JSON body: an empty body (or `null`) is `T::default()`.
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
    parse_optional_object(&body)
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
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page (the last id listed).
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
            machine::validate_id(c).map_err(|_| ApiError::invalid_query("cursor", "not a cursor returned by this endpoint"))?;
            Some(c.to_string())
        }
    };
    let mut items = s.progress.list(ListQuery { status, after, limit: limit + 1 }).await?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|p| p.id.clone())
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
    #[schema(value_type = Value)]
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
    /// What went wrong (1–10,000 bytes, not blank).
    #[schema(min_length = 1, max_length = 10000, pattern = "\\S")]
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
    Ok(stream::sse(feed, s.background().shutdown.clone(), permit, |mut feed: Feed| async move {
        let msg = feed.next().await?;
        let ev = SseEvent::default().event(msg.topic.as_str()).id(msg.version.to_string()).data(msg.data().to_string());
        let next = if msg.is_terminal() { None } else { Some(feed) };
        Some((ev, next))
    }))
}

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
    let source = Socket { feed: new_feed(&s), principal: p, alias: None };
    stream::websocket(upgrade, s.background().shutdown.clone(), permit, source)
}

fn error_frame(code: &str, message: impl Into<String>) -> Message {
    stream::frame("error", &serde_json::json!({"code": code, "message": message.into()}))
}

/// One `/ws/progress` connection: its feed, and who may change its subscriptions.
struct Socket {
    feed: Feed,
    principal: Principal,
    /// The `progress.update` form of the frame just sent, to send next.
    alias: Option<Message>,
}

impl stream::Source for Socket {
    async fn next(&mut self) -> Option<Message> {
        // A stage or terminal event is followed by its `progress.update` form (seed clients
        // listen for that one only), sent before the next event is taken.
        if let Some(alias) = self.alias.take() {
            return Some(alias);
        }
        loop {
            let m = self.feed.next().await?;
            if let Ok(text) = Utf8Bytes::try_from(m.ws_frame()) {
                self.alias = m.ws_update_alias().and_then(|a| Utf8Bytes::try_from(a).ok()).map(Message::Text);
                return Some(Message::Text(text));
            }
        }
    }

    fn command(&mut self, text: &str) -> Option<Message> {
        Some(command(&mut self.feed, &self.principal, text))
    }

    fn binary(&mut self) -> Option<Message> {
        Some(error_frame(ErrorCode::BadRequest.as_str(), "send commands as JSON text frames"))
    }
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
    stream::frame(&format!("{}d", cmd.action), &serde_json::json!({"progress_id": id}))
}
