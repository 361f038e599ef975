//! Integration tests of the notification module: the feed over REST, validation, routing
//! through preferences, batch sends, authorisation, hooks, retention and metrics. Email
//! (real SMTP), WebSocket, webhook and crash tests are in the submodules.

mod channels;
mod crash;
mod email;
mod support;
mod ws;

use crate::common::{TestServer, assert_error};
use hearth::notify::{Delivery, Notification, NotifyHooks};
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use support::send;

#[tokio::test]
async fn feed_lists_newest_first_counts_reads_and_deletes() {
    let s = TestServer::start().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(send(&s, "u1", &format!("n{i}")).await);
    }
    send(&s, "u2", "other user").await;

    let (st, list) = s.get("/api/notifications?user_id=u1").await;
    assert_eq!(st, 200, "{list}");
    let titles: Vec<&str> = list.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["n4", "n3", "n2", "n1", "n0"]);
    let first = &list[0];
    assert_eq!(first["type"], "info");
    assert_eq!(first["user_id"], "u1");
    assert_eq!(first["read"], false);
    assert_eq!(first["channels"], json!(["in-app"]));
    assert_eq!(first["deliveries"]["in-app"]["state"], "delivered");

    let (_, c) = s.get("/api/notifications/unread_count?user_id=u1").await;
    assert_eq!(c["unread_count"], 5);

    let (st, b) = s.post(&format!("/api/notifications/{}/read", ids[1]), json!({})).await;
    assert_eq!((st, &b), (200, &json!({"success": true})));
    // Idempotent.
    let (st, _) = s.post(&format!("/api/notifications/{}/read", ids[1]), json!({})).await;
    assert_eq!(st, 200);
    let (_, c) = s.get("/api/notifications/unread_count?user_id=u1").await;
    assert_eq!(c["unread_count"], 4);
    let (_, unread) = s.get("/api/notifications?user_id=u1&unread_only=true").await;
    assert_eq!(unread.as_array().unwrap().len(), 4);
    assert!(unread.as_array().unwrap().iter().all(|n| n["id"] != ids[1].as_str()));
    let (_, one) = s.get(&format!("/api/notifications/{}", ids[1])).await;
    assert_eq!(one["read"], true);
    assert!(one["read_at"].is_string());

    let (st, b) = s.delete(&format!("/api/notifications/{}", ids[0])).await;
    assert_eq!((st, &b), (200, &json!({"success": true})));
    let (st, b) = s.delete(&format!("/api/notifications/{}", ids[0])).await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
    let (_, c) = s.get("/api/notifications/unread_count?user_id=u1").await;
    assert_eq!(c["unread_count"], 3);

    let (st, b) = s.post("/api/notifications/read_all", json!({"user_id": "u1"})).await;
    assert_eq!((st, b["success"].clone(), b["updated"].clone()), (200, json!(true), json!(3)));
    let (_, c) = s.get("/api/notifications/unread_count?user_id=u1").await;
    assert_eq!(c["unread_count"], 0);
    let (_, c) = s.get("/api/notifications/unread_count?user_id=u2").await;
    assert_eq!(c["unread_count"], 1, "read_all touches only that user");

    let (st, b) = s.post("/api/notifications/nope/read", json!({})).await;
    assert_eq!(assert_error(st, &b, 404), "not_found");
}

#[tokio::test]
async fn cursor_pagination_walks_the_whole_feed_once() {
    let s = TestServer::start().await;
    for i in 0..7 {
        send(&s, "pager", &format!("t{i}")).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let mut url = s.url("/api/notifications?user_id=pager&limit=3");
        if let Some(c) = &cursor {
            url.push_str(&format!("&cursor={c}"));
        }
        let r = s.client.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200);
        let next = r.headers().get("x-next-cursor").map(|v| v.to_str().unwrap().to_string());
        let page: Vec<Value> = r.json().await.unwrap();
        assert!(page.len() <= 3);
        seen.extend(page.iter().map(|n| n["title"].as_str().unwrap().to_string()));
        match next {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, ["t6", "t5", "t4", "t3", "t2", "t1", "t0"]);
    let (st, b) = s.get("/api/notifications?user_id=pager&cursor=abc").await;
    assert_eq!(assert_error(st, &b, 400), "invalid_query");
    assert_eq!(b["error"]["field"], "cursor");
    let (st, b) = s.get("/api/notifications?user_id=pager&limit=0").await;
    assert_eq!(b["error"]["field"], "limit", "{st} {b}");
    let (st, b) = s.get("/api/notifications").await;
    assert_eq!(assert_error(st, &b, 400), "invalid_query");
    assert_eq!(b["error"]["field"], "user_id");
}

