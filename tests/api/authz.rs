//! The authorization policy (`src/http/auth.rs`, "Authorization policy"), checked route by
//! route for every route of the router: each row says what a read-only key and a user
//! token may do; nobody without credentials passes anything but the public routes, an
//! admin key passes everything, and an admin key in `?token=` counts only on stream
//! routes. The table must cover exactly the routes of `/openapi.json`, so a new route
//! cannot be added without deciding who may call it.

use crate::common::TestServer;
use crate::foundation::{ADMIN, READER, with_keys};
use serde_json::{Value, json};
use std::collections::BTreeSet;

/// The class of answer a caller gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// Past authorization: any status but 401, 403 and 500.
    Pass,
    /// 403 forbidden.
    Forbidden,
    /// 401 unauthorized.
    Unauthorized,
}
use Expect::{Forbidden as F, Pass as P};

/// One request and who may make it.
struct Row {
    method: &'static str,
    /// The route as `/openapi.json` names it.
    route: &'static str,
    /// The concrete path (and query) requested.
    path: String,
    body: Option<Value>,
    reader: Expect,
    user: Expect,
}

fn row(method: &'static str, route: &'static str, path: impl Into<String>, body: Option<Value>, reader: Expect, user: Expect) -> Row {
    Row { method, route, path: path.into(), body, reader, user }
}

/// What the table's requests refer to, created by the admin.
struct Fixture {
    /// A user token for `alice`.
    alice: String,
    /// Notifications of alice: one to read, one to delete; and one of bob's.
    n_read: String,
    n_delete: String,
    n_bob: String,
    /// Exports: two owned by alice (one to read, one to delete), one made with an API key.
    e_alice: String,
    e_alice_delete: String,
    e_service: String,
    /// Jobs: one to read and act on, one to delete.
    job: String,
    job_delete: String,
}

async fn call(s: &TestServer, method: &str, path: &str, body: Option<&Value>, bearer: Option<&str>) -> (u16, Value) {
    let mut r = s.client.request(method.parse().unwrap(), s.url(path)).timeout(std::time::Duration::from_secs(20));
    if let Some(b) = body {
        r = r.json(b);
    }
    if let Some(t) = bearer {
        r = r.bearer_auth(t);
    }
    let resp = r.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = resp.status().as_u16();
    // Streams (SSE) never end: judge them by their status and headers alone.
    if resp.headers().get("content-type").is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/event-stream")) {
        return (status, Value::Null);
    }
    crate::common::split(resp).await
}

async fn ok(s: &TestServer, method: &str, path: &str, body: Value) -> Value {
    let (st, b) = call(s, method, path, Some(&body), Some(ADMIN)).await;
    assert!((200..300).contains(&st), "fixture {method} {path}: {st} {b}");
    b
}

async fn fixture(s: &TestServer) -> Fixture {
    let t = ok(s, "POST", "/api/auth/tokens", json!({"user_id": "alice", "ttl_seconds": 600})).await;
    let alice = t["token"].as_str().unwrap().to_string();
    for id in ["p1", "p2", "p-del"] {
        ok(s, "POST", "/api/progress", json!({"id": id})).await;
    }
    let mut ns = Vec::new();
    for user in ["alice", "alice", "bob"] {
        let n = ok(s, "POST", "/api/notifications", json!({"type": "info", "title": "t", "user_id": user})).await;
        ns.push(n["notification_id"].as_str().unwrap().to_string());
    }
    let export = json!({"format": "txt", "source_type": "document", "source": {"title": "t", "content": "hello"}});
    let mut es = Vec::new();
    for who in [alice.as_str(), alice.as_str(), ADMIN] {
        let (st, b) = call(s, "POST", "/api/exports", Some(&export), Some(who)).await;
        assert_eq!(st, 202, "{b}");
        es.push(b["job_id"].as_str().unwrap().to_string());
    }
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let j = ok(s, "POST", "/api/jobs", json!({"name": "authz", "queue": "authz"})).await;
        jobs.push(j["job_id"].as_str().unwrap().to_string());
    }
    ok(s, "POST", "/api/transcripts", json!({"id": "t1", "segments": [{"start": 0.0, "end": 1.0, "text": "hi"}]})).await;
    ok(s, "POST", "/api/documents", json!({"id": "d1", "content": "hello"})).await;
    ok(s, "PUT", "/api/notifications/preferences/alice", json!({})).await;
    ok(s, "POST", "/api/schedules", json!({"name": "nightly", "cron": "0 0 3 * * *", "job": {"name": "authz", "queue": "authz"}})).await;
    let r = s.client.put(s.url("/api/cache/k1")).bearer_auth(ADMIN).body("v").send().await.unwrap();
    assert_eq!(r.status(), 200);
    let [n_read, n_delete, n_bob] = ns.try_into().unwrap();
    let [e_alice, e_alice_delete, e_service] = es.try_into().unwrap();
    let [job, job_delete] = jobs.try_into().unwrap();
    Fixture { alice, n_read, n_delete, n_bob, e_alice, e_alice_delete, e_service, job, job_delete }
}

