//! HTTP routes of the cache module.
//!
//! Keys travel as ONE path segment: percent-encode anything outside the URL path
//! alphabet (`/` as `%2F`, space as `%20`, `?` as `%3F`, `%` as `%25`); `:` may be sent
//! as is (`/api/cache/user:42`). The server percent-decodes the segment, so the key is the
//! decoded string. Two keys are unreachable over HTTP because their paths are routes of
//! their own: `stats` and `invalidate` (the Rust API accepts them).
//!
//! Values are raw bodies: `PUT` stores the body byte for byte with its `Content-Type`
//! (default `application/octet-stream`), and `GET` returns it with the same type.
//!
//! A caller-chosen type must not turn a cached value into a page on hearth's origin (a
//! stored script): a value whose type is outside [`INLINE_SAFE_TYPES`] (HTML, SVG, XHTML,
//! XML, JavaScript, anything unknown) is served with `Content-Disposition: attachment`
//! and `Content-Security-Policy: sandbox`, so a browser downloads it, and would run no
//! script if it rendered it anyway. `X-Content-Type-Options: nosniff` is on every
//! response (`http/limits.rs`), so the safe types are not sniffed into unsafe ones.

use super::AppState;
use crate::cache::{CacheError, CacheStats, SetReceipt, Tier};
use crate::error::ApiError;
use crate::http::error::{ApiResult, Json, Query, body_error};
use axum::{
    body::Bytes,
    extract::{Path, State, rejection::BytesRejection, rejection::PathRejection},
    http::{HeaderMap, HeaderValue, header},
    response::{IntoResponse, Response},
    routing::any,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of the cache module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_value, get_value, delete_value))
        .routes(routes!(delete_pattern))
        .routes(routes!(invalidate))
        .routes(routes!(stats))
        // `/api/cache/` (an empty key) would otherwise be a 404 route_not_found.
        .route("/api/cache/", any(empty_key))
}

async fn empty_key() -> ApiError {
    ApiError::invalid("key", "must not be empty")
}

/// Query of `PUT /api/cache/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutParams {
    /// Time to live in seconds (1..=`cache.max_ttl`); default `cache.l2.default_ttl`.
    pub ttl: Option<i64>,
    /// Comma-separated tags for `invalidate`, e.g. `user,profile`.
    pub tags: Option<String>,
}

/// Query of `DELETE /api/cache`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatternParams {
    /// Glob over keys: `*` any run of characters, `?` one character, `[abc]`, `{a,b}`; `\` escapes.
    pub pattern: String,
}

/// Body of `POST /api/cache/invalidate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    /// Entries carrying any of these tags are removed.
    pub tags: Vec<String>,
}

/// Answer of `DELETE /api/cache/{key}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResponse {
    /// The key.
    pub key: String,
    /// Whether the key was present.
    pub deleted: bool,
}

/// Answer of `POST /api/cache/invalidate`.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvalidateResponse {
    /// Entries removed.
    pub invalidated: u64,
}

/// Answer of `DELETE /api/cache?pattern=`.
#[derive(Debug, Serialize, ToSchema)]
pub struct PatternResponse {
    /// The pattern.
    pub pattern: String,
    /// Entries removed.
    pub deleted: u64,
}

/// Errors about query parameters are reported as `invalid_query` naming the parameter.
fn query_error(e: CacheError) -> ApiError {
    match e {
        CacheError::Invalid { field: field @ ("ttl" | "tags" | "pattern"), message } => ApiError::invalid_query(field, message),
        e => e.into(),
    }
}

fn key_of(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    path.map(|Path(k)| k).map_err(|e| ApiError::invalid("key", format!("cannot decode the key: {e}")))
}

