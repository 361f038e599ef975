//! The REST contract: the seed's create/update/get/complete/fail plus list, advance,
//! cancel and delete, with every validation error.

use super::{create, patch};
use crate::common::{TestServer, assert_error};
use serde_json::{Value, json};

#[tokio::test]
async fn the_seed_contract_end_to_end() {
    let s = TestServer::start().await;
    let (st, p) = s
        .post("/api/progress", json!({"id": "file-123", "stages": ["upload", "process", "complete"], "metadata": {"file_id": "123"}}))
        .await;
    assert_eq!(st, 201, "{p}");
    assert_eq!(p["id"], "file-123");
    assert_eq!(p["stages"], json!(["upload", "process", "complete"]));
    assert_eq!(p["weights"], json!([1.0, 1.0, 1.0]));
    assert_eq!((p["status"].as_str(), p["stage"].as_str(), p["progress"].as_f64()), (Some("pending"), Some("upload"), Some(0.0)));
    assert_eq!(p["metadata"], json!({"file_id": "123"}));
    for field in ["result", "error", "eta_seconds", "started_at", "finished_at"] {
        assert!(p[field].is_null(), "{field} should start null: {p}");
    }
    assert!(p["created_at"].is_string() && p["updated_at"].is_string());

    let p = patch(&s, "file-123", json!({"progress": 50, "stage": "upload"})).await;
    assert_eq!((p["status"].as_str(), p["progress"].as_f64(), p["overall"].as_f64()), (Some("processing"), Some(50.0), Some(16.666667)));
    assert!(p["started_at"].is_string());
    let p = patch(&s, "file-123", json!({"progress": 25, "stage": "process"})).await;
    assert_eq!((p["stage"].as_str(), p["overall"].as_f64()), (Some("process"), Some(41.666667)));

    let (st, got) = s.get("/api/progress/file-123").await;
    assert_eq!((st, got), (200, p));

    let (st, done) = s.post("/api/progress/file-123/complete", json!({"result": {"url": "/x"}})).await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(
        (done["status"].as_str(), done["overall"].as_f64(), done["eta_seconds"].as_u64()),
        (Some("completed"), Some(100.0), Some(0))
    );
    assert_eq!(done["result"], json!({"url": "/x"}));
    assert!(done["finished_at"].is_string());
    let (st, again) = s.get("/api/progress/file-123").await;
    assert_eq!((st, again["status"].as_str()), (200, Some("completed")));

    // Any change to a finished progress is a conflict.
    let (st, b) = s.patch("/api/progress/file-123", json!({"progress": 10})).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    for path in ["complete", "cancel", "advance"] {
        let (st, b) = s.post(&format!("/api/progress/file-123/{path}"), json!({})).await;
        assert_eq!(assert_error(st, &b, 409), "conflict", "{path}");
    }
    let (st, b) = s.post("/api/progress/file-123/fail", json!({"error": "late"})).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
}

#[tokio::test]
async fn fail_cancel_advance_delete_and_generated_ids() {
    let s = TestServer::start().await;
    let (st, p) = s.post("/api/progress", json!({})).await;
    assert_eq!(st, 201);
    let id = p["id"].as_str().unwrap().to_string();
    assert_eq!(id.len(), 36, "a generated UUID: {id}");
    assert!(p["stage"].is_null());
    assert_eq!(p["metadata"], json!({}));
    let (st, f) = s.post(&format!("/api/progress/{id}/fail"), json!({"error": "Error message"})).await;
    assert_eq!((st, f["status"].as_str(), f["error"].as_str()), (200, Some("failed"), Some("Error message")));

    create(&s, "adv", json!(["a", {"name": "b", "weight": 3}])).await;
    let (st, a) = s.post("/api/progress/adv/advance", Value::Null).await;
    assert_eq!((st, a["stage"].as_str(), a["overall"].as_f64(), a["status"].as_str()), (200, Some("b"), Some(25.0), Some("processing")));
    let (st, b) = s.post("/api/progress/adv/advance", Value::Null).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    let (st, c) = s.post("/api/progress/adv/cancel", Value::Null).await;
    assert_eq!((st, c["status"].as_str()), (200, Some("cancelled")));
    // complete accepts an empty body too.
    create(&s, "plain", json!([])).await;
    let r = s.client.post(s.url("/api/progress/plain/complete")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);

    let (st, _) = s.delete("/api/progress/adv").await;
    assert_eq!(st, 204);
    let (st, b) = s.get("/api/progress/adv").await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
    let (st, b) = s.delete("/api/progress/adv").await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
    // The id is free again.
    create(&s, "adv", json!([])).await;
}

