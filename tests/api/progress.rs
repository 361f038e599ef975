//! Integration tests of the progress module: REST contract and validation, the
//! `/ws/progress` WebSocket, SSE, and a crash test on the real binary.

mod crash;
mod rest;
mod sse;
mod ws;

use crate::common::TestServer;
use serde_json::{Value, json};

/// Creates a progress with `stages` and asserts 201.
pub async fn create(s: &TestServer, id: &str, stages: Value) -> Value {
    let (st, body) = s.post("/api/progress", json!({"id": id, "stages": stages})).await;
    assert_eq!(st, 201, "{body}");
    body
}

/// PATCHes a percent and asserts 200.
pub async fn patch(s: &TestServer, id: &str, body: Value) -> Value {
    let (st, body) = s.patch(&format!("/api/progress/{id}"), body).await;
    assert_eq!(st, 200, "{body}");
    body
}