async fn expect_field(s: &TestServer, path: &str, body: Value, status: u16, field: &str) {
    let (st, b) = s.post(path, body.clone()).await;
    assert_error(st, &b, status);
    assert_eq!(b["error"]["field"], field, "for {body}: {b}");
}

#[tokio::test]
async fn bad_input_is_400_naming_the_field() {
    let s = TestServer::start_with(|c| {
        c.notification.max_message_bytes = 100;
        // A configured relay that is never reached: validation happens before any delivery.
        c.notification.channels.email.smtp_url = Some("smtp://127.0.0.1:9?tls=none".into());
    })
    .await;
    let ok = json!({"type": "info", "title": "t", "message": "m", "user_id": "u"});
    let with = |k: &str, v: Value| {
        let mut b = ok.clone();
        b[k] = v;
        b
    };
    let p = "/api/notifications";
    expect_field(&s, p, with("title", json!("  ")), 400, "title").await;
    expect_field(&s, p, with("type", json!("fancy")), 400, "type").await;
    expect_field(&s, p, with("channels", json!(["in-app", "pigeon"])), 400, "channels[1]").await;
    expect_field(&s, p, with("message", json!("x".repeat(101))), 400, "message").await;
    expect_field(&s, p, with("user_id", json!("")), 400, "user_id").await;
    expect_field(&s, p, with("data", json!([1, 2])), 400, "data").await;
    expect_field(&s, p, with("template", json!("no_such_template")), 400, "template").await;
    expect_field(&s, p, with("template", json!("../../etc")), 400, "template").await;
    // The shipped template needs download_url: a missing variable names it.
    let b =
        json!({"type": "success", "title": "t", "user_id": "u", "template": "export_ready", "data": {"filename": "f", "format": "pdf"}});
    expect_field(&s, p, b, 400, "data.download_url").await;
    // The email channel for a user without an address.
    expect_field(&s, p, with("channels", json!(["email"])), 400, "channels").await;
    let (st, b) = s.post(p, json!({"title": "t", "user_id": "u"})).await;
    assert_eq!(assert_error(st, &b, 400), "invalid_field");
    assert_eq!(b["error"]["field"], "type");

    let pp = "/api/notifications/preferences/u";
    for (body, field) in [
        (json!({"email": "not-an-address"}), "email"),
        (json!({"email": "a@"}), "email"),
        (json!({"channels": {"urgent": ["in-app"]}}), "channels.urgent"),
        (json!({"channels": {"error": ["in-app", "fax"]}}), "channels.error[1]"),
        (json!({"muted_types": ["loud"]}), "muted_types[0]"),
    ] {
        let (st, b) = s.put(pp, body.clone()).await;
        assert_error(st, &b, 400);
        assert_eq!(b["error"]["field"], field, "for {body}: {b}");
    }
    // Nothing was stored by any of the refused sends.
    let (_, list) = s.get("/api/notifications?user_id=u").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn email_without_relay_is_503_not_accepted() {
    let s = TestServer::start().await;
    let (st, b) = s.put("/api/notifications/preferences/u", json!({"email": "u@example.com"})).await;
    assert_eq!(st, 200, "{b}");
    let (st, b) = s.post("/api/notifications", json!({"type": "info", "title": "t", "user_id": "u", "channels": ["email"]})).await;
    assert_eq!(assert_error(st, &b, 503), "service_unavailable");
    assert!(b["error"]["message"].as_str().unwrap().contains("SMTP_URL"), "{b}");
}

#[tokio::test]
async fn preferences_route_and_mute() {
    let s = TestServer::start().await;
    let (st, p) = s.get("/api/notifications/preferences/carol").await;
    assert_eq!(st, 200);
    assert_eq!(p, json!({"user_id": "carol", "email": null, "channels": {}, "muted_types": []}));
    let put = json!({"email": " carol@example.com ", "channels": {"info": ["in-app"]}, "muted_types": ["warning"]});
    let (st, p) = s.put("/api/notifications/preferences/carol", put).await;
    assert_eq!(st, 200, "{p}");
    assert_eq!(p["email"], "carol@example.com");
    let (_, again) = s.get("/api/notifications/preferences/carol").await;
    assert_eq!(again, p);

    // Muted kind: accepted but routed nowhere, so it is not in the feed.
    let (st, b) = s.post("/api/notifications", json!({"type": "warning", "title": "w", "user_id": "carol"})).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["channels"], json!([]));
    // Preferred channels narrow what a sender asks for (webhook is not enabled here anyway).
    let (st, b) = s.post("/api/notifications", json!({"type": "info", "title": "i", "user_id": "carol", "channels": ["in-app"]})).await;
    assert_eq!((st, b["channels"].clone()), (200, json!(["in-app"])));
    let (_, list) = s.get("/api/notifications?user_id=carol").await;
    let titles: Vec<&str> = list.as_array().unwrap().iter().map(|n| n["title"].as_str().unwrap()).collect();
    assert_eq!(titles, ["i"]);
    // Clearing the address.
    let (st, p) = s.put("/api/notifications/preferences/carol", json!({"email": ""})).await;
    assert_eq!((st, p["email"].clone()), (200, Value::Null));
}