/// The policy, one row per route (plus rows for the per-user checks of handlers).
fn table(f: &Fixture) -> Vec<Row> {
    let j = |p: &str| p.replace("{id}", &f.job);
    let inline = json!({"format": "txt", "source_type": "document", "source": {"title": "t", "content": "x"}});
    let with = |extra: Value| {
        let mut b = inline.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Some(b)
    };
    let (webhook, notify_bob) = (with(json!({"webhook_url": "https://example.com/hook"})), with(json!({"notify_user_id": "bob"})));
    vec![
        // System.
        row("GET", "/healthz", "/healthz", None, P, P),
        row("GET", "/readyz", "/readyz", None, P, P),
        row("GET", "/metrics", "/metrics", None, P, F),
        row("POST", "/api/auth/tokens", "/api/auth/tokens", Some(json!({"user_id": "zed", "ttl_seconds": 60})), F, F),
        row("POST", "/api/auth/stream-ticket", "/api/auth/stream-ticket", None, P, P),
        // Progress: reads and streams for everyone with a credential; writes need a key.
        row("POST", "/api/progress", "/api/progress", Some(json!({"id": "p-new"})), F, F),
        row("GET", "/api/progress", "/api/progress", None, P, F),
        row("GET", "/api/progress/{id}", "/api/progress/p1", None, P, P),
        row("PATCH", "/api/progress/{id}", "/api/progress/p2", Some(json!({"progress": 10})), F, F),
        row("POST", "/api/progress/{id}/advance", "/api/progress/p2/advance", Some(json!({})), F, F),
        row("POST", "/api/progress/{id}/complete", "/api/progress/p2/complete", Some(json!({})), F, F),
        row("POST", "/api/progress/{id}/fail", "/api/progress/p2/fail", Some(json!({"error": "x"})), F, F),
        row("POST", "/api/progress/{id}/cancel", "/api/progress/p2/cancel", Some(json!({})), F, F),
        row("GET", "/api/progress/{id}/events", "/api/progress/p1/events", None, P, P),
        row("GET", "/ws/progress", "/ws/progress", None, P, P),
        row("DELETE", "/api/progress/{id}", "/api/progress/p-del", None, F, F),
        // Notifications: a user reaches its own feed; sending needs a key.
        row("POST", "/api/notifications", "/api/notifications", Some(json!({"type": "info", "title": "t", "user_id": "alice"})), F, F),
        row(
            "POST",
            "/api/notifications/batch",
            "/api/notifications/batch",
            Some(json!({"type": "info", "title": "t", "user_ids": ["alice"]})),
            F,
            F,
        ),
        row("GET", "/api/notifications", "/api/notifications?user_id=alice", None, P, P),
        row("GET", "/api/notifications", "/api/notifications?user_id=bob", None, P, F),
        row("GET", "/api/notifications/unread_count", "/api/notifications/unread_count?user_id=alice", None, P, P),
        row("GET", "/api/notifications/unread_count", "/api/notifications/unread_count?user_id=bob", None, P, F),
        row("GET", "/api/notifications/{id}", format!("/api/notifications/{}", f.n_read), None, P, P),
        row("GET", "/api/notifications/{id}", format!("/api/notifications/{}", f.n_bob), None, P, F),
        row("POST", "/api/notifications/{id}/read", format!("/api/notifications/{}/read", f.n_read), Some(json!({})), F, P),
        row("POST", "/api/notifications/{id}/read", format!("/api/notifications/{}/read", f.n_bob), Some(json!({})), F, F),
        row("POST", "/api/notifications/read_all", "/api/notifications/read_all", Some(json!({"user_id": "alice"})), F, P),
        row("POST", "/api/notifications/read_all", "/api/notifications/read_all", Some(json!({"user_id": "bob"})), F, F),
        row("GET", "/api/notifications/preferences/{user_id}", "/api/notifications/preferences/alice", None, P, P),
        row("GET", "/api/notifications/preferences/{user_id}", "/api/notifications/preferences/bob", None, P, F),
        row("PUT", "/api/notifications/preferences/{user_id}", "/api/notifications/preferences/alice", Some(json!({})), F, F),
        row("GET", "/ws/notifications", "/ws/notifications?user_id=alice", None, P, P),
        row("DELETE", "/api/notifications/{id}", format!("/api/notifications/{}", f.n_bob), None, F, F),
        row("DELETE", "/api/notifications/{id}", format!("/api/notifications/{}", f.n_delete), None, F, P),
        // Jobs, queues, schedules: API keys only.
        row("POST", "/api/jobs", "/api/jobs", Some(json!({"name": "authz", "queue": "authz"})), F, F),
        row("POST", "/api/jobs/batch", "/api/jobs/batch", Some(json!([{"name": "authz", "queue": "authz"}])), F, F),
        row("GET", "/api/jobs", "/api/jobs", None, P, F),
        row("GET", "/api/jobs/{id}", j("/api/jobs/{id}"), None, P, F),
        row("POST", "/api/jobs/claim", "/api/jobs/claim", Some(json!({"worker_id": "w", "queues": ["authz"], "max": 1})), F, F),
        row("POST", "/api/jobs/{id}/heartbeat", j("/api/jobs/{id}/heartbeat"), Some(json!({"worker_id": "w"})), F, F),
        row("POST", "/api/jobs/{id}/complete", j("/api/jobs/{id}/complete"), Some(json!({"worker_id": "w"})), F, F),
        row("POST", "/api/jobs/{id}/fail", j("/api/jobs/{id}/fail"), Some(json!({"worker_id": "w", "error": "x"})), F, F),
        row("POST", "/api/jobs/complete", "/api/jobs/complete", Some(json!({"worker_id": "w", "jobs": []})), F, F),
        row("POST", "/api/jobs/{id}/retry", j("/api/jobs/{id}/retry"), None, F, F),
        row("GET", "/api/queues", "/api/queues", None, P, F),
        row("POST", "/api/queues/{queue}/pause", "/api/queues/authz/pause", None, F, F),
        row("POST", "/api/queues/{queue}/resume", "/api/queues/authz/resume", None, F, F),
        row("POST", "/api/queues/{queue}/retry_dead", "/api/queues/authz/retry_dead", None, F, F),
        row("DELETE", "/api/queues/{queue}/jobs", "/api/queues/authz/jobs?status=completed", None, F, F),
        // The job event stream: read-only keys watch; user tokens never.
        row("GET", "/api/jobs/events", "/api/jobs/events", None, P, F),
        row("GET", "/ws/jobs", "/ws/jobs", None, P, F),
        // The streaming worker protocol takes and ends jobs: admin keys only.
        row("GET", "/ws/worker", "/ws/worker", None, F, F),
        row("GET", "/api/schedules", "/api/schedules", None, P, F),
        row(
            "POST",
            "/api/schedules",
            "/api/schedules",
            Some(json!({"name": "other", "cron": "0 0 4 * * *", "job": {"name": "authz"}})),
            F,
            F,
        ),
        row("GET", "/api/schedules/{name}", "/api/schedules/nightly", None, P, F),
        row("DELETE", "/api/schedules/{name}", "/api/schedules/nightly", None, F, F),
        row("DELETE", "/api/jobs/{id}", format!("/api/jobs/{}", f.job_delete), None, F, F),
        // Cache: reads with a read-only key; no user tokens.
        row("PUT", "/api/cache/{key}", "/api/cache/k2", Some(json!("v")), F, F),
        row("GET", "/api/cache/{key}", "/api/cache/k1", None, P, F),
        row("HEAD", "/api/cache/{key}", "/api/cache/k1", None, P, F),
        row("GET", "/api/cache", "/api/cache?pattern=k*", None, P, F),
        row("POST", "/api/cache/mget", "/api/cache/mget", Some(json!({"keys": ["k1"]})), P, F),
        row("POST", "/api/cache/{key}/incr", "/api/cache/n1/incr", None, F, F),
        row("GET", "/api/cache/stats", "/api/cache/stats", None, P, F),
        row("POST", "/api/cache/invalidate", "/api/cache/invalidate", Some(json!({"tags": ["x"]})), F, F),
        row("DELETE", "/api/cache", "/api/cache?pattern=zz*", None, F, F),
        row("DELETE", "/api/cache/{key}", "/api/cache/k1", None, F, F),
        // Exports: a user creates its own (no webhook, notifies only itself) and acts on its own.
        row("POST", "/api/exports", "/api/exports", Some(inline.clone()), F, P),
        row("POST", "/api/exports", "/api/exports", webhook, F, F),
        row("POST", "/api/exports", "/api/exports", notify_bob, F, F),
        row("GET", "/api/exports", "/api/exports", None, P, P),
        row("GET", "/api/exports/{id}", format!("/api/exports/{}", f.e_alice), None, P, P),
        row("GET", "/api/exports/{id}", format!("/api/exports/{}", f.e_service), None, P, F),
        row("GET", "/api/exports/{id}/download", format!("/api/exports/{}/download", f.e_alice), None, P, P),
        row("GET", "/api/exports/{id}/download", format!("/api/exports/{}/download", f.e_service), None, P, F),
        row("DELETE", "/api/exports/{id}", format!("/api/exports/{}", f.e_service), None, F, F),
        row("DELETE", "/api/exports/{id}", format!("/api/exports/{}", f.e_alice_delete), None, F, P),
        // Stored sources: shared data, API keys only.
        row("POST", "/api/transcripts", "/api/transcripts", Some(json!({"segments": [{"start": 0.0, "end": 1.0, "text": "x"}]})), F, F),
        row("GET", "/api/transcripts/{id}", "/api/transcripts/t1", None, P, F),
        row("DELETE", "/api/transcripts/{id}", "/api/transcripts/t1", None, F, F),
        row("POST", "/api/documents", "/api/documents", Some(json!({"content": "x"})), F, F),
        row("GET", "/api/documents/{id}", "/api/documents/d1", None, P, F),
        row("DELETE", "/api/documents/{id}", "/api/documents/d1", None, F, F),
        // Search: a search is a read; indexing is a write; no user tokens.
        row("POST", "/api/search", "/api/search", Some(json!({"query": "x", "mode": "keyword"})), P, F),
        row("POST", "/api/search/index", "/api/search/index", Some(json!({"id": "s1", "content": "x"})), F, F),
        row("POST", "/api/search/index/batch", "/api/search/index/batch", Some(json!({"documents": [{"id": "s2", "content": "x"}]})), F, F),
        row("GET", "/api/search/stats", "/api/search/stats", None, P, F),
        row("POST", "/v1/embeddings", "/v1/embeddings", Some(json!({"input": "x", "model": "m"})), P, F),
        row("GET", "/api/search/{id}/similar", "/api/search/s1/similar", None, P, F),
        row("DELETE", "/api/search/{id}", "/api/search/s1", None, F, F),
    ]
}

