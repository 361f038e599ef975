//! HTTP routes of the cache module.
//!
//! Keys travel as ONE path segment: percent-encode anything outside the URL path
//! alphabet (`/` as `%2F`, space as `%20`, `?` as `%3F`, `%` as `%25`); `:` may be sent
//! as is (`/api/cache/user:42`). The server percent-decodes the segment, so the key is the
//! decoded string. Three keys are unreachable over HTTP because their paths are routes of
//! their own: `stats`, `invalidate` and `mget` (the Rust API and RESP accept them).
//!
//! Values are raw bodies: `PUT` stores the body byte for byte with its `Content-Type`
//! (default `application/octet-stream`), and `GET` returns it with the same type. `GET`
//! and `HEAD` say when the entry expires (`X-Cache-Expires-At`) and how long it has left
//! (`X-Cache-TTL`, seconds); `PUT ?nx=true` stores only if the key is absent (409 if not).
//! Increment, multi-get and key listing are in `http/cache_ops.rs`.
//!
//! A caller-chosen type must not turn a cached value into a page on hearth's origin (a
//! stored script): a value whose type is outside [`INLINE_SAFE_TYPES`] (HTML, SVG, XHTML,
//! XML, JavaScript, anything unknown) is served with `Content-Disposition: attachment`
//! and `Content-Security-Policy: sandbox`, so a browser downloads it, and would run no
//! script if it rendered it anyway. `X-Content-Type-Options: nosniff` is on every
//! response (`http/limits.rs`), so the safe types are not sniffed into unsafe ones.

use super::AppState;
use super::cache_ops::{self, query_error};
use crate::cache::{CacheStats, Hit, SetReceipt};
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

/// States the configured TTL bound in the OpenAPI document.
pub(super) fn refine(doc: &mut serde_json::Value, config: &crate::Config) {
    let max = serde_json::json!({"maximum": config.cache.max_ttl});
    super::openapi::refine_param(doc, "/api/cache/{key}", "put", "ttl", max.clone());
    super::openapi::refine_param(doc, "/api/cache/{key}/incr", "post", "ttl", max);
    // A value is raw bytes (utoipa would say an array of integers). Any Content-Type is
    // stored, but the document names one so that client generators can send bytes.
    let bytes = serde_json::json!({"type": "string", "format": "binary"});
    let value = "/paths/~1api~1cache~1{key}";
    super::openapi::replace(
        doc,
        &format!("{value}/put/requestBody/content"),
        serde_json::json!({"application/octet-stream": {"schema": bytes}}),
    );
    super::openapi::replace(doc, &format!("{value}/get/responses/200/content/*~1*/schema"), bytes);
}

/// Routes of the cache module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(put_value, get_value, head_value, delete_value))
        .routes(routes!(cache_ops::list_keys, delete_pattern))
        .routes(routes!(cache_ops::mget))
        .routes(routes!(cache_ops::incr))
        .routes(routes!(invalidate))
        .routes(routes!(stats))
        // `/api/cache/` (an empty key) would otherwise be a 404 route_not_found.
        .route("/api/cache/", any(empty_key))
}

async fn empty_key() -> ApiError {
    ApiError::invalid("key", "must not be empty")
}

/// The key in the path of the `/api/cache/{key}` routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
pub struct KeyPath {
    /// The key: one percent-encoded path segment, 1 to 1024 bytes of UTF-8 without control
    /// characters.
    #[param(min_length = 1, max_length = 1024, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub key: String,
}

/// Query of `PUT /api/cache/{key}`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PutParams {
    /// Time to live in seconds (1..=`cache.max_ttl`); default `cache.l2.default_ttl`.
    #[param(minimum = 1)]
    pub ttl: Option<i64>,
    /// Comma-separated tags for `invalidate`, e.g. `user,profile`: at most 64, each at most
    /// 256 bytes, no control characters.
    #[param(pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    pub tags: Option<String>,
    /// Set only if the key holds no live entry (Redis's `SET NX`); 409 if it does.
    pub nx: Option<bool>,
}

/// Query of `DELETE /api/cache`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PatternParams {
    /// Glob over keys: `*` any run of characters, `?` one character, `[abc]`, `{a,b}`; `\` escapes.
    #[param(min_length = 1, max_length = 1024)]
    pub pattern: String,
}

/// Body of `POST /api/cache/invalidate`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InvalidateRequest {
    /// Entries carrying any of these tags are removed: 1 to 64 tags, each 1 to 256 bytes
    /// without commas or control characters.
    #[schema(schema_with = tag_list)]
    pub tags: Vec<String>,
}

/// The schema of [`InvalidateRequest::tags`].
fn tag_list() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    super::openapi::schema(serde_json::json!({"type": "array", "minItems": 1, "maxItems": 64,
        "items": {"type": "string", "minLength": 1, "maxLength": 256, "pattern": "^[^,\\u0000-\\u001f\\u007f-\\u009f]*$"}}))
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