#[tokio::test]
async fn batch_sends_to_many_users_all_or_none() {
    let s = TestServer::start_with(|c| c.notification.channels.email.smtp_url = Some("smtp://127.0.0.1:9?tls=none".into())).await;
    let (st, b) = s.post("/api/notifications/batch", json!({"type": "success", "title": "release", "user_ids": ["b1", "b2", "b3"]})).await;
    assert_eq!(st, 200, "{b}");
    let items = b["notifications"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for (i, u) in ["b1", "b2", "b3"].iter().enumerate() {
        assert_eq!(items[i]["user_id"], *u);
        let (_, list) = s.get(&format!("/api/notifications?user_id={u}")).await;
        assert_eq!(list[0]["id"], items[i]["notification_id"]);
        assert_eq!(list[0]["title"], "release");
    }
    let (st, b) = s.post("/api/notifications/batch", json!({"type": "info", "title": "t", "user_ids": ["x", "x"]})).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "user_ids[1]");
    let (st, b) = s.post("/api/notifications/batch", json!({"type": "info", "title": "t", "user_ids": []})).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "user_ids");
    // One recipient cannot get email: the whole batch is refused and nothing is stored.
    let (st, _) = s.put("/api/notifications/preferences/c1", json!({"email": "c1@example.com"})).await;
    assert_eq!(st, 200);
    let body = json!({"type": "info", "title": "t", "user_ids": ["c1", "c2"], "channels": ["in-app", "email"]});
    let (st, b) = s.post("/api/notifications/batch", body).await;
    assert_error(st, &b, 400);
    assert_eq!(b["error"]["field"], "user_ids[1]");
    let (_, list) = s.get("/api/notifications?user_id=c1").await;
    assert_eq!(list, json!([]));
}

const ADMIN: &str = "notify-admin-key-0123456789";

fn with_key(c: &mut hearth::Config) {
    c.auth.api_keys = vec![hearth::config::ApiKeyConfig { key: ADMIN.into(), scope: hearth::config::KeyScope::Admin, name: None }];
}

/// Mints a user token with the admin key.
pub(crate) async fn mint(s: &TestServer, user: &str) -> String {
    let r = s.client.post(s.url("/api/auth/tokens")).bearer_auth(ADMIN).json(&json!({"user_id": user})).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn user_tokens_only_reach_their_own_feed_and_cannot_send() {
    let s = TestServer::start_with(with_key).await;
    let c = &s.client;
    let send = |user: &'static str| {
        c.post(s.url("/api/notifications")).bearer_auth(ADMIN).json(&json!({"type": "info", "title": "t", "user_id": user})).send()
    };
    let alice_n: Value = send("alice").await.unwrap().json().await.unwrap();
    let bob_n: Value = send("bob").await.unwrap().json().await.unwrap();
    let (alice_id, bob_id) = (alice_n["notification_id"].as_str().unwrap(), bob_n["notification_id"].as_str().unwrap());
    let alice = mint(&s, "alice").await;

    let status = |r: reqwest::Response| r.status().as_u16();
    let r = c.post(s.url("/api/notifications")).bearer_auth(&alice).json(&json!({"type": "info", "title": "t", "user_id": "alice"}));
    assert_eq!(status(r.send().await.unwrap()), 403, "a user token cannot send");
    assert_eq!(status(c.get(s.url("/api/notifications?user_id=alice")).bearer_auth(&alice).send().await.unwrap()), 200);
    assert_eq!(status(c.get(s.url("/api/notifications?user_id=bob")).bearer_auth(&alice).send().await.unwrap()), 403);
    assert_eq!(status(c.get(s.url("/api/notifications/unread_count?user_id=bob")).bearer_auth(&alice).send().await.unwrap()), 403);
    assert_eq!(status(c.get(s.url(&format!("/api/notifications/{bob_id}"))).bearer_auth(&alice).send().await.unwrap()), 403);
    assert_eq!(status(c.post(s.url(&format!("/api/notifications/{bob_id}/read"))).bearer_auth(&alice).send().await.unwrap()), 403);
    assert_eq!(status(c.delete(s.url(&format!("/api/notifications/{bob_id}"))).bearer_auth(&alice).send().await.unwrap()), 403);
    let r = c.post(s.url("/api/notifications/read_all")).bearer_auth(&alice).json(&json!({"user_id": "bob"}));
    assert_eq!(status(r.send().await.unwrap()), 403);
    assert_eq!(status(c.get(s.url("/api/notifications/preferences/bob")).bearer_auth(&alice).send().await.unwrap()), 403);
    assert_eq!(status(c.get(s.url("/api/notifications/preferences/alice")).bearer_auth(&alice).send().await.unwrap()), 200);
    let r = c.put(s.url("/api/notifications/preferences/alice")).bearer_auth(&alice).json(&json!({"email": "a@example.com"}));
    assert_eq!(status(r.send().await.unwrap()), 403, "a user token cannot change routing");
    // Its own notification: read and delete work.
    assert_eq!(status(c.post(s.url(&format!("/api/notifications/{alice_id}/read"))).bearer_auth(&alice).send().await.unwrap()), 200);
    assert_eq!(status(c.delete(s.url(&format!("/api/notifications/{alice_id}"))).bearer_auth(&alice).send().await.unwrap()), 200);
    // Without credentials: 401.
    assert_eq!(status(c.get(s.url("/api/notifications?user_id=alice")).send().await.unwrap()), 401);
}

