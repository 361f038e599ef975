//! How errors and request bodies cross the HTTP boundary.
//!
//! [`ApiError`] becomes `{"error": {"code", "message", "field"}}` with the status from the
//! error table. The [`Json`] and [`Query`] extractors replace axum's so that malformed
//! input always yields that body and names the offending field.

use crate::error::{ApiError, ErrorCode};
use axum::{
    body::Bytes,
    extract::{FromRequest, FromRequestParts, Request},
    http::{StatusCode, header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

/// The result type of every handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&self.body()).unwrap_or_default();
        (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
    }
}

/// Splits a serde error into (field path, message), completing the path for
/// "missing field `x`" errors whose reported path is the parent.
fn field_of(path: &serde_path_to_error::Path, message: &str) -> String {
    let mut field = path.to_string();
    if field == "." {
        field.clear();
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some(name) = rest.split('`').next()
    {
        field = if field.is_empty() { name.to_string() } else { format!("{field}.{name}") };
    }
    if field.is_empty() { "body".to_string() } else { field }
}

/// Parses a JSON body, naming the failing field on error.
///
/// JSON has one number type: `3.0` is the integer 3 to JSON Schema (and so to the OpenAPI
/// document and the clients generated from it), while serde refuses it for an integer
/// field. A body refused for a whole float where an integer belongs is read again with
/// that number made an integer, field by field; only a body that still fails is an
/// error. (The rereading runs only on that error path.)
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    let first = match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => return Ok(v),
        Err(e) => e,
    };
    if !is_float_for_integer(&first) {
        return Err(shape_error(first));
    }
    let Ok(mut doc) = serde_json::from_slice::<serde_json::Value>(bytes) else { return Err(shape_error(first)) };
    let mut err = first;
    // Each round fixes one field; a body has few integer fields.
    for _ in 0..64 {
        if !is_float_for_integer(&err) || !make_integer(&mut doc, err.path()) {
            break;
        }
        match serde_path_to_error::deserialize::<_, T>(doc.clone()) {
            Ok(v) => return Ok(v),
            Err(e) => err = e,
        }
    }
    Err(shape_error(err))
}

fn is_float_for_integer<E: std::fmt::Display>(e: &serde_path_to_error::Error<E>) -> bool {
    e.inner().to_string().starts_with("invalid type: floating point")
}

/// Turns the number at `path` into the integer it equals; false if it is not whole.
fn make_integer(doc: &mut serde_json::Value, path: &serde_path_to_error::Path) -> bool {
    use serde_path_to_error::Segment;
    let mut at = doc;
    for seg in path.iter() {
        let next = match (seg, at) {
            (Segment::Seq { index }, serde_json::Value::Array(a)) => a.get_mut(*index),
            (Segment::Map { key }, serde_json::Value::Object(o)) => o.get_mut(key),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    let Some(f) = at.as_f64().filter(|f| f.fract() == 0.0) else { return false };
    *at = if f >= 0.0 && f < u64::MAX as f64 {
        serde_json::Value::from(f as u64)
    } else if f < 0.0 && f >= i64::MIN as f64 {
        serde_json::Value::from(f as i64)
    } else {
        return false;
    };
    true
}

/// A deserialization error of a body as an [`ApiError`] naming the field.
fn shape_error(e: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = e.path().clone();
    let inner = e.into_inner();
    if inner.is_syntax() || inner.is_eof() {
        return ApiError::new(ErrorCode::MalformedJson, format!("request body is not valid JSON: {inner}"));
    }
    let msg = inner.to_string();
    let field = field_of(&path, &msg);
    let mut err = ApiError::invalid(field, msg);
    if err.field.as_deref() == Some("body") {
        err.code = ErrorCode::MalformedJson;
    }
    err
}

/// Parses a body that may be left out: empty (or `null`) is `T::default()`, anything else
/// must be a JSON object (serde would also read a struct from an array of its fields).
pub fn parse_optional_object<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    let text = body.trim_ascii();
    if text.is_empty() || text == b"null" {
        return Ok(T::default());
    }
    if !text.starts_with(b"{") {
        return Err(ApiError::new(ErrorCode::MalformedJson, "the body must be a JSON object (or empty)"));
    }
    parse_json(text)
}

/// JSON body extractor whose rejections are [`ApiError`]s.
#[derive(Debug, Clone, Copy, Default)]
pub struct Json<T>(pub T);

impl<T, S> FromRequest<S> for Json<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|ct| {
                let mime = ct.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
                mime == "application/json" || mime.ends_with("+json")
            })
            .unwrap_or(false);
        if !is_json {
            return Err(ApiError::new(ErrorCode::UnsupportedMediaType, "expected Content-Type: application/json"));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(body_error)?;
        parse_json(&bytes).map(Json)
    }
}

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        axum::Json(self.0).into_response()
    }
}

/// Maps a failure to read the body (usually the size limit) to an [`ApiError`].
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::too_large("body", "request body exceeds the configured limit (server.body_limit)")
    } else {
        ApiError::new(ErrorCode::BadRequest, format!("cannot read request body: {e}"))
    }
}

/// Query-string extractor whose rejections name the parameter.
#[derive(Debug, Clone, Copy, Default)]
pub struct Query<T>(pub T);

/// Parses a query string, naming the failing parameter on error.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded_parse(query));
    serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
        let path = e.path().clone();
        let msg = e.into_inner().to_string();
        let field = field_of(&path, &msg);
        ApiError::invalid_query(if field == "body" { "query".to_string() } else { field }, msg)
    })
}

fn form_urlencoded_parse(q: &str) -> form_urlencoded::Parse<'_> {
    form_urlencoded::parse(q.as_bytes())
}

impl<T, S> FromRequestParts<S> for Query<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or("")).map(Query)
    }
}

/// Fallback for unknown routes.
pub async fn route_not_found(uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::RouteNotFound, format!("no route for {}", uri.path()))
}

/// Fallback for known routes called with the wrong method.
pub async fn method_not_allowed(method: axum::http::Method, uri: axum::http::Uri) -> ApiError {
    ApiError::new(ErrorCode::MethodNotAllowed, format!("{method} is not allowed on {}", uri.path()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    struct Req {
        name: String,
        priority: u8,
        inner: Option<Inner>,
    }

    #[allow(dead_code)]
    #[derive(Debug, Deserialize)]
    struct Inner {
        items: Vec<u32>,
    }

    #[test]
    fn names_fields() {
        let e = parse_json::<Req>(br#"{"name": "x", "priority": "high"}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("priority"));
        let e = parse_json::<Req>(br#"{"priority": 1}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("name"));
        let e = parse_json::<Req>(br#"{"name": "x", "priority": 1, "inner": {"items": [1, "a"]}}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("inner.items[1]"));
        let e = parse_json::<Req>(b"{nope").unwrap_err();
        assert_eq!(e.code, ErrorCode::MalformedJson);
        // A whole float is the integer it equals (as JSON Schema says); a fraction is not.
        let r = parse_json::<Req>(br#"{"name": "x", "priority": 7.0, "inner": {"items": [1, 2.0, 3e0]}}"#).unwrap();
        assert_eq!((r.priority, r.inner.unwrap().items), (7, vec![1, 2, 3]));
        let e = parse_json::<Req>(br#"{"name": "x", "priority": 7.5}"#).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("priority"));
    }

    #[test]
    fn names_query_params() {
        #[allow(dead_code)]
        #[derive(Debug, Deserialize)]
        struct Q {
            limit: Option<u32>,
        }
        let e = parse_query::<Q>("limit=abc").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("limit"));
        assert_eq!(e.status(), 400);
    }
}
