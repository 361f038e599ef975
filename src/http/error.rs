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
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().clone();
            let inner = e.into_inner();
            if inner.is_syntax() || inner.is_eof() {
                Err(ApiError::new(ErrorCode::MalformedJson, format!("request body is not valid JSON: {inner}")))
            } else {
                let msg = inner.to_string();
                let field = field_of(&path, &msg);
                let mut err = ApiError::invalid(field, msg);
                if err.field.as_deref() == Some("body") {
                    err.code = ErrorCode::MalformedJson;
                }
                Err(err)
            }
        }
    }
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
