//! A web page the user has open cannot use hearth through their browser: no cross-origin
//! WebSocket or write, no DNS-rebinding `Host`, no form POSTs; CORS only for the origins
//! configured (see `src/http/browser.rs`).

use crate::common::TestServer;
use serde_json::json;
use tokio_tungstenite::connect_async;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

const ADMIN: &str = "admin-key-0123456789";

/// Opens `/ws/progress` with `origin`; the HTTP status of the handshake.
async fn ws_status(s: &TestServer, origin: Option<&str>) -> u16 {
    let mut req = s.ws_url("/ws/progress").into_client_request().unwrap();
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match connect_async(req).await {
        Ok((_, resp)) => resp.status().as_u16(),
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => resp.status().as_u16(),
        Err(e) => panic!("handshake failed: {e}"),
    }
}

#[tokio::test]
async fn a_cross_origin_websocket_is_refused_and_same_origin_or_none_is_not() {
    let s = TestServer::start().await;
    assert_eq!(ws_status(&s, Some("http://evil.example")).await, 403);
    assert_eq!(ws_status(&s, Some(&format!("http://{}", s.addr))).await, 101, "same origin");
    assert_eq!(ws_status(&s, None).await, 101, "programs send no Origin");
    let listed = TestServer::start_with(|c| c.server.cors.allowed_origins = vec!["https://app.example".into()]).await;
    assert_eq!(ws_status(&listed, Some("https://app.example")).await, 101, "a configured origin");
}

#[tokio::test]
async fn a_foreign_host_is_refused_when_auth_is_off() {
    let job = json!({"name": "noop", "payload": {}});
    let post = |s: &TestServer, host: &'static str| s.client.post(s.url("/api/jobs")).header("host", host).json(&job).send();
    let open = TestServer::start().await;
    let r = post(&open, "evil.example").await.unwrap();
    assert_eq!(r.status(), 403, "DNS rebinding: a foreign Host with auth off");
    let body: serde_json::Value = r.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap_or(&body.to_string()).contains("evil.example"), "{body}");
    assert_eq!(post(&open, "localhost").await.unwrap().status(), 201);

    let listed = TestServer::start_with(|c| c.server.public_hosts = vec!["hearth.internal".into()]).await;
    assert_eq!(post(&listed, "hearth.internal:8080").await.unwrap().status(), 201, "a listed public host");
    let keyed = TestServer::start_with(|c| {
        c.auth.api_keys = vec![hearth::config::ApiKeyConfig { key: ADMIN.into(), scope: hearth::config::KeyScope::Admin, name: None }]
    })
    .await;
    let r = keyed.client.post(keyed.url("/api/jobs")).header("host", "evil.example").bearer_auth(ADMIN).json(&job).send().await.unwrap();
    assert_eq!(r.status(), 201, "with API keys a page has no credential, so the Host does not matter");
}

#[tokio::test]
async fn cross_origin_writes_and_form_posts_are_refused() {
    let s = TestServer::start().await;
    let (st, _) = s.post("/api/jobs", json!({"name": "noop", "payload": {}})).await;
    assert_eq!(st, 201);
    let r = s.client.post(s.url("/api/queues/default/pause")).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403, "a write from another site");
    let r = s.client.post(s.url("/api/queues/default/pause")).header("content-type", "text/plain").body("x").send().await.unwrap();
    assert_eq!(r.status(), 415, "a form-like POST without a preflight");
    let (_, queues) = s.get("/api/queues").await;
    assert!(!queues.to_string().contains("\"paused\":true"), "nothing was paused: {queues}");
    let r = s.client.get(s.url("/api/queues")).header("origin", "http://evil.example").send().await.unwrap();
    assert_eq!(r.status(), 200, "reads answer; without CORS the browser hides them from the page");
    assert!(r.headers().get("access-control-allow-origin").is_none(), "CORS is off by default");
}

#[tokio::test]
async fn cors_answers_only_the_configured_origins() {
    let s = TestServer::start_with(|c| c.server.cors.allowed_origins = vec!["https://app.example".into()]).await;
    let preflight = |origin: &'static str| {
        s.client
            .request(reqwest::Method::OPTIONS, s.url("/api/jobs"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(ok.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap()), Some("https://app.example"));
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "another origin gets no CORS answer");
    let r = s.client.post(s.url("/api/jobs")).header("origin", "https://app.example").json(&json!({"name": "noop"})).send().await.unwrap();
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers().get("access-control-allow-origin").unwrap(), "https://app.example");
}