#[tokio::test]
async fn bad_input_is_a_4xx_naming_the_field() {
    let s = TestServer::start().await;
    create(&s, "v", json!(["a", "b", "c"])).await;
    let field = |b: &Value| b["error"]["field"].as_str().unwrap_or("").to_string();

    for (body, want) in [
        (json!({"progress": 150}), "progress"),
        (json!({"progress": -1}), "progress"),
        (json!({"progress": "half"}), "progress"),
        (json!({"progress": 5, "stage": "nope"}), "stage"),
        (json!({"progress": 5, "stage": 3}), "stage"),
        (json!({}), "progress"),
        (json!({"progress": 5, "bogus": 1}), "bogus"),
    ] {
        let (st, b) = s.patch("/api/progress/v", body.clone()).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_field", "{body}");
        assert!(field(&b).starts_with(want), "{body} -> {b}");
    }
    patch(&s, "v", json!({"progress": 10, "stage": "c"})).await;
    let (st, b) = s.patch("/api/progress/v", json!({"progress": 10, "stage": "a"})).await;
    assert_eq!(assert_error(st, &b, 409), "conflict");
    assert!(b["error"]["message"].as_str().unwrap().contains("allow_backwards"));
    let p = patch(&s, "v", json!({"progress": 10, "stage": "a", "allow_backwards": true})).await;
    assert_eq!(p["stage"], "a");

    for (body, want) in [
        (json!({"id": "v"}), None),
        (json!({"id": "has space"}), Some("id")),
        (json!({"id": ""}), Some("id")),
        (json!({"stages": ["a", "a"]}), Some("stages[1].name")),
        (json!({"stages": ["a", {"name": "b", "weight": 0}]}), Some("stages[1].weight")),
        (json!({"stages": ["a", {"name": "b", "weight": -2}]}), Some("stages[1].weight")),
        (json!({"stages": [7]}), Some("stages[0]")),
        (json!({"metadata": [1, 2]}), Some("metadata")),
        (json!({"stages": "abc"}), Some("stages")),
    ] {
        let (st, b) = s.post("/api/progress", body.clone()).await;
        match want {
            None => assert_eq!(assert_error(st, &b, 409), "conflict"),
            Some(f) => {
                assert_eq!(assert_error(st, &b, 400), "invalid_field", "{body} -> {b}");
                assert!(field(&b).starts_with(f), "{body} -> {b}");
            }
        }
    }
    let r = s.client.post(s.url("/api/progress")).header("content-type", "application/json").body("{nope").send().await.unwrap();
    let (st, b) = crate::common::split(r).await;
    assert_eq!(assert_error(st, &b, 400), "malformed_json");
    let r = s.client.post(s.url("/api/progress/v/complete")).header("content-type", "text/plain").body("x").send().await.unwrap();
    let (st, b) = crate::common::split(r).await;
    assert_eq!(assert_error(st, &b, 415), "unsupported_media_type");
    let (st, b) = s.post("/api/progress/v/fail", json!({})).await;
    assert_eq!((assert_error(st, &b, 400), field(&b)), ("invalid_field".into(), "error".into()));
    let (st, b) = s.post("/api/progress/v/fail", json!({"error": "  "})).await;
    assert_eq!((assert_error(st, &b, 400), field(&b)), ("invalid_field".into(), "error".into()));

    for (method, path) in [
        ("GET", "/api/progress/ghost"),
        ("PATCH", "/api/progress/ghost"),
        ("POST", "/api/progress/ghost/complete"),
        ("POST", "/api/progress/ghost/fail"),
        ("POST", "/api/progress/ghost/advance"),
        ("POST", "/api/progress/ghost/cancel"),
        ("DELETE", "/api/progress/ghost"),
        ("GET", "/api/progress/ghost/events"),
    ] {
        let body = match (method, path.rsplit('/').next().unwrap()) {
            (_, "fail") => json!({"error": "x"}),
            ("PATCH", _) => json!({"progress": 1}),
            _ => json!({}),
        };
        let req = s.client.request(method.parse().unwrap(), s.url(path));
        let req = if method == "GET" || method == "DELETE" { req } else { req.json(&body) };
        let (st, b) = crate::common::split(req.send().await.unwrap()).await;
        assert_eq!(assert_error(st, &b, 404), "not_found", "{method} {path}");
    }
}

