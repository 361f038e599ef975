//! The HTTP cache's operations beyond one key's value, as Redis users know them: atomic
//! increment (`INCRBY`), multi-get (`MGET`) and key listing by pattern with a cursor
//! (`SCAN`). They share the data of `http/cache.rs`, the RESP endpoint and the Rust API.
//!
//! `mget` is a route of its own, so like `stats` and `invalidate` it cannot be used as a
//! key over HTTP (the Rust API and RESP accept it).

use super::AppState;
use crate::cache::{CacheError, Hit, listing::MAX_PAGE};
use crate::error::ApiError;
use crate::http::error::{ApiResult, Json, Query};
use axum::extract::{Path, State, rejection::PathRejection};
use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use utoipa::{IntoParams, ToSchema};

/// Most keys one `mget` reads.
pub const MAX_MGET_KEYS: usize = 1000;

/// Query of `GET /api/cache`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Glob over keys (as for `DELETE /api/cache`); default `*`.
    #[param(min_length = 1, max_length = 1024)]
    pub pattern: Option<String>,
    /// `cursor` of the previous page.
    pub cursor: Option<String>,
    /// Entries examined for this page (1–1000, default 100); a page may hold fewer keys,
    /// even none, and still have a next one.
    #[param(minimum = 1, maximum = 1000)]
    pub count: Option<i64>,
}

/// A page of keys.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyPage {
    /// Keys of live entries matching the pattern.
    pub keys: Vec<String>,
    /// Pass as `cursor` for the next page; null when the listing is complete.
    pub cursor: Option<String>,
}

/// Lists keys matching a glob a page at a time: follow `cursor` until it is null. A key
/// present for the whole listing is listed (at least once with a Redis L2, exactly once
/// otherwise); one set or removed meanwhile may or may not be.
#[utoipa::path(get, path = "/api/cache", tag = "cache", params(ListParams),
    responses((status = 200, body = KeyPage), (status = 400, description = "Invalid pattern, cursor or count", body = crate::error::ErrorBody)))]
pub(super) async fn list_keys(State(s): State<AppState>, Query(q): Query<ListParams>) -> ApiResult<axum::Json<KeyPage>> {
    let count = match q.count {
        None => 100,
        Some(n) if (1..=MAX_PAGE as i64).contains(&n) => n as usize,
        Some(_) => return Err(ApiError::invalid_query("count", format!("must be between 1 and {MAX_PAGE}"))),
    };
    let pattern = q.pattern.as_deref().unwrap_or("*");
    let page = s.cache.list_keys(pattern, q.cursor.as_deref().filter(|c| !c.is_empty()), count).await.map_err(query_error)?;
    Ok(axum::Json(KeyPage { keys: page.keys, cursor: page.cursor }))
}

/// Body of `POST /api/cache/mget`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MgetRequest {
    /// The keys, 1 to 1000, each 1 to 1024 bytes without control characters.
    #[schema(schema_with = key_list)]
    pub keys: Vec<String>,
}

/// The schema of [`MgetRequest::keys`].
fn key_list() -> utoipa::openapi::RefOr<utoipa::openapi::Schema> {
    super::openapi::schema(serde_json::json!({"type": "array", "minItems": 1, "maxItems": MAX_MGET_KEYS,
        "items": {"type": "string", "minLength": 1, "maxLength": 1024, "pattern": super::openapi::NO_CONTROL}}))
}

/// How an `mget` value is written in JSON.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Encoding {
    /// The bytes are valid UTF-8 and given as they are.
    Utf8,
    /// The bytes are given in standard base64.
    Base64,
}

/// One key of an `mget` answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct MgetEntry {
    /// The key.
    pub key: String,
    /// Whether the key holds a live entry; the fields below are null when not.
    pub found: bool,
    /// The value, as `encoding` says.
    pub value: Option<String>,
    /// `utf8` or `base64`.
    pub encoding: Option<Encoding>,
    /// The Content-Type it was stored with.
    pub content_type: Option<String>,
    /// When the entry expires.
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds left to live.
    pub ttl: Option<f64>,
}

/// Answer of `POST /api/cache/mget`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MgetResponse {
    /// One entry per requested key, in request order.
    pub entries: Vec<MgetEntry>,
}