#[derive(Default)]
struct Counting {
    sent: AtomicUsize,
    delivered: AtomicUsize,
    read: AtomicUsize,
}

impl NotifyHooks for Counting {
    fn on_send(&self, _n: &Notification) {
        self.sent.fetch_add(1, Ordering::SeqCst);
    }
    fn on_deliver(&self, _n: &Notification, channel: &str, d: &Delivery) {
        assert_eq!(channel, "in-app");
        assert_eq!(d.state, hearth::notify::DeliveryState::Delivered);
        self.delivered.fetch_add(1, Ordering::SeqCst);
    }
    fn on_read(&self, n: &Notification) {
        assert!(n.read);
        self.read.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn hooks_see_send_deliver_and_read() {
    let s = TestServer::start().await;
    let hooks = Arc::new(Counting::default());
    s.app.notify.register_hooks(hooks.clone());
    let a = send(&s, "h", "a").await;
    send(&s, "h", "b").await;
    s.post(&format!("/api/notifications/{a}/read"), json!({})).await;
    s.post(&format!("/api/notifications/{a}/read"), json!({})).await;
    s.post("/api/notifications/read_all", json!({"user_id": "h"})).await;
    assert_eq!(hooks.sent.load(Ordering::SeqCst), 2);
    assert_eq!(hooks.delivered.load(Ordering::SeqCst), 2);
    assert_eq!(hooks.read.load(Ordering::SeqCst), 2, "each notification is read once");
}

#[tokio::test]
async fn retention_removes_read_after_30_days_and_unread_after_90() {
    use chrono::{Duration, TimeZone, Utc};
    let dir = tempfile::tempdir().unwrap();
    let mut config = hearth::Config::default();
    config.server.data_dir = dir.path().to_path_buf();
    config.search.embeddings.model_dir = crate::common::models_dir().display().to_string();
    let clock = hearth::clock::ManualClock::new(Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap());
    let app = hearth::App::build_with_clock(config, Arc::new(clock.clone())).await.unwrap();
    let n = &app.notify;
    let req = |t: &str| hearth::notify::SendRequest::new(hearth::notify::NotificationKind::Info, t, "m", "r");
    let read_early = n.send(req("read early")).await.unwrap();
    let unread_old = n.send(req("unread old")).await.unwrap();
    n.mark_read(&read_early).await.unwrap();
    clock.advance(Duration::days(20));
    let read_late = n.send(req("read late")).await.unwrap();
    n.mark_read(&read_late).await.unwrap();
    clock.advance(Duration::days(11)); // day 31: read_early was read 31 days ago, read_late 11.
    assert_eq!(n.sweep().await.unwrap(), 1);
    assert!(n.get(&read_early).await.is_err());
    assert!(n.get(&read_late).await.is_ok());
    assert!(n.get(&unread_old).await.is_ok());
    clock.advance(Duration::days(58)); // day 89: unread_old is 89 days old.
    assert_eq!(n.sweep().await.unwrap(), 1, "read_late is now 69 days past reading");
    assert!(n.get(&unread_old).await.is_ok());
    assert_eq!(n.unread_count("r").await.unwrap(), 1);
    clock.advance(Duration::days(2)); // day 91.
    assert_eq!(n.sweep().await.unwrap(), 1);
    assert!(n.get(&unread_old).await.is_err());
    assert_eq!(n.unread_count("r").await.unwrap(), 0);
    let page = n.list("r", hearth::notify::ListQuery { limit: 50, ..Default::default() }).await.unwrap();
    assert!(page.items.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn metrics_have_help_and_count_sends() {
    let s = TestServer::start().await;
    send(&s, "m", "x").await;
    let text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.contains("# HELP hearth_notify_sent_total"), "{text}");
    assert!(text.lines().any(|l| l.starts_with("hearth_notify_sent_total{") && l.contains("type=\"info\"")), "{text}");
}