/// The key of the path, or a 400 naming `key`.
pub(super) fn key_of(path: Result<Path<String>, PathRejection>) -> ApiResult<String> {
    path.map(|Path(k)| k).map_err(|e| ApiError::invalid("key", format!("cannot decode the key: {e}")))
}

/// Stores the request body under `key`.
#[utoipa::path(
    put,
    path = "/api/cache/{key}",
    tag = "cache",
    params(KeyPath, PutParams),
    request_body(content = Vec<u8>, description = "The raw value; its Content-Type is stored and returned by GET", content_type = "*/*"),
    responses(
        (status = 200, description = "Stored (durable in L2)", body = SetReceipt),
        (status = 400, description = "Invalid key, ttl or tags", body = crate::error::ErrorBody),
        (status = 409, description = "`nx=true` and the key holds a live entry; nothing was stored", body = crate::error::ErrorBody),
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
    if q.nx == Some(true) {
        let stored = state.cache.set_if_absent(&key, value, ttl, &tags).await.map_err(query_error)?;
        return stored.map(Json).ok_or_else(|| ApiError::conflict(format!("cache key '{key}' already holds a value (nx=true)")));
    }
    let receipt = state.cache.set(&key, value, ttl, &tags).await.map_err(query_error)?;
    Ok(Json(receipt))
}

/// The value under `key`, with its Content-Type; `X-Cache` says which tier answered,
/// `X-Cache-TTL` how long the entry has left.
#[utoipa::path(
    get,
    path = "/api/cache/{key}",
    tag = "cache",
    params(KeyPath),
    responses(
        (status = 200, description = "The raw value, with the Content-Type it was stored with; types that could run script in a browser also get `Content-Disposition: attachment` and `Content-Security-Policy: sandbox`", content_type = "*/*", body = Vec<u8>,
         headers(("x-cache" = String, description = "`l1` or `l2`"), ("x-cache-expires-at" = String, description = "RFC 3339 expiry"),
             ("x-cache-ttl" = f64, description = "Seconds left to live"))),
        (status = 400, description = "Invalid key", body = crate::error::ErrorBody),
        (status = 404, description = "Miss", body = crate::error::ErrorBody),
    )
)]
async fn get_value(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    let hit = hit_of(&state, path).await?;
    let mut resp = hit.value.data().clone().into_response();
    describe(resp.headers_mut(), &hit);
    Ok(resp)
}

/// The headers of `GET` without the value: whether the key is live, its type, size, tier,
/// expiry and TTL.
#[utoipa::path(
    head,
    path = "/api/cache/{key}",
    tag = "cache",
    params(KeyPath),
    responses(
        (status = 200, description = "Live; no body",
         headers(("content-length" = u64, description = "Size of the value in bytes"), ("x-cache" = String, description = "`l1` or `l2`"),
             ("x-cache-expires-at" = String, description = "RFC 3339 expiry"), ("x-cache-ttl" = f64, description = "Seconds left to live"))),
        (status = 400, description = "Invalid key; no body"),
        (status = 404, description = "Miss; no body"),
    )
)]
async fn head_value(State(state): State<AppState>, path: Result<Path<String>, PathRejection>) -> ApiResult<Response> {
    let hit = hit_of(&state, path).await?;
    let mut resp = ().into_response();
    describe(resp.headers_mut(), &hit);
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(hit.value.len()));
    Ok(resp)
}

/// The live entry under the path's key, or a 400 or 404.
async fn hit_of(state: &AppState, path: Result<Path<String>, PathRejection>) -> ApiResult<Hit> {
    let key = key_of(path)?;
    state.cache.lookup(&key).await?.ok_or_else(|| ApiError::not_found("cache key", &key))
}

/// The headers describing `hit` (see [`get_value`]).
fn describe(h: &mut HeaderMap, hit: &Hit) {
    let ct = hit
        .value
        .content_type()
        .and_then(|c| HeaderValue::from_str(c).ok())
        .unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let unsafe_type = !ct.to_str().is_ok_and(inline_safe);
    h.insert(header::CONTENT_TYPE, ct);
    if unsafe_type {
        h.insert(header::CONTENT_DISPOSITION, HeaderValue::from_static("attachment"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static("sandbox"));
    }
    h.insert("x-cache", HeaderValue::from_static(hit.tier.as_str()));
    if let Ok(e) = HeaderValue::from_str(&hit.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)) {
        h.insert("x-cache-expires-at", e);
    }
    if let Ok(t) = HeaderValue::from_str(&format!("{:.3}", cache_ops::ttl_left(hit))) {
        h.insert("x-cache-ttl", t);
    }
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
    params(KeyPath),
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
