//! Browser-facing leftovers of issue 19: cached values that could run script on hearth's
//! origin are served as sandboxed attachments, every response is `nosniff`, and
//! notifications carry only safe links (`http`, `https`, `mailto`, relative).

use crate::common::{TestServer, assert_error};
use serde_json::{Value, json};

/// PUTs `body` with `content_type`, then GETs it: status and the headers that matter.
async fn round_trip(s: &TestServer, key: &str, content_type: &str) -> (u16, Option<String>, Option<String>, Option<String>, String) {
    let r = s
        .client
        .put(s.url(&format!("/api/cache/{key}")))
        .header("content-type", content_type)
        .body("<script>alert(1)</script>")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = s.client.get(s.url(&format!("/api/cache/{key}"))).send().await.unwrap();
    let h = |n: &str| r.headers().get(n).map(|v| v.to_str().unwrap().to_string());
    let out = (
        r.status().as_u16(),
        h("content-disposition"),
        h("content-security-policy"),
        h("x-content-type-options"),
        h("content-type").unwrap_or_default(),
    );
    out
}

#[tokio::test]
async fn cached_values_that_could_run_script_are_sandboxed_attachments() {
    let s = TestServer::start().await;
    for (i, ct) in ["text/html", "image/svg+xml", "application/xhtml+xml", "TEXT/HTML; charset=utf-8", "text/xml", "application/x-unknown"]
        .iter()
        .enumerate()
    {
        let (st, disposition, csp, nosniff, served) = round_trip(&s, &format!("bad{i}"), ct).await;
        assert_eq!(st, 200);
        assert_eq!(served, *ct, "the stored type is still returned");
        assert_eq!(disposition.as_deref(), Some("attachment"), "{ct} must be an attachment");
        assert_eq!(csp.as_deref(), Some("sandbox"), "{ct} must be sandboxed");
        assert_eq!(nosniff.as_deref(), Some("nosniff"), "{ct}");
    }
    for (i, ct) in ["text/plain; charset=utf-8", "application/json", "image/png", "application/pdf", "text/csv", "application/octet-stream"]
        .iter()
        .enumerate()
    {
        let (st, disposition, csp, nosniff, _) = round_trip(&s, &format!("ok{i}"), ct).await;
        assert_eq!(st, 200);
        assert_eq!((disposition, csp), (None, None), "{ct} is served inline");
        assert_eq!(nosniff.as_deref(), Some("nosniff"), "every response is nosniff, so {ct} is not sniffed into HTML");
    }
}

async fn send(s: &TestServer, body: Value) -> (u16, Value) {
    s.post("/api/notifications", body).await
}

#[tokio::test]
async fn notification_links_must_be_http_https_mailto_or_relative() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("link");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("subject.txt"), "Hi").unwrap();
    std::fs::write(t.join("body.txt"), "{{ target }}").unwrap();
    std::fs::write(t.join("body.html"), "<p><a href=\"{{ target }}\">open</a></p>").unwrap();
    let templates = dir.path().display().to_string();
    let s = TestServer::start_with(move |c| c.notification.templates.dir = templates).await;
    let base = json!({"type": "info", "title": "t", "user_id": "u1"});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    for bad in [
        "javascript:alert(1)",
        " JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "vbscript:msgbox(1)",
        "\u{1}javascript:x",
    ] {
        // A control character is refused by the older length/character rule, also naming action_url.
        let (st, b) = send(&s, with(json!({"action_url": bad}))).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_field", "{bad:?}");
        assert_eq!(b["error"]["field"], "action_url", "{bad:?}");
        let (st, b) = send(&s, with(json!({"data": {"order": {"details_url": bad}}}))).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_field", "{bad:?}");
        assert_eq!(b["error"]["field"], "data.order.details_url", "{bad:?}");
        let (st, b) = send(&s, with(json!({"template": "link", "data": {"target": bad}}))).await;
        assert_eq!(assert_error(st, &b, 400), "invalid_field", "a value rendered into an href, whatever its key: {bad:?}");
        assert_eq!(b["error"]["field"], "data.target", "{bad:?}");
    }
    let (st, b) = s
        .post("/api/notifications/batch", json!({"type": "info", "title": "t", "user_ids": ["a", "b"], "action_url": "javascript:x"}))
        .await;
    assert_eq!(assert_error(st, &b, 400), "invalid_field");
    assert_eq!(b["error"]["field"], "action_url");
    for good in ["https://app.test/x", "http://app.test", "mailto:help@app.test", "/api/exports/1/download", "settings#mail"] {
        let (st, b) = send(&s, with(json!({"action_url": good, "template": "link", "data": {"target": good, "help_link": good}}))).await;
        assert_eq!(st, 200, "{good}: {b}");
    }
    let (_, feed) = s.get("/api/notifications?user_id=u1").await;
    assert_eq!(feed.as_array().unwrap().len(), 5, "only the safe ones were stored");
}
