//! Operational routes: liveness, readiness, metrics, the OpenAPI document, user-token
//! minting and stream tickets.

use super::{
    AppState,
    auth::Principal,
    error::{ApiResult, Json},
};
use crate::error::{ApiError, ErrorCode};
use crate::runtime::{Readiness, ReadyState};
use axum::{
    Extension,
    extract::State,
    http::{StatusCode, header},
    response::IntoResponse,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of this file.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(mint_token))
        .routes(routes!(stream_ticket))
}

/// Liveness answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// `ok`, or `unhealthy` while a background task is in a crash loop.
    pub status: &'static str,
    /// Background tasks that panicked five times or more within the last minute (each
    /// is restarted; a restart of the process may be needed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub crash_loops: Vec<CrashLoop>,
}

/// A background task in a crash loop.
#[derive(Serialize, ToSchema)]
pub struct CrashLoop {
    /// The task.
    pub task: &'static str,
    /// Its panics within the last minute.
    pub panics: usize,
}

/// Liveness: 200 while the process serves requests and its background tasks run; 503
/// while a supervised task keeps panicking (a liveness probe then restarts the process).
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health), (status = 503, body = Health)))]
async fn healthz(State(app): State<AppState>) -> impl IntoResponse {
    let crash_loops: Vec<CrashLoop> = app.background().crash_loops().into_iter().map(|(task, panics)| CrashLoop { task, panics }).collect();
    let (code, status) = if crash_loops.is_empty() { (StatusCode::OK, "ok") } else { (StatusCode::SERVICE_UNAVAILABLE, "unhealthy") };
    (code, axum::Json(Health { status, crash_loops }))
}

/// Readiness of every module.
#[derive(Serialize, ToSchema)]
pub struct ReadyReport {
    /// True when every enabled module serves requests (`ready` or `degraded`).
    pub ready: bool,
    /// The worst state among the enabled modules.
    pub status: ReadyState,
    /// Per-module readiness.
    pub modules: BTreeMap<String, Readiness>,
}

/// Readiness: per-module state with the reason when not fully ready. 200 when every
/// enabled module is `ready` or `degraded` (serving with a feature off, e.g. keyword-only
/// search while the model is missing), else 503 with the same body. A disabled module
/// does not count.
#[utoipa::path(get, path = "/readyz", tag = "system", responses((status = 200, body = ReadyReport), (status = 503, body = ReadyReport)))]
async fn readyz(State(app): State<AppState>) -> impl IntoResponse {
    let modules: BTreeMap<String, Readiness> = app.readiness().into_iter().map(|(k, v)| (k.to_string(), v)).collect();
    let enabled = |name: &str| {
        let m = &app.config.modules;
        match name {
            "progress" => m.progress.enabled,
            "job_queue" => m.job_queue.enabled,
            "notification" => m.notification.enabled,
            "cache" => m.cache.enabled,
            "export" => m.export.enabled,
            "search" => m.search.enabled,
            _ => true,
        }
    };
    let status = modules.iter().filter(|(k, _)| enabled(k)).map(|(_, r)| r.status).max().unwrap_or(ReadyState::Ready);
    let ready = status != ReadyState::Unavailable;
    let code = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (code, axum::Json(ReadyReport { ready, status, modules }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, description = "Prometheus text format", content_type = "text/plain")))]
async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], super::metrics::render(&app))
}

/// Request to mint a user token.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MintTokenRequest {
    /// The user the token is for (1 to 256 bytes).
    #[schema(min_length = 1, max_length = 256)]
    pub user_id: String,
    /// Lifetime in seconds (default 3600, at most `auth.max_token_ttl_seconds`).
    #[schema(minimum = 1)]
    pub ttl_seconds: Option<u64>,
}

/// States the configured token lifetime bound in the OpenAPI document.
pub(super) fn refine(doc: &mut serde_json::Value, config: &crate::Config) {
    let max = config.auth.max_token_ttl_seconds.unwrap_or(DEFAULT_MAX_TOKEN_TTL);
    super::openapi::refine(doc, "/components/schemas/MintTokenRequest/properties/ttl_seconds", serde_json::json!({"maximum": max}));
}

/// Longest token lifetime when `auth.max_token_ttl_seconds` is not set.
pub const DEFAULT_MAX_TOKEN_TTL: u64 = 24 * 3600;

/// A minted user token.
#[derive(Serialize, ToSchema)]
pub struct MintTokenResponse {
    /// The token; send as `Authorization: Bearer` or `?token=`.
    pub token: String,
    /// The user it is for.
    pub user_id: String,
    /// Expiry, seconds since the Unix epoch.
    pub expires_at: i64,
}

/// Mints a short-lived token that opens one user's own streams (admin keys only).
#[utoipa::path(post, path = "/api/auth/tokens", tag = "system", request_body = MintTokenRequest,
    responses((status = 200, body = MintTokenResponse), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn mint_token(
    State(app): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<MintTokenRequest>,
) -> ApiResult<axum::Json<MintTokenResponse>> {
    if !matches!(p, Principal::Admin | Principal::Open) {
        return Err(ApiError::new(ErrorCode::Forbidden, "minting user tokens needs an admin key"));
    }
    if req.user_id.is_empty() || req.user_id.len() > 256 {
        return Err(ApiError::invalid("user_id", "must be 1 to 256 characters"));
    }
    let ttl = req.ttl_seconds.unwrap_or(3600);
    if ttl == 0 || ttl > app.auth.max_token_ttl {
        return Err(ApiError::invalid("ttl_seconds", format!("must be between 1 and {}", app.auth.max_token_ttl)));
    }
    let (token, expires_at) = app.auth.mint(&req.user_id, ttl, app.app.clock.now().timestamp());
    Ok(axum::Json(MintTokenResponse { token, user_id: req.user_id, expires_at }))
}

/// A stream ticket.
#[derive(Serialize, ToSchema)]
pub struct StreamTicket {
    /// Pass as `?ticket=` on one WebSocket or SSE route; works once.
    pub ticket: String,
    /// Expiry, seconds since the Unix epoch (60 s from now).
    pub expires_at: i64,
    /// The caller's scope, which the ticket carries: `open` (auth off), `admin`,
    /// `read_only` or `user` (a dashboard hides what a read-only key may not do).
    pub scope: &'static str,
}

/// Trades the caller's credential (from the `Authorization` header) for a single-use
/// ticket valid 60 s that opens one stream (`/ws/*`, `/api/.../events`) as the same
/// caller, with `?ticket=`: browsers cannot set headers on WebSocket and EventSource, and
/// a key in a URL ends up in logs and histories. Takes no body.
#[utoipa::path(post, path = "/api/auth/stream-ticket", tag = "system",
    responses((status = 200, body = StreamTicket), (status = 401, body = crate::error::ErrorBody)))]
async fn stream_ticket(State(app): State<AppState>, req: axum::extract::Request) -> ApiResult<axum::Json<StreamTicket>> {
    let principal = req.extensions().get::<Principal>().cloned().unwrap_or(Principal::Open);
    let credential = super::auth::credential_of(req.headers(), None, req.uri().path());
    let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
    let caller = super::auth::caller_id(&principal, credential.as_deref(), peer);
    let (ticket, expires_at) = app.auth.mint_ticket(&principal, &caller, app.app.clock.now().timestamp());
    Ok(axum::Json(StreamTicket { ticket, expires_at, scope: principal.scope() }))
}
