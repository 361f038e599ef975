//! Every HTTP route that takes a request body, end to end: the input is sent as the body
//! to hearth's real router (all modules on, auth off, an in-memory redb database, no job
//! workers so that nothing leaves the process), and the answer must be a success or a
//! client error with the JSON error body — never a panic or a 500.
//!
//! The routes come from hearth's own OpenAPI document, so a new route is fuzzed without
//! touching this file. The first byte picks the route, the second the path parameter
//! (`fz`, `a` or `b`; a progress and a job `fz` exist, and bodies may create `a` or `b`),
//! the rest is the body. So a job enqueued as `a`, claimed and failed over three inputs
//! goes through the worker protocol as it would over HTTP.
//!
//! The service keeps state between inputs (as a server does), so a crash found here may
//! need the inputs before it to reproduce; the artifact is still the one that crashed.

#![no_main]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use hearth::store::{Store, StoreOptions};
use hearth::{App, Config};
use libfuzzer_sys::fuzz_target;
use std::path::Path;
use std::sync::{Arc, OnceLock};
use tokio::runtime::Runtime;
use tower::ServiceExt;

struct Server {
    runtime: Runtime,
    router: Router,
    /// `(method, path)` of every operation with a request body.
    routes: Vec<(Method, String)>,
    _app: Arc<App>,
}

fn repo(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(rel).display().to_string()
}

async fn send(router: &Router, method: Method, path: &str, body: Vec<u8>) -> (StatusCode, Vec<u8>) {
    let req =
        Request::builder().method(method).uri(path).header("content-type", "application/json").body(Body::from(body)).expect("request");
    let resp = router.clone().oneshot(req).await.expect("the router is infallible");
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX).await.expect("body");
    (status, bytes.to_vec())
}

fn server() -> &'static Server {
    static SERVER: OnceLock<Server> = OnceLock::new();
    SERVER.get_or_init(|| {
        let dir = Box::leak(Box::new(tempfile::tempdir().expect("tempdir")));
        let mut config = Config::default();
        config.server.data_dir = dir.path().to_path_buf();
        config.auth.disabled = true;
        // No worker pools: jobs (exports, webhook and email deliveries) are accepted but
        // never run, so no input makes hearth connect anywhere.
        config.job_queue.workers.clear();
        config.search.embeddings.model_dir = dir.path().join("no-model").display().to_string();
        config.notification.templates.dir = repo("templates/notifications");
        config.export.template_dir = repo("templates/exports");
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let options = StoreOptions { min_free_bytes: 0, ..Default::default() };
        let store = Store::open_with_backend(dir.path(), options, || Ok(redb::backends::InMemoryBackend::new())).expect("in-memory store");
        let app = runtime.block_on(App::builder(config).store(store).build()).expect("app builds");
        let router = hearth::http::router(app.clone());
        let (routes, _) = runtime.block_on(async {
            let (_, spec) = send(&router, Method::GET, "/openapi.json", Vec::new()).await;
            let spec: serde_json::Value = serde_json::from_slice(&spec).expect("openapi.json");
            let mut routes = Vec::new();
            for (path, ops) in spec["paths"].as_object().expect("paths") {
                for (method, op) in ops.as_object().expect("operations") {
                    if op.get("requestBody").is_some() {
                        let path = path.split('/').map(|s| if s.starts_with('{') { "{}" } else { s }).collect::<Vec<_>>().join("/");
                        routes.push((method.to_uppercase().parse().expect("method"), path));
                    }
                }
            }
            for (m, p, b) in [
                (Method::POST, "/api/progress", r#"{"id":"fz","stages":["a","b"]}"#),
                (Method::POST, "/api/jobs", r#"{"id":"fz","name":"fuzz"}"#),
                (Method::POST, "/api/jobs/claim", r#"{"worker_id":"fz"}"#),
                (Method::POST, "/api/schedules", r#"{"name":"fz","cron":"0 0 * * *","job":{"name":"fuzz"}}"#),
            ] {
                send(&router, m, p, b.into()).await;
            }
            (routes, ())
        });
        assert!(routes.len() >= 10, "the OpenAPI document lists the body routes: {routes:?}");
        for (i, (m, p)) in routes.iter().enumerate() {
            eprintln!("route {i}: {m} {p}");
        }
        Server { runtime, router, routes, _app: app }
    })
}

/// A long-poll claim would hold the fuzzer for up to 30 s: its wait is dropped.
fn without_wait(body: &[u8]) -> Vec<u8> {
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut m)) => {
            m.remove("wait_ms");
            serde_json::to_vec(&m).expect("json")
        }
        _ => body.to_vec(),
    }
}

/// The path parameters inputs choose from.
const IDS: [&str; 3] = ["fz", "a", "b"];

fuzz_target!(|data: &[u8]| {
    let [which, id, body @ ..] = data else { return };
    let s = server();
    let (method, path) = &s.routes[*which as usize % s.routes.len()];
    let path = path.replace("{}", IDS[*id as usize % IDS.len()]);
    let body = if path.ends_with("/claim") { without_wait(body) } else { body.to_vec() };
    let (status, answer) = s.runtime.block_on(send(&s.router, method.clone(), &path, body));
    if std::env::var_os("HEARTH_FUZZ_VERBOSE").is_some() {
        eprintln!("{method} {path} -> {status} {}", String::from_utf8_lossy(&answer));
    }
    assert!(status != StatusCode::INTERNAL_SERVER_ERROR, "{method} {path} answered 500: {}", String::from_utf8_lossy(&answer));
    if status.is_client_error() || status.is_server_error() {
        let v: serde_json::Value = serde_json::from_slice(&answer)
            .unwrap_or_else(|_| panic!("{method} {path} answered {status} without a JSON body: {}", String::from_utf8_lossy(&answer)));
        assert!(v["error"]["code"].is_string(), "{method} {path} answered {status} without the error body: {v}");
    }
});
