//! Limits and headers applied to every request before it reaches a handler.
//!
//! - The request target and the headers are measured against `server.max_uri_bytes` and
//!   `server.max_header_bytes`; over either, the answer is 414 or 431 with the JSON error
//!   body (hyper's own, higher caps answer with an empty body, so hearth checks first).
//! - Every response carries `X-Content-Type-Options: nosniff`, so a browser never guesses
//!   a type other than the one hearth declared.
//! - [`StreamSlots`] caps the WebSocket/SSE streams one caller holds open at once.

use crate::error::{ApiError, ErrorCode};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;

/// Size limits of a request head.
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// Most bytes of path and query.
    pub max_uri_bytes: usize,
    /// Most bytes of header names and values.
    pub max_header_bytes: usize,
}

/// Middleware: refuses oversized request heads with JSON errors, and marks every response
/// `nosniff`.
pub async fn guard_head(State(limits): State<HeadLimits>, req: Request, next: Next) -> Response {
    let target = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
    if target > limits.max_uri_bytes {
        return nosniff(
            ApiError::new(ErrorCode::UriTooLong, format!("the request target is {target} bytes; the limit is {}", limits.max_uri_bytes))
                .into_response(),
        );
    }
    let head: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
    if head > limits.max_header_bytes {
        return nosniff(
            ApiError::new(
                ErrorCode::HeadersTooLarge,
                format!("the request headers are {head} bytes; the limit is {}", limits.max_header_bytes),
            )
            .into_response(),
        );
    }
    nosniff(next.run(req).await)
}

fn nosniff(mut resp: Response) -> Response {
    resp.headers_mut().entry(header::X_CONTENT_TYPE_OPTIONS).or_insert(HeaderValue::from_static("nosniff"));
    resp
}

/// Counts the open streams (WebSocket, SSE) of each caller and refuses one more than the
/// limit. A slot is released when its [`StreamSlot`] is dropped, i.e. when the stream ends.
#[derive(Clone)]
pub struct StreamSlots {
    limit: usize,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    caller: String,
    open: Arc<Mutex<HashMap<String, usize>>>,
}

impl StreamSlots {
    /// At most `limit` streams per caller.
    pub fn new(limit: usize) -> Self {
        StreamSlots { limit, open: Arc::default() }
    }

    /// Takes a slot for `caller`, or answers 429 `too_many_streams`.
    pub fn acquire(&self, caller: &str) -> Result<StreamSlot, ApiError> {
        let mut open = self.open.lock();
        let n = open.entry(caller.to_string()).or_insert(0);
        if *n >= self.limit {
            return Err(ApiError::new(
                ErrorCode::TooManyStreams,
                format!("this caller already has {} open streams (server.max_streams_per_caller); close one first", self.limit),
            ));
        }
        *n += 1;
        Ok(StreamSlot { caller: caller.to_string(), open: self.open.clone() })
    }

    /// Open streams of `caller` (for tests and metrics).
    pub fn open_for(&self, caller: &str) -> usize {
        self.open.lock().get(caller).copied().unwrap_or(0)
    }
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut open = self.open.lock();
        if let Some(n) = open.get_mut(&self.caller) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.caller);
            }
        }
    }
}

/// Who holds a stream, for [`StreamSlots`]: the API key (by digest), the user of a user
/// token, or the peer address when auth is off. Set by the authentication middleware.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller(pub String);

/// A stream slot taken for the calling principal, as a handler argument: WebSocket and SSE
/// handlers take one and keep it alive as long as their stream (move it into the socket
/// task or the body stream). Extracting it answers 429 when the caller has too many.
pub struct StreamPermit(#[allow(dead_code)] StreamSlot);

impl axum::extract::FromRequestParts<super::AppState> for StreamPermit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &super::AppState) -> Result<Self, ApiError> {
        let caller = parts.extensions.get::<Caller>().map(|c| c.0.as_str()).unwrap_or("unknown");
        state.streams.acquire(caller).map(StreamPermit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_slots_are_counted_per_caller_and_released_on_drop() {
        let slots = StreamSlots::new(2);
        let a1 = slots.acquire("a").unwrap();
        let _a2 = slots.acquire("a").unwrap();
        assert_eq!(slots.acquire("a").unwrap_err().code, ErrorCode::TooManyStreams);
        let _b = slots.acquire("b").expect("another caller has its own slots");
        drop(a1);
        assert_eq!(slots.open_for("a"), 1);
        let _a3 = slots.acquire("a").expect("a dropped slot is free again");
    }
}
