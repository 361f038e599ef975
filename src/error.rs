//! The one table of stable error codes.
//!
//! Every error that reaches an API caller is an [`ApiError`]: a stable machine-readable
//! [`ErrorCode`], the HTTP status that code always maps to, a human message and, for
//! validation failures, the name of the offending field. Modules keep their own
//! `thiserror` enums and convert into `ApiError` at the boundary; `http/` turns it into
//! the JSON body `{"error": {"code": "...", "message": "...", "field": "..."}}`.

use serde::Serialize;

macro_rules! error_codes {
    ($( $(#[$doc:meta])* $variant:ident => ($status:expr, $code:literal) ),+ $(,)?) => {
        /// Stable error codes. The string form is part of the public API: never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $( $(#[$doc])* $variant, )+
        }

        impl ErrorCode {
            /// The HTTP status this code is always answered with.
            pub fn status(self) -> u16 {
                match self { $( ErrorCode::$variant => $status, )+ }
            }

            /// The stable snake_case string sent to clients.
            pub fn as_str(self) -> &'static str {
                match self { $( ErrorCode::$variant => $code, )+ }
            }

            /// Every code, for documentation and tests.
            pub const ALL: &'static [ErrorCode] = &[ $( ErrorCode::$variant, )+ ];
        }
    };
}

error_codes! {
    /// The request body is not valid JSON or has the wrong shape.
    MalformedJson => (400, "malformed_json"),
    /// A field is missing or has an invalid value; `field` names it.
    InvalidField => (400, "invalid_field"),
    /// A query-string parameter is invalid; `field` names it.
    InvalidQuery => (400, "invalid_query"),
    /// Any other well-formed but unacceptable request.
    BadRequest => (400, "bad_request"),
    /// No or unknown credentials.
    Unauthorized => (401, "unauthorized"),
    /// Credentials are valid but do not allow this operation.
    Forbidden => (403, "forbidden"),
    /// The addressed resource does not exist.
    NotFound => (404, "not_found"),
    /// No route matches the path.
    RouteNotFound => (404, "route_not_found"),
    /// The route exists but not for this method.
    MethodNotAllowed => (405, "method_not_allowed"),
    /// The resource is in a state that does not allow the operation.
    Conflict => (409, "conflict"),
    /// The body or an entity in it exceeds a configured limit.
    PayloadTooLarge => (413, "payload_too_large"),
    /// The request target (path and query) is longer than `server.max_uri_bytes`.
    UriTooLong => (414, "uri_too_long"),
    /// The request's Content-Type is not accepted.
    UnsupportedMediaType => (415, "unsupported_media_type"),
    /// Too many requests.
    RateLimited => (429, "rate_limited"),
    /// The caller already holds `server.max_streams_per_caller` WebSocket/SSE streams.
    TooManyStreams => (429, "too_many_streams"),
    /// The request headers are larger than `server.max_header_bytes`.
    HeadersTooLarge => (431, "headers_too_large"),
    /// A module or backend needed for this request is not available; the message says why.
    ServiceUnavailable => (503, "service_unavailable"),
    /// The module serving this route is disabled in the configuration.
    ModuleDisabled => (503, "module_disabled"),
    /// A shared backend of a cluster (Redis, PostgreSQL, ...) is unreachable or timed out;
    /// nothing was changed. Retry later.
    BackendUnavailable => (503, "backend_unavailable"),
    /// The database cannot write (an I/O error); reads may still work. Retry later.
    StorageUnavailable => (503, "storage_unavailable"),
    /// The data directory's disk is full: nothing can be written until space is freed.
    StorageFull => (507, "storage_full"),
    /// A bug or an unexpected storage failure. Details are logged, not returned.
    Internal => (500, "internal"),
}

/// An error as the API caller sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The stable code; decides the HTTP status.
    pub code: ErrorCode,
    /// A message for humans. Never contains secrets or internal paths for 5xx errors.
    pub message: String,
    /// The request field (dotted path, e.g. `segments[3].end`) that caused a validation error.
    pub field: Option<String>,
}

impl ApiError {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError { code, message: message.into(), field: None }
    }

    /// A 400 naming the invalid field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError { code: ErrorCode::InvalidField, message: format!("{field}: {message}"), field: Some(field) }
    }

    /// A 400 naming the invalid query parameter.
    pub fn invalid_query(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError { code: ErrorCode::InvalidQuery, message: format!("{field}: {message}"), field: Some(field) }
    }

    /// A 404 for an entity of `kind` with `id`.
    pub fn not_found(kind: &str, id: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{kind} '{id}' not found"))
    }

    /// A 409 with a message.
    pub fn conflict(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Conflict, message)
    }

    /// A 413 naming the field (or body) that is too large.
    pub fn too_large(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        ApiError { code: ErrorCode::PayloadTooLarge, message: format!("{field}: {message}"), field: Some(field) }
    }

    /// A 503 saying what is unavailable and why.
    pub fn unavailable(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::ServiceUnavailable, message)
    }

    /// A 500. The detail is logged here and replaced by a generic message for the caller.
    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(error = %detail, "internal error");
        ApiError::new(ErrorCode::Internal, "internal error; see the server log")
    }

    /// The HTTP status for this error.
    pub fn status(&self) -> u16 {
        self.code.status()
    }

    /// The JSON body sent to clients.
    pub fn body(&self) -> ErrorBody<'_> {
        ErrorBody { error: ErrorDetail { code: self.code.as_str(), message: &self.message, field: self.field.as_deref() } }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.message)
    }
}

impl std::error::Error for ApiError {}

impl From<crate::store::StoreError> for ApiError {
    /// A full disk is 507 and an I/O error 503, both with the reason (retry later); any
    /// other storage failure is a 500 whose details are only logged.
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        match e {
            StoreError::Full(reason) => ApiError::new(ErrorCode::StorageFull, format!("the write was not made: {reason}")),
            StoreError::Unavailable(reason) => ApiError::new(ErrorCode::StorageUnavailable, format!("storage is unavailable: {reason}")),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::cluster::RedisError> for ApiError {
    /// Unreachable or timed out: 503 `backend_unavailable` (retry); any other Redis error
    /// is a 500 whose details are only logged.
    fn from(e: crate::cluster::RedisError) -> Self {
        match e {
            crate::cluster::RedisError::Unavailable(why) => {
                ApiError::new(ErrorCode::BackendUnavailable, format!("redis is unavailable: {why}"))
            }
            other => ApiError::internal(other),
        }
    }
}

/// Wire shape of an error response.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorBody<'a> {
    /// The error.
    #[schema(inline)]
    pub error: ErrorDetail<'a>,
}

/// Wire shape of the `error` object.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail<'a> {
    /// Stable error code, e.g. `invalid_field`.
    pub code: &'a str,
    /// Human-readable message.
    pub message: &'a str,
    /// The offending request field, for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_and_statuses_are_errors() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()), "duplicate code {}", c.as_str());
            assert!(c.status() >= 400);
        }
    }

    #[test]
    fn invalid_names_the_field() {
        let e = ApiError::invalid("priority", "must be 0..=9");
        assert_eq!(e.status(), 400);
        assert_eq!(e.field.as_deref(), Some("priority"));
        let v = serde_json::to_value(e.body()).unwrap();
        assert_eq!(v["error"]["code"], "invalid_field");
        assert_eq!(v["error"]["field"], "priority");
    }
}
