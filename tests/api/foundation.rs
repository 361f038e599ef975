//! Foundation tests: HTTP conventions, auth, observability, configuration, crash safety.

use crate::common::{Child, TestServer, assert_error, hearth_bin};
use hearth::config::{ApiKeyConfig, KeyScope};
use serde_json::json;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

pub(crate) const ADMIN: &str = "admin-key-0123456789abcdef";
pub(crate) const READER: &str = "reader-key-0123456789abcdef";

/// An admin and a read-only key.
pub(crate) fn with_keys(c: &mut hearth::Config) {
    c.auth.api_keys = vec![
        ApiKeyConfig { key: ADMIN.into(), scope: KeyScope::Admin, name: None },
        ApiKeyConfig { key: READER.into(), scope: KeyScope::ReadOnly, name: None },
    ];
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let s = TestServer::start().await;
    let (st, body) = s.get("/api/nope").await;
    assert_eq!(assert_error(st, &body, 404), "route_not_found");
    let r = s.client.delete(s.url("/healthz")).send().await.unwrap();
    let (st, body) = crate::common::split(r).await;
    assert_eq!(assert_error(st, &body, 405), "method_not_allowed");
}

#[tokio::test]
async fn bad_bodies_are_4xx_naming_the_problem() {
    let s = TestServer::start_with(|c| c.server.body_limit = 2048).await;
    let url = s.url("/api/auth/tokens");
    let send = |body: &'static str, ct: &'static str| {
        let c = s.client.clone();
        let url = url.clone();
        async move { crate::common::split(c.post(url).header("content-type", ct).body(body).send().await.unwrap()).await }
    };
    let (st, b) = send("{not json", "application/json").await;
    assert_eq!(assert_error(st, &b, 400), "malformed_json");
    let (st, b) = send(r#"{"user_id": 42}"#, "application/json").await;
    assert_eq!(assert_error(st, &b, 400), "invalid_field");
    assert_eq!(b["error"]["field"], "user_id");
    let (st, b) = send(r#"{}"#, "application/json").await;
    assert_eq!(b["error"]["field"], "user_id", "{b}");
    assert_eq!(st, 400);
    let (st, b) = send(r#"{"user_id": "a"}"#, "text/plain").await;
    assert_eq!(assert_error(st, &b, 415), "unsupported_media_type");
    let big = format!(r#"{{"user_id": "{}"}}"#, "x".repeat(5000));
    let r = s.client.post(&url).header("content-type", "application/json").body(big).send().await.unwrap();
    let (st, b) = crate::common::split(r).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    let (st, b) = s.post("/api/auth/tokens", json!({"user_id": "u1", "ttl_seconds": 0})).await;
    assert_eq!(b["error"]["field"], "ttl_seconds");
    assert_eq!(st, 400);
}

#[tokio::test]
async fn health_readiness_and_request_ids() {
    let s = TestServer::start().await;
    let r = s.client.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().get("x-request-id").is_some(), "every response carries a request id");
    let (_, body) = s.get("/readyz").await;
    let modules = body["modules"].as_object().expect("modules map");
    for m in ["store", "progress", "job_queue", "notification", "cache", "export", "search"] {
        assert!(modules.contains_key(m), "readyz lacks {m}: {body}");
        assert!(modules[m]["ready"].is_boolean());
    }
    let r = s.client.get(s.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "abc-123", "a caller's request id is propagated");
}

#[tokio::test]
async fn disabled_modules_answer_503_module_disabled() {
    let s = TestServer::start_with(|c| c.modules.cache.enabled = false).await;
    let (st, body) = s.get("/api/cache/stats").await;
    assert_eq!(assert_error(st, &body, 503), "module_disabled");
    let (_, ready) = s.get("/readyz").await;
    assert_eq!(ready["modules"]["cache"]["ready"], false);
}

#[tokio::test]
async fn metrics_pass_promtool() {
    let s = TestServer::start().await;
    s.get("/healthz").await;
    s.get("/api/does-not-exist").await;
    let text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("hearth_http_requests_total"), "{text}");
    assert!(text.contains("hearth_store_commits_total"));
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool must be installed (.ci/run installs Debian's prometheus)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "promtool: {}{}\n{text}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
}

#[tokio::test]
async fn openapi_document_is_valid() {
    let s = TestServer::start().await;
    let (st, spec) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    assert!(spec["openapi"].as_str().unwrap().starts_with("3."));
    assert!(spec["paths"]["/api/auth/tokens"].is_object());
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("openapi.json");
    std::fs::write(&file, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = Command::new("python3")
        .args(["-m", "openapi_spec_validator"])
        .arg(&file)
        .output()
        .expect("python3 with openapi-spec-validator (.ci/run installs it)");
    assert!(
        out.status.success(),
        "openapi-spec-validator: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn api_keys_scopes_and_user_tokens() {
    let s = TestServer::start_with(with_keys).await;
    let c = &s.client;
    // Liveness needs no key; everything else does.
    assert_eq!(c.get(s.url("/healthz")).send().await.unwrap().status(), 200);
    let (st, b) = s.get("/metrics").await;
    assert_eq!(assert_error(st, &b, 401), "unauthorized");
    let r = c.get(s.url("/metrics")).bearer_auth("wrong-key-0123456789").send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(c.get(s.url("/metrics")).bearer_auth(READER).send().await.unwrap().status(), 200);
    // A read-only key cannot write.
    let r = c.post(s.url("/api/auth/tokens")).bearer_auth(READER).json(&json!({"user_id": "alice"})).send().await.unwrap();
    let (st, b) = crate::common::split(r).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden");
    // An admin mints a user token.
    let r =
        c.post(s.url("/api/auth/tokens")).bearer_auth(ADMIN).json(&json!({"user_id": "alice", "ttl_seconds": 60})).send().await.unwrap();
    let (st, b) = crate::common::split(r).await;
    assert_eq!(st, 200, "{b}");
    let token = b["token"].as_str().unwrap().to_string();
    assert_eq!(b["user_id"], "alice");
    // The token does not open service routes...
    let r = c.get(s.url("/metrics")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(r.status(), 403);
    // A credential in the query string counts only on stream routes.
    let r = c.get(s.url(&format!("/api/jobs?token={token}"))).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // ...and a tampered token is rejected outright.
    let tampered = format!("{}x", token);
    assert_eq!(c.get(s.url("/metrics")).bearer_auth(&tampered).send().await.unwrap().status(), 401);
    // A user token cannot mint tokens.
    let r = c.post(s.url("/api/auth/tokens")).bearer_auth(&token).json(&json!({"user_id": "bob"})).send().await.unwrap();
    assert_eq!(r.status(), 403);
}

#[test]
fn check_config_redacts_secrets_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(hearth_bin())
        .arg("check-config")
        .current_dir(dir.path())
        .env("HEARTH_API_KEY", "very-secret-key-0123456789")
        .env("SMTP_URL", "smtp://mailer:hunter2@mail.example:587")
        .env("HEARTH__CACHE__L1__TTL", "42")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("very-secret-key") && !text.contains("hunter2"), "{text}");
    assert!(text.contains("ttl: 42"), "{text}");
    std::fs::write(dir.path().join("hearth.yaml"), "job_queue:\n  defaults:\n    max_atempts: 3\n").unwrap();
    let out = Command::new(hearth_bin()).arg("check-config").current_dir(dir.path()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("job_queue.defaults") && err.contains("max_atempts"), "{err}");
}

#[test]
fn refuses_public_bind_without_keys_and_corrupt_data() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(hearth_bin())
        .args(["serve", "--bind", "0.0.0.0:0", "--data-dir"])
        .arg(dir.path())
        .current_dir(dir.path())
        .env_remove("HEARTH_API_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("without API keys"));

    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let db = data.join(hearth::store::DB_FILE);
    std::fs::write(&db, vec![0xABu8; 8192]).unwrap();
    let out = Command::new(hearth_bin())
        .args(["serve", "--bind", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success(), "must not start on a corrupt database");
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot open"), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(std::fs::read(&db).unwrap(), vec![0xABu8; 8192], "the corrupt file is left as it was");
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Child::spawn(dir.path(), &[]).await;
    let pid = child.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let start = std::time::Instant::now();
    loop {
        if let Some(status) = child.child.try_wait().unwrap() {
            assert!(status.success(), "graceful exit code, got {status}");
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "did not stop after SIGTERM");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Spawns the real binary writing through the group-commit writer, SIGKILLs it at random
/// moments, and checks that every write it acknowledged is on disk after reopening.
#[test]
fn acknowledged_writes_survive_sigkill() {
    let dir = tempfile::tempdir().unwrap();
    let mut total_acked = 0usize;
    for round in 0..12u64 {
        let mut child = Command::new(hearth_bin())
            .args(["store-probe", "--writers", "32", "--tag", &format!("round{round}"), "--data-dir"])
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| l.strip_prefix("ack ").map(str::to_string))
                .collect::<Vec<_>>()
        });
        // Kill at a pseudo-random moment between 50 and 450 ms.
        let wait = 50 + (round * 7919 + 13) % 400;
        std::thread::sleep(Duration::from_millis(wait));
        child.kill().unwrap();
        child.wait().unwrap();
        let raw: Vec<String> = reader.join().unwrap();
        let missing = hearth::store::probe::missing(dir.path(), &raw).unwrap();
        assert!(
            missing.is_empty(),
            "round {round}: {} acknowledged writes lost, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        total_acked += raw.len();
    }
    assert!(total_acked > 100, "the probe acknowledged too few writes ({total_acked}) for the test to mean anything");
}

/// A receiver that records every webhook request and answers 500 to the first one.
async fn webhook_receiver() -> (String, tokio::sync::mpsc::UnboundedReceiver<(axum::http::HeaderMap, Vec<u8>)>) {
    use axum::{Router, body::Bytes, http::HeaderMap, routing::post};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/hook",
        post(move |headers: HeaderMap, body: Bytes| {
            let tx = tx.clone();
            let calls = calls.clone();
            async move {
                let _ = tx.send((headers, body.to_vec()));
                if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, rx)
}

#[tokio::test]
async fn webhooks_are_signed_and_retried_with_a_stable_delivery_id() {
    let (url, mut rx) = webhook_receiver().await;
    let secret = "whsec-0123456789";
    let s = TestServer::start_with(|c| {
        c.webhooks = vec![hearth::config::WebhookConfig { url: url.clone(), events: vec!["job.completed".into()], secret: secret.into() }];
    })
    .await;
    // An external worker runs a job through the worker protocol.
    let (st, enq) = s.post("/api/jobs", json!({"name": "external.task", "payload": {"n": 1}, "queue": "ext"})).await;
    assert_eq!(st, 201, "{enq}");
    let job_id = enq["job_id"].as_str().unwrap().to_string();
    let (st, claimed) = s.post("/api/jobs/claim", json!({"queues": ["ext"], "worker_id": "w1", "max": 1, "lease_seconds": 30})).await;
    assert_eq!(st, 200, "{claimed}");
    assert_eq!(claimed[0]["id"], job_id.as_str());
    let (st, done) = s.post(&format!("/api/jobs/{job_id}/complete"), json!({"result": {"ok": true}, "worker_id": "w1"})).await;
    assert_eq!(st, 200, "{done}");

    let mut deliveries = Vec::new();
    for _ in 0..2 {
        let got = tokio::time::timeout(Duration::from_secs(15), rx.recv()).await.expect("webhook delivered in time").unwrap();
        deliveries.push(got);
    }
    let (h1, b1) = &deliveries[0];
    let (h2, b2) = &deliveries[1];
    assert_eq!(h1["x-hearth-event"], "job.completed");
    assert_eq!(h1["x-hearth-delivery"], h2["x-hearth-delivery"], "a retry keeps the delivery id");
    assert_eq!(b1, b2, "a retry sends the same body");
    let body: serde_json::Value = serde_json::from_slice(b2).unwrap();
    assert_eq!(body["event"], "job.completed");
    assert_eq!(body["data"]["id"], job_id.as_str());
    // Verify the signature as a receiver would: HMAC-SHA256(secret, "<timestamp>.<body>").
    use hmac::{Hmac, Mac};
    let ts = h2["x-hearth-timestamp"].to_str().unwrap();
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{ts}.").as_bytes());
    mac.update(b2);
    let expected = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
    assert_eq!(h2["x-hearth-signature"].to_str().unwrap(), expected);
}

/// schemathesis generates requests from /openapi.json — valid and invalid, with and
/// without credentials, with undocumented methods — against every route of a server with
/// API keys, and runs every check (its default): no 5xx; each status, content type,
/// header and body as the document says; what the document calls invalid rejected and
/// what it calls valid accepted; auth enforced where declared; 405 with `Allow` for other
/// methods. `tests/api/schemathesis.toml` lists the few rules JSON Schema cannot state.
/// The examples per operation are bounded and the seed fixed, so a run takes about two
/// minutes on two cores and repeats exactly; `HEARTH_SCHEMATHESIS_EXAMPLES` raises the
/// bound. (The server has no SMTP relay, so its email channel is off, as configured.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_the_server_true_to_its_openapi_document() {
    let s = TestServer::start_with(|c| {
        with_keys(c);
        c.notification.channels.email.enabled = false;
        // Claims long-poll up to this (the schema says so): generated claims do not idle.
        c.job_queue.max_claim_wait_ms = 100;
    })
    .await;
    let url = s.url("/openapi.json");
    let examples = std::env::var("HEARTH_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let settings = crate::common::repo_path("tests/api/schemathesis.toml");
    let auth = format!("Authorization: Bearer {ADMIN}");
    let out = tokio::process::Command::new("schemathesis")
        .arg("--config-file")
        .arg(&settings)
        .args(["run", &url, "--max-examples", &examples, "--seed", "18", "--workers", "1", "--no-color"])
        .args(["--generation-database", "none", "--request-timeout", "40", "--header", &auth])
        // The event streams never end on a valid request (`tests/api/jobs/live.rs`,
        // `tests/api/progress/`): each would hold a worker for the whole request timeout.
        .args(["--exclude-path", "/api/jobs/events", "--exclude-path", "/api/progress/{id}/events"])
        .env("SCHEMATHESIS_HOOKS", "")
        .output()
        .await
        .expect("schemathesis must be installed (.ci/run installs it from PyPI)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "schemathesis found failures:\n{text}\n{}", String::from_utf8_lossy(&out.stderr));
}

/// A client generated from /openapi.json by a real generator (openapi-python-client, from
/// PyPI) talks to the server: typed requests, typed answers, and every error answer
/// parsed as the error body it documents (the client raises on an undocumented status).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_works_against_the_server() {
    let s = TestServer::start_with(with_keys).await;
    let (st, spec) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("openapi.json");
    std::fs::write(&doc, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = Command::new("openapi-python-client")
        .args(["generate", "--meta", "none", "--path"])
        .arg(&doc)
        .arg("--output-path")
        .arg(dir.path().join("hearth_client"))
        .output()
        .expect("openapi-python-client must be installed (.ci/run installs it from PyPI)");
    let log = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && !log.contains("will not be generated"), "generation: {log}");
    let script = r#"
import sys
from hearth_client import AuthenticatedClient, Client
from hearth_client.api.progress import progress_create, progress_get_one
from hearth_client.api.cache import cache_incr, cache_list_keys, cache_mget, cache_put_value
from hearth_client.models import ErrorBody, IncrResponse, KeyPage, MgetRequest, MgetResponse, NewProgress
from hearth_client.types import File
url, key = sys.argv[1], sys.argv[2]
c = AuthenticatedClient(base_url=url, token=key, raise_on_unexpected_status=True)
p = progress_create.sync(client=c, body=NewProgress(id="gen-1", stages=["a", "b"]))
assert p.id == "gen-1" and p.stages == ["a", "b"], p
assert progress_get_one.sync("gen-1", client=c).to_dict()["status"] == "pending"
bad = progress_create.sync(client=c, body=NewProgress(id="not an id!"))
assert isinstance(bad, ErrorBody) and bad.error.code == "invalid_field", bad
r = cache_incr.sync("hits", client=c, by=5)
assert isinstance(r, IncrResponse) and r.value == 5, r
stored = cache_put_value.sync("blob", client=c, body=File(payload=b"\x00\xff"))
assert stored.to_dict()["bytes"] == 2, stored
page = cache_list_keys.sync(client=c, pattern="h*")
assert isinstance(page, KeyPage) and page.keys == ["hits"] and page.cursor is None, page
m = cache_mget.sync(client=c, body=MgetRequest(keys=["hits", "nope", "blob"]))
assert isinstance(m, MgetResponse), m
assert (m.entries[0].value, m.entries[1].found, m.entries[2].to_dict()["encoding"]) == ("5", False, "base64"), m
conflict = cache_incr.sync("blob", client=c)
assert isinstance(conflict, ErrorBody) and conflict.error.code == "conflict", conflict
anon = cache_list_keys.sync(client=Client(base_url=url, raise_on_unexpected_status=True))
assert isinstance(anon, ErrorBody) and anon.error.code == "unauthorized", anon
print("ok")
"#;
    let out = Command::new("python3").args(["-c", script, &s.url(""), ADMIN]).env("PYTHONPATH", dir.path()).output().expect("python3");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && text.trim() == "ok", "generated client: {text}{}", String::from_utf8_lossy(&out.stderr));
}

/// A graceful stop releases the database, so the same data dir opens again at once (as
/// a process restart would) with its data.
#[tokio::test]
async fn a_stopped_server_releases_its_data_dir() {
    let s = TestServer::start().await;
    let (st, _) = s.post("/api/progress", json!({"id": "restart-me", "stages": ["a"]})).await;
    assert_eq!(st, 201);
    let dir = s.stop().await.unwrap();
    let s = TestServer::start_in(dir.path(), |_| {}).await;
    let (st, body) = s.get("/api/progress/restart-me").await;
    assert_eq!(st, 200, "{body}");
}