/// Reads many keys in one request (hits and misses are counted as for single reads).
#[utoipa::path(post, path = "/api/cache/mget", tag = "cache", request_body = MgetRequest,
    responses((status = 200, body = MgetResponse), (status = 400, description = "No keys, too many, or an invalid one (`keys[i]`)", body = crate::error::ErrorBody)))]
pub(super) async fn mget(State(s): State<AppState>, Json(req): Json<MgetRequest>) -> ApiResult<axum::Json<MgetResponse>> {
    if req.keys.is_empty() || req.keys.len() > MAX_MGET_KEYS {
        return Err(ApiError::invalid("keys", format!("give 1 to {MAX_MGET_KEYS} keys")));
    }
    let mut entries = Vec::with_capacity(req.keys.len());
    for (i, key) in req.keys.into_iter().enumerate() {
        let hit = s.cache.lookup(&key).await.map_err(|e| match e {
            CacheError::Invalid { field: "key", message } => ApiError::invalid(format!("keys[{i}]"), message),
            e => e.into(),
        })?;
        entries.push(mget_entry(key, hit));
    }
    Ok(axum::Json(MgetResponse { entries }))
}

fn mget_entry(key: String, hit: Option<Hit>) -> MgetEntry {
    let Some(hit) = hit else {
        return MgetEntry { key, found: false, value: None, encoding: None, content_type: None, expires_at: None, ttl: None };
    };
    let (value, encoding) = match std::str::from_utf8(hit.value.data()) {
        Ok(text) => (text.to_owned(), Encoding::Utf8),
        Err(_) => (base64::engine::general_purpose::STANDARD.encode(hit.value.data()), Encoding::Base64),
    };
    MgetEntry {
        key,
        found: true,
        value: Some(value),
        encoding: Some(encoding),
        content_type: hit.value.content_type().map(str::to_owned),
        expires_at: Some(hit.expires_at),
        ttl: Some(ttl_left(&hit)),
    }
}

/// Seconds `hit` has left to live, with millisecond precision.
pub fn ttl_left(hit: &Hit) -> f64 {
    (hit.expires_at - Utc::now()).num_milliseconds().max(0) as f64 / 1000.0
}

/// Query of `POST /api/cache/{key}/incr`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct IncrParams {
    /// What to add (negative to decrement); default 1.
    pub by: Option<i64>,
    /// TTL in seconds (1..=`cache.max_ttl`) if the increment creates the key; an existing
    /// key keeps its TTL. Default `cache.l2.default_ttl`.
    #[param(minimum = 1)]
    pub ttl: Option<i64>,
}

/// Answer of `POST /api/cache/{key}/incr`.
#[derive(Debug, Serialize, ToSchema)]
pub struct IncrResponse {
    /// The key.
    pub key: String,
    /// The value after the increment.
    pub value: i64,
}

/// Adds `by` to the integer under `key`, atomically (a missing key counts as 0). The value
/// is stored as decimal text (`text/plain`), the same counter `INCRBY` uses over RESP.
#[utoipa::path(post, path = "/api/cache/{key}/incr", tag = "cache",
    params(super::cache::KeyPath, IncrParams),
    responses((status = 200, body = IncrResponse), (status = 400, description = "Invalid key, by or ttl", body = crate::error::ErrorBody),
        (status = 409, description = "The value is not a decimal 64-bit integer, or the sum would overflow", body = crate::error::ErrorBody)))]
pub(super) async fn incr(
    State(s): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    Query(q): Query<IncrParams>,
) -> ApiResult<axum::Json<IncrResponse>> {
    let key = super::cache::key_of(path)?;
    let ttl = match q.ttl {
        None => None,
        Some(t) if t <= 0 => return Err(ApiError::invalid_query("ttl", "must be a positive number of seconds")),
        // Checked even when the key exists (and keeps its own TTL), as the document says.
        Some(t) => Some(crate::cache::validate::ttl(Some(Duration::from_secs(t as u64)), s.cache.config()).map_err(query_error)?),
    };
    let value = s.cache.incr_by(&key, q.by.unwrap_or(1), ttl).await.map_err(query_error)?;
    Ok(axum::Json(IncrResponse { key, value }))
}

/// Errors about query parameters are `invalid_query` naming the parameter.
pub fn query_error(e: CacheError) -> ApiError {
    match e {
        CacheError::Invalid { field: field @ ("ttl" | "tags" | "pattern" | "cursor" | "count"), message } => {
            ApiError::invalid_query(field, message)
        }
        e => e.into(),
    }
}
