//! Limits and headers applied to every request before it reaches a handler.
//!
//! - The request target and the headers are measured against `server.max_uri_bytes` and
//!   `server.max_header_bytes` ([`HeadLimits::check`], run by the router's first
//!   middleware); over either, the answer is 414 or 431 with the JSON error body (hyper's
//!   own, higher caps answer with an empty body, so hearth checks first).
//! - Every response carries `X-Content-Type-Options: nosniff`, so a browser never guesses
//!   a type other than the one hearth declared.
//! - [`StreamSlots`] caps the WebSocket/SSE streams one caller holds open at once.

use crate::error::{ApiError, ErrorCode};
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::response::Response;
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

impl HeadLimits {
    /// A 414 or 431 when the request's target or headers are over the limits.
    pub fn check(&self, req: &Request) -> Result<(), ApiError> {
        let target = req.uri().path_and_query().map(|p| p.as_str().len()).unwrap_or(0);
        if target > self.max_uri_bytes {
            return Err(ApiError::new(
                ErrorCode::UriTooLong,
                format!("the request target is {target} bytes; the limit is {}", self.max_uri_bytes),
            ));
        }
        let head: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len()).sum();
        if head > self.max_header_bytes {
            return Err(ApiError::new(
                ErrorCode::HeadersTooLarge,
                format!("the request headers are {head} bytes; the limit is {}", self.max_header_bytes),
            ));
        }
        Ok(())
    }
}

/// Marks a response `X-Content-Type-Options: nosniff` (unless it already says).
pub fn nosniff(mut resp: Response) -> Response {
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

/// A stream slot taken for the calling principal, as a handler argument: WebSocket and SSE
/// handlers take one and keep it alive as long as their stream (move it into the socket
/// task or the body stream). Extracting it answers 429 when the caller has too many.
pub struct StreamPermit(#[allow(dead_code)] StreamSlot);

impl axum::extract::FromRequestParts<super::AppState> for StreamPermit {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &super::AppState) -> Result<Self, ApiError> {
        // Worked out here, not for every request: only streams need it.
        if let Some(super::auth::StreamCaller(caller)) = parts.extensions.get::<super::auth::StreamCaller>() {
            // Opened with a stream ticket: the slots of whoever asked for the ticket.
            return state.streams.acquire(caller).map(StreamPermit);
        }
        let principal = parts.extensions.get::<super::auth::Principal>().cloned().unwrap_or(super::auth::Principal::Open);
        let credential = super::auth::credential_of(&parts.headers, parts.uri.query(), parts.uri.path());
        let peer = parts.extensions.get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0.ip());
        let caller = super::auth::caller_id(&principal, credential.as_deref(), peer);
        state.streams.acquire(&caller).map(StreamPermit)
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