/// Stores the request body under `key`.
#[utoipa::path(
    put,
    path = "/api/cache/{key}",
    tag = "cache",
    params(("key" = String, Path, description = "The key (one percent-encoded path segment, 1..=1024 bytes)"), PutParams),
    request_body(content = Vec<u8>, description = "The raw value; its Content-Type is stored and returned by GET", content_type = "*/*"),
    responses(
        (status = 200, description = "Stored (durable in L2)", body = SetReceipt),
        (status = 400, description = "Invalid key, ttl or tags", body = crate::error::ErrorBody),
        (status = 413, description = "Value over cache.max_entry_bytes or the body limit", body = crate::error::ErrorBody),
    )
)]
async fn put_value(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(q): Query<PutParams>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult<Json<SetReceipt>> {
    let key = key_of(path)?;
    let ttl = match q.ttl {
        None => None,
        Some(s) if s <= 0 => return Err(ApiError::invalid_query("ttl", "must be a positive number of seconds")),
        Some(s) => Some(Duration::from_secs(s as u64)),
    };
    let tags: Vec<String> =
        q.tags.as_deref().unwrap_or("").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect();
    let body = body.map_err(body_error)?;
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("application/octet-stream");
    let value = crate::cache::CacheValue::with_content_type(body, content_type);
    let receipt = state.cache.set(&key, value, ttl, &tags).await.map_err(query_error)?;
    Ok(Json(receipt))
}

/// The value under `key`, with its Content-Type; `X-Cache` says which tier answered.
#[utoipa::path(
    get,
    path = "/api/cache/{key}",
    tag = "cache",
    params(("key" = String, Path, description = "The key (one percent-encoded path segment)")),
    responses(
        (status = 200, description = "The raw value, with the Content-Type it was stored with; types that could run script in a browser also get `Content-Disposition: attachment` and `Content-Security-Policy: sandbox`", content_type = "*/*", body = Vec<u8>,
         headers(("x-cache" = String, description = "`l1` or `l2`"), ("x-cache-expires-at" = String, description = "RFC 3339 expiry"))),
        (status = 400, description = "Invalid key", body = crate::error::ErrorBody),
        (status = 404, description = "Miss", body = crate::error::ErrorBody),
    )
)]
async fn get_value(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    let key = key_of(path)?;
    let Some(hit) = state.cache.lookup(&key).await? else {
        return Err(ApiError::not_found("cache key", &key));
    };
    let ct = hit
        .value
        .content_type()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let tier = HeaderValue::from_static(match hit.tier {
        Tier::L1 => "l1",
        Tier::L2 => "l2",
    });
    let expires = HeaderValue::from_str(&hit.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).ok();
    let unsafe_type = !ct.to_str().is_ok_and(inline_safe);
    let mut resp = hit.value.data().clone().into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, ct);
    if unsafe_type {
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    h.insert("x-cache", tier);
    if let Some(e) = expires {
        h.insert("x-cache-expires-at", e);
    }
    Ok(resp)
}

/// Media types a browser may render inline from the cache: none of them runs script.
pub const INLINE_SAFE_TYPES: &[&str] = &[
    "text/plain",
    "text/csv",
    "application/json",
    "application/octet-stream",
    "application/pdf",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
    "image/avif",
];

/// Whether a stored Content-Type may be served inline: its media type (parameters such
/// as `charset` ignored, case-insensitive) is in [`INLINE_SAFE_TYPES`].
pub fn inline_safe(content_type: &str) -> bool {
    let media = content_type.split(';').next().unwrap_or("").trim();
    INLINE_SAFE_TYPES.iter().any(|t| t.eq_ignore_ascii_case(media))
}

/// Removes `key` from both tiers (200 whether or not it was present).
#[utoipa::path(
    delete,
    path = "/api/cache/{key}",
    tag = "cache",
    params(("key" = String, Path, description = "The key (one percent-encoded path segment)")),
    responses(
        (status = 200, body = DeleteResponse),
        (status = 400, description = "Invalid key", body = crate::error::ErrorBody),
    )
)]
async fn delete_value(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult<Json<DeleteResponse>> {
    let key = key_of(path)?;
    let deleted = state.cache.delete(&key).await?;
    Ok(Json(DeleteResponse { key, deleted }))
}

/// Removes every key matching a glob, e.g. `user:*`.
#[utoipa::path(
    delete,
    path = "/api/cache",
    tag = "cache",
    params(PatternParams),
    responses(
        (status = 200, body = PatternResponse),
        (status = 400, description = "Missing or invalid pattern", body = crate::error::ErrorBody),
    )
)]
async fn delete_pattern(State(state): State<AppState>, Query(q): Query<PatternParams>) -> ApiResult<Json<PatternResponse>> {
    let deleted = state.cache.delete_pattern(&q.pattern).await.map_err(query_error)?;
    Ok(Json(PatternResponse { pattern: q.pattern, deleted }))
}

/// Removes every entry carrying any of the tags.
#[utoipa::path(
    post,
    path = "/api/cache/invalidate",
    tag = "cache",
    request_body = InvalidateRequest,
    responses(
        (status = 200, body = InvalidateResponse),
        (status = 400, description = "Missing or invalid tags", body = crate::error::ErrorBody),
    )
)]
async fn invalidate(State(state): State<AppState>, Json(req): Json<InvalidateRequest>) -> ApiResult<Json<InvalidateResponse>> {
    let invalidated = state.cache.invalidate(&req.tags).await?;
    Ok(Json(InvalidateResponse { invalidated }))
}

/// Hits, misses and hit rate overall and per tier, with entries, bytes and evictions.
#[utoipa::path(get, path = "/api/cache/stats", tag = "cache", responses((status = 200, body = CacheStats)))]
async fn stats(State(state): State<AppState>) -> ApiResult<Json<CacheStats>> {
    Ok(Json(state.cache.get_stats().await?))
}

#[cfg(test)]
mod tests {
    use super::inline_safe;

    #[test]
    fn only_types_that_run_no_script_are_inline() {
        for ok in ["text/plain", "text/plain; charset=utf-8", "Application/JSON", "image/png", "text/csv;header=present"] {
            assert!(inline_safe(ok), "{ok}");
        }
        for bad in ["text/html", "image/svg+xml", "application/xhtml+xml", "text/xml", "application/javascript", "", "text/plainx"] {
            assert!(!inline_safe(bad), "{bad}");
        }
    }
}
