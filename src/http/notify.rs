//! HTTP routes of the notification module: send (single and batch), the per-user feed,
//! read state, preferences, and the `/ws/notifications` WebSocket.
//!
//! Authorisation: sending needs a service principal (an API key, or auth off); a user
//! token may only read and change its own user's feed and open its own WebSocket.

use super::limits::StreamPermit;
use super::stream;
use super::{
    AppState,
    auth::Principal,
    error::{ApiResult, Json, Query},
};
use crate::error::{ApiError, ErrorCode};
use crate::events::{Event, RecvError, Subscription};
use crate::notify::{BatchSendRequest, ListQuery, Notification, Preferences, PreferencesInput, SendOutcome, SendRequest, metrics::WsGuard};
use axum::{
    Extension,
    extract::{
        Path, State,
        ws::{Message, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    http::{HeaderMap, HeaderValue},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Header carrying the cursor of the next feed page.
pub const NEXT_CURSOR: &str = "x-next-cursor";

/// Routes of the notify module.
pub fn routes() -> OpenApiRouter<AppState> {
    // The server installs its recorder before building routes; describe into it.
    crate::notify::metrics::describe();
    OpenApiRouter::new()
        .routes(routes!(send, list))
        .routes(routes!(send_batch))
        .routes(routes!(unread_count))
        .routes(routes!(read_all))
        .routes(routes!(get_one, delete_one))
        .routes(routes!(mark_read))
        .routes(routes!(get_preferences, put_preferences))
        .routes(routes!(ws))
}

fn require_service(p: &Principal) -> ApiResult<()> {
    if p.is_service() {
        Ok(())
    } else {
        Err(ApiError::new(ErrorCode::Forbidden, "sending notifications needs an API key, not a user token"))
    }
}

/// Sends a notification to one user. Stored durably before the answer; email and webhook
/// deliveries are queued as jobs (see `GET /api/notifications/{id}` for their state).
#[utoipa::path(post, path = "/api/notifications", tag = "notifications", request_body = SendRequest,
    responses((status = 200, body = SendOutcome), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
async fn send(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<SendRequest>,
) -> ApiResult<axum::Json<SendOutcome>> {
    require_service(&p)?;
    Ok(axum::Json(s.notify.send_detailed(req).await?))
}

/// Answer of a batch send.
#[derive(Serialize, ToSchema)]
pub struct BatchOutcome {
    /// One outcome per user, in the order of `user_ids`.
    pub notifications: Vec<BatchItem>,
}

/// One user's outcome in a batch send.
#[derive(Serialize, ToSchema)]
pub struct BatchItem {
    /// The recipient.
    pub user_id: String,
    /// The notification created for them.
    pub notification_id: String,
    /// Channels it was routed to.
    pub channels: Vec<String>,
}

/// Sends one notification to many users, all or none (validated and stored in one
/// transaction).
#[utoipa::path(post, path = "/api/notifications/batch", tag = "notifications", request_body = BatchSendRequest,
    responses((status = 200, body = BatchOutcome), (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody), (status = 503, body = crate::error::ErrorBody)))]
async fn send_batch(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<BatchSendRequest>,
) -> ApiResult<axum::Json<BatchOutcome>> {
    require_service(&p)?;
    let users = req.user_ids.clone();
    let out = s.notify.send_batch(req).await?;
    let notifications = users
        .into_iter()
        .zip(out)
        .map(|(user_id, o)| BatchItem { user_id, notification_id: o.notification_id, channels: o.channels })
        .collect();
    Ok(axum::Json(BatchOutcome { notifications }))
}

/// States in the OpenAPI document the rules the notification service enforces on its
/// requests, with the configured limits and channels.
pub(super) fn refine(doc: &mut serde_json::Value, app: &crate::App) {
    use serde_json::json;
    let cfg = &app.config.notification;
    let r = super::openapi::refine;
    let no_control = super::openapi::NO_CONTROL;
    let user = json!({"minLength": 1, "maxLength": crate::notify::MAX_USER_ID, "pattern": no_control});
    let channels = json!({"enum": app.notify.channel_names()});
    for schema in ["SendRequest", "BatchSendRequest"] {
        let at = format!("/components/schemas/{schema}/properties");
        // Not blank: at least one character that is not whitespace.
        r(doc, &format!("{at}/title"), json!({"minLength": 1, "maxLength": cfg.max_title_bytes, "pattern": "\\S"}));
        r(doc, &format!("{at}/message"), json!({"maxLength": cfg.max_message_bytes}));
        r(doc, &format!("{at}/channels/items"), channels.clone());
        r(doc, &format!("{at}/action_label"), json!({"maxLength": 256}));
        r(doc, &format!("{at}/template"), json!({"pattern": "^[A-Za-z0-9_-]{1,64}$"}));
        r(doc, &format!("{at}/data"), json!({"type": ["object", "null"]}));
    }
    r(doc, "/components/schemas/SendRequest/properties/user_id", user.clone());
    r(
        doc,
        "/components/schemas/BatchSendRequest/properties/user_ids",
        json!({"minItems": 1, "maxItems": cfg.max_batch, "uniqueItems": true}),
    );
    r(doc, "/components/schemas/BatchSendRequest/properties/user_ids/items", user.clone());
    r(doc, "/components/schemas/ReadAllRequest/properties/user_id", user.clone());
    // An address, or empty (or null) for none.
    r(doc, "/components/schemas/PreferencesInput/properties/email", json!({"anyOf": [{"maxLength": 0}, {"format": "email"}]}));
    r(
        doc,
        "/components/schemas/PreferencesInput/properties/channels",
        json!({"propertyNames": {"enum": ["info", "success", "warning", "error"]}}),
    );
    r(doc, "/components/schemas/PreferencesInput/properties/channels/additionalProperties/items", channels);
    super::openapi::refine_param(doc, "/api/notifications", "get", "cursor", json!({"pattern": "^[0-9]{0,19}$"}));
    for (path, method) in [("/api/notifications/preferences/{user_id}", "get"), ("/api/notifications/preferences/{user_id}", "put")] {
        super::openapi::refine_param(doc, path, method, "user_id", user.clone());
    }
}

/// Query of the feed listing.
#[derive(Deserialize, IntoParams)]
pub struct ListParams {
    /// Whose feed (1 to 256 bytes without control characters).
    #[param(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub user_id: String,
    /// Only unread notifications.
    #[serde(default)]
    pub unread_only: bool,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<usize>,
    /// The `x-next-cursor` header of the previous page.
    pub cursor: Option<String>,
}

/// A user's in-app feed, newest first. When more may follow, the `x-next-cursor` response
/// header holds the `cursor` of the next page.
#[utoipa::path(get, path = "/api/notifications", tag = "notifications", params(ListParams),
    responses((status = 200, body = Vec<Notification>, headers(("x-next-cursor" = String, description = "Cursor of the next page"))),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn list(State(s): State<AppState>, Extension(p): Extension<Principal>, Query(q): Query<ListParams>) -> ApiResult<Response> {
    p.require_user(&q.user_id)?;
    let cursor = match q.cursor.as_deref().filter(|c| !c.is_empty()) {
        Some(c) => Some(c.parse::<u64>().map_err(|_| ApiError::invalid_query("cursor", "not a cursor from x-next-cursor"))?),
        None => None,
    };
    let page = s
        .notify
        .list(&q.user_id, ListQuery { unread_only: q.unread_only, limit: q.limit.unwrap_or(50), cursor })
        .await
        .map_err(query_error)?;
    let mut headers = HeaderMap::new();
    if let Some(c) = page.next_cursor {
        headers.insert(NEXT_CURSOR, HeaderValue::from(c));
    }
    Ok((headers, axum::Json(page.items)).into_response())
}

/// Validation errors of query-string inputs are `invalid_query`.
fn query_error(e: crate::notify::NotifyError) -> ApiError {
    let mut a = ApiError::from(e);
    if a.code == ErrorCode::InvalidField {
        a.code = ErrorCode::InvalidQuery;
    }
    a
}

/// Query naming a user.
#[derive(Deserialize, IntoParams)]
pub struct UserParams {
    /// The user (1 to 256 bytes without control characters).
    #[param(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub user_id: String,
}

/// A user's unread count.
#[derive(Serialize, ToSchema)]
pub struct UnreadCount {
    /// The user.
    pub user_id: String,
    /// Unread in-app notifications.
    pub unread_count: u64,
}

/// Number of unread in-app notifications of a user.
#[utoipa::path(get, path = "/api/notifications/unread_count", tag = "notifications", params(UserParams),
    responses((status = 200, body = UnreadCount), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn unread_count(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<UserParams>,
) -> ApiResult<axum::Json<UnreadCount>> {
    p.require_user(&q.user_id)?;
    let n = s.notify.unread_count(&q.user_id).await.map_err(query_error)?;
    Ok(axum::Json(UnreadCount { user_id: q.user_id, unread_count: n }))
}

/// `{"success": true}` plus, for bulk operations, how many changed.
#[derive(Serialize, ToSchema)]
pub struct Success {
    /// Always true on 200.
    pub success: bool,
    /// Notifications changed, for bulk operations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated: Option<usize>,
}

/// Body of `read_all`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadAllRequest {
    /// The user whose feed is marked read.
    pub user_id: String,
}

/// Marks every unread notification of a user read.
#[utoipa::path(post, path = "/api/notifications/read_all", tag = "notifications", request_body = ReadAllRequest,
    responses((status = 200, body = Success), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn read_all(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<ReadAllRequest>,
) -> ApiResult<axum::Json<Success>> {
    p.require_user(&req.user_id)?;
    let n = s.notify.mark_all_read(&req.user_id).await?;
    Ok(axum::Json(Success { success: true, updated: Some(n) }))
}

/// Loads a notification and checks the caller may see it.
async fn owned(s: &AppState, p: &Principal, id: &str) -> ApiResult<Notification> {
    let n = s.notify.get(id).await?;
    p.require_user(&n.user_id)?;
    Ok(n)
}

/// One notification, with its per-channel delivery state.
#[utoipa::path(get, path = "/api/notifications/{id}", tag = "notifications", params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Notification), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn get_one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Notification>> {
    Ok(axum::Json(owned(&s, &p, &id).await?))
}

/// Deletes a notification.
#[utoipa::path(delete, path = "/api/notifications/{id}", tag = "notifications", params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Success), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_one(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Success>> {
    owned(&s, &p, &id).await?;
    s.notify.delete(&id).await?;
    Ok(axum::Json(Success { success: true, updated: None }))
}

/// Marks one notification read (idempotent).
#[utoipa::path(post, path = "/api/notifications/{id}/read", tag = "notifications", params(("id" = String, Path, description = "Notification id")),
    responses((status = 200, body = Success), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
async fn mark_read(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<Success>> {
    owned(&s, &p, &id).await?;
    s.notify.mark_read(&id).await?;
    Ok(axum::Json(Success { success: true, updated: None }))
}

/// A user's email address and routing preferences (defaults when never set).
#[utoipa::path(get, path = "/api/notifications/preferences/{user_id}", tag = "notifications",
    params(("user_id" = String, Path, description = "The user")),
    responses((status = 200, body = Preferences), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn get_preferences(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(user_id): Path<String>,
) -> ApiResult<axum::Json<Preferences>> {
    p.require_user(&user_id)?;
    Ok(axum::Json(s.notify.preferences(&user_id).await?))
}

/// Replaces a user's email address and routing preferences.
#[utoipa::path(put, path = "/api/notifications/preferences/{user_id}", tag = "notifications",
    params(("user_id" = String, Path, description = "The user")), request_body = PreferencesInput,
    responses((status = 200, body = Preferences), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn put_preferences(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(user_id): Path<String>,
    Json(input): Json<PreferencesInput>,
) -> ApiResult<axum::Json<Preferences>> {
    require_service(&p)?;
    Ok(axum::Json(s.notify.set_preferences(&user_id, input).await?))
}

/// Query of the notification WebSocket.
#[derive(Deserialize, IntoParams)]
pub struct WsParams {
    /// Whose notifications (1 to 256 bytes without control characters).
    #[param(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub user_id: String,
}

/// Live notifications of one user. Frames are JSON `{"event", "data"}`: first `hello`
/// (`{user_id, unread_count}`), then `notification.created` (`{notification,
/// unread_count}`), `notification.read` (`{ids, read_at, unread_count}`),
/// `notification.deleted` (`{ids, unread_count}`), `notification.delivery` (`{id, channel,
/// delivery}`), and `resync` (`{unread_count}`) when this connection fell behind and must
/// re-fetch the feed. Every open connection of the user receives every frame. The token
/// may be passed as `?token=`; a user token must belong to `user_id`.
#[utoipa::path(get, path = "/ws/notifications", tag = "notifications", params(WsParams),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn ws(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    permit: StreamPermit,
    Query(q): Query<WsParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    crate::notify::check_user_id("user_id", &q.user_id).map_err(query_error)?;
    p.require_user(&q.user_id)?;
    // Subscribe before answering so that nothing sent after the handshake is missed.
    let rx = s.events.subscribe();
    let unread = s.notify.unread_count(&q.user_id).await?;
    let shutdown = s.background().shutdown.clone();
    let source = Socket { s, user: q.user_id, hello: Some(unread), resync: false, rx, _open: WsGuard::open() };
    stream::websocket(upgrade, shutdown, permit, source)
}

fn concerns(e: &Event, user: &str) -> bool {
    e.user_id.as_deref() == Some(user) && e.topic.starts_with("notification.")
}

/// One `/ws/notifications` connection: the user's events, after a `hello`.
struct Socket {
    s: AppState,
    user: String,
    /// The unread count for the `hello` frame, until it is sent.
    hello: Option<u64>,
    /// The bus dropped events for this connection: a `resync` frame is owed (kept as
    /// state so that it survives a cancelled `next`).
    resync: bool,
    rx: Subscription,
    /// Counts the connection while it lives.
    _open: WsGuard,
}

impl stream::Source for Socket {
    async fn next(&mut self) -> Option<Message> {
        if let Some(n) = self.hello.take() {
            return Some(stream::frame("hello", &serde_json::json!({"user_id": self.user, "unread_count": n})));
        }
        loop {
            if self.resync {
                let n = self.s.notify.unread_count(&self.user).await.unwrap_or(0);
                self.resync = false;
                return Some(stream::frame("resync", &serde_json::json!({"unread_count": n})));
            }
            match self.rx.recv().await {
                Ok(e) if concerns(&e, &self.user) => return Some(stream::frame(&e.topic, &e.data)),
                Ok(_) => {}
                Err(RecvError::Lagged(_)) => self.resync = true,
                Err(RecvError::Closed) => return None,
            }
        }
    }
}