#[tokio::test]
async fn list_pages_with_a_cursor_and_filters_by_status() {
    let s = TestServer::start().await;
    for i in 0..7 {
        create(&s, &format!("job-{i}"), json!(["a"])).await;
    }
    for i in [1, 4] {
        s.post(&format!("/api/progress/job-{i}/complete"), json!({})).await;
    }
    patch(&s, "job-2", json!({"progress": 5})).await;
    patch(&s, "job-2", json!({"progress": 42})).await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/progress?limit=3&cursor={c}"),
            None => "/api/progress?limit=3".into(),
        };
        let (st, page) = s.get(&path).await;
        assert_eq!(st, 200, "{page}");
        let items = page["items"].as_array().unwrap();
        assert!(items.len() <= 3);
        seen.extend(items.iter().map(|p| p["id"].as_str().unwrap().to_string()));
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    assert_eq!(seen, (0..7).map(|i| format!("job-{i}")).collect::<Vec<_>>());

    let (_, page) = s.get("/api/progress?status=completed").await;
    let ids: Vec<_> = page["items"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["job-1", "job-4"]);
    // Listing shows the latest percent even before it is flushed to disk.
    let (_, page) = s.get("/api/progress?status=processing").await;
    assert_eq!(page["items"][0]["progress"].as_f64(), Some(42.0));
    let (_, page) = s.get("/api/progress?status=pending&limit=2").await;
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    assert!(page["next_cursor"].is_string());

    for q in ["status=done", "limit=0", "limit=1001", "limit=abc", "cursor=%%%", "cursor=foo%2Fbar"] {
        let (st, b) = s.get(&format!("/api/progress?{q}")).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_query", "{q}");
    }
}

#[tokio::test]
async fn user_tokens_may_read_but_not_write() {
    let s = TestServer::start().await;
    create(&s, "mine", json!([])).await;
    let (st, t) = s.post("/api/auth/tokens", json!({"user_id": "alice"})).await;
    assert_eq!(st, 200, "{t}");
    let token = t["token"].as_str().unwrap();
    let r = s.client.get(s.url("/api/progress/mine")).bearer_auth(token).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = s.client.patch(s.url("/api/progress/mine")).bearer_auth(token).json(&json!({"progress": 1})).send().await.unwrap();
    let (st, b) = crate::common::split(r).await;
    assert_eq!(assert_error(st, &b, 403), "forbidden");
}

#[tokio::test]
async fn metrics_are_exported_with_help() {
    let s = TestServer::start().await;
    create(&s, "m", json!(["a", "b"])).await;
    patch(&s, "m", json!({"progress": 5})).await;
    s.post("/api/progress/m/advance", json!({})).await;
    s.post("/api/progress/m/complete", json!({})).await;
    let text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for name in [
        "hearth_progress_created_total",
        "hearth_progress_updates_total",
        "hearth_progress_stage_changes_total",
        "hearth_progress_finished_total",
    ] {
        assert!(text.contains(&format!("# HELP {name} ")), "no HELP for {name}");
        assert!(text.lines().any(|l| l.starts_with(name) && !l.starts_with('#')), "no sample of {name}");
    }
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool must be installed");
    let progress_lines: String = text.lines().filter(|l| l.contains("hearth_progress_")).map(|l| format!("{l}\n")).collect();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), progress_lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool: {}{}\n{progress_lines}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn every_route_is_in_the_openapi_document() {
    let s = TestServer::start().await;
    let (st, spec) = s.get("/openapi.json").await;
    assert_eq!(st, 200);
    for (path, methods) in [
        ("/api/progress", &["get", "post"][..]),
        ("/api/progress/{id}", &["get", "patch", "delete"][..]),
        ("/api/progress/{id}/advance", &["post"][..]),
        ("/api/progress/{id}/complete", &["post"][..]),
        ("/api/progress/{id}/fail", &["post"][..]),
        ("/api/progress/{id}/cancel", &["post"][..]),
        ("/api/progress/{id}/events", &["get"][..]),
        ("/ws/progress", &["get"][..]),
    ] {
        for m in methods {
            assert!(spec["paths"][path][m].is_object(), "{m} {path} missing from the OpenAPI document");
        }
    }
    assert!(spec["components"]["schemas"]["Progress"]["properties"]["eta_seconds"].is_object());
}