/// Routes nobody needs a credential for.
const PUBLIC: &[&str] = &["/healthz", "/readyz"];

fn is_stream(route: &str) -> bool {
    route.starts_with("/ws/") || route.ends_with("/events")
}

/// Judges one answer against the expected class.
fn judge(who: &str, r: &Row, expect: Expect, (status, body): (u16, Value), failures: &mut Vec<String>) {
    // A HEAD answer has no body: its status alone tells.
    let code = |c: &str| r.method == "HEAD" || body["error"]["code"] == c;
    let fine = match expect {
        Expect::Pass => !matches!(status, 401 | 403 | 500),
        Expect::Forbidden => status == 403 && code("forbidden"),
        Expect::Unauthorized => status == 401 && code("unauthorized"),
    };
    if !fine {
        failures.push(format!("{who}: {} {} expected {expect:?}, got {status} {body}", r.method, r.path));
    }
}

#[tokio::test]
async fn every_route_answers_each_kind_of_caller_as_the_policy_says() {
    let s = TestServer::start_with(with_keys).await;
    let f = fixture(&s).await;
    let rows = table(&f);

    // The table covers exactly the routes the router serves.
    let (_, spec) = s.get("/openapi.json").await;
    let mut served = BTreeSet::new();
    for (route, item) in spec["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "post", "put", "patch", "delete", "head"].contains(&method.as_str()) {
                served.insert((method.to_uppercase(), route.clone()));
            }
        }
    }
    let listed: BTreeSet<(String, String)> = rows.iter().map(|r| (r.method.to_string(), r.route.to_string())).collect();
    let missing: Vec<_> = served.difference(&listed).collect();
    assert!(missing.is_empty(), "routes without a row in the authorization table: {missing:?}");
    let unknown: Vec<_> = listed.difference(&served).collect();
    assert!(unknown.is_empty(), "rows for routes the router does not serve: {unknown:?}");

    // Writes run before deletes, so each row finds what it refers to; in a row the admin
    // goes last.
    let (mut ordered, deletes): (Vec<&Row>, Vec<&Row>) = rows.iter().partition(|r| r.method != "DELETE");
    ordered.extend(deletes);
    let mut failures = Vec::new();
    for r in ordered {
        let public = PUBLIC.contains(&r.route);
        let body = r.body.as_ref();
        let nobody = if public { Expect::Pass } else { Expect::Unauthorized };
        judge("no credentials", r, nobody, call(&s, r.method, &r.path, body, None).await, &mut failures);
        let sep = if r.path.contains('?') { '&' } else { '?' };
        let in_query = format!("{}{sep}token={ADMIN}", r.path);
        let query_expect = if public || is_stream(r.route) { Expect::Pass } else { Expect::Unauthorized };
        judge("admin key in ?token=", r, query_expect, call(&s, r.method, &in_query, body, None).await, &mut failures);
        judge("read-only key", r, r.reader, call(&s, r.method, &r.path, body, Some(READER)).await, &mut failures);
        judge("user token", r, r.user, call(&s, r.method, &r.path, body, Some(&f.alice)).await, &mut failures);
        judge("admin key", r, Expect::Pass, call(&s, r.method, &r.path, body, Some(ADMIN)).await, &mut failures);
    }
    assert!(failures.is_empty(), "{} answers break the policy:\n{}", failures.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_user_token_may_not_set_an_export_webhook() {
    let s = TestServer::start_with(with_keys).await;
    let f = fixture(&s).await;
    let body = json!({"format": "txt", "source_type": "document", "source": {"content": "x"}, "webhook_url": "https://example.com/h"});
    let (st, b) = call(&s, "POST", "/api/exports", Some(&body), Some(&f.alice)).await;
    assert_eq!(crate::common::assert_error(st, &b, 403), "forbidden");
    assert_eq!(b["error"]["field"], "webhook_url", "{b}");
    let (st, b) = call(&s, "POST", "/api/exports", Some(&body), Some(ADMIN)).await;
    assert_eq!(st, 202, "an API key may: {b}");
}
