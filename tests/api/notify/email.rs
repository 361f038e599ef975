//! Email through a real SMTP server (aiosmtpd) read back from its Maildir.

use super::support::{SmtpServer, self_signed_cert, wait_delivery};
use crate::common::{TestServer, assert_error};
use serde_json::json;

async fn server_for(smtp: &SmtpServer, tweak: impl FnOnce(&mut hearth::Config)) -> TestServer {
    let url = smtp.url();
    TestServer::start_with(move |c| {
        c.notification.channels.email.smtp_url = Some(url);
        c.notification.channels.email.from = "hearth@example.org".into();
        tweak(c);
    })
    .await
}

#[tokio::test]
async fn templated_email_is_multipart_alternative_with_escaped_html() {
    let smtp = SmtpServer::start().await;
    let s = server_for(&smtp, |_| {}).await;
    let (st, _) = s.put("/api/notifications/preferences/dana", json!({"email": "dana@example.com"})).await;
    assert_eq!(st, 200);
    let body = json!({
        "type": "success", "title": "Export ready", "message": "done", "user_id": "dana",
        "channels": ["in-app", "email"], "template": "export_ready",
        "data": {"filename": "Q3 <report>.pdf", "format": "pdf", "download_url": "https://files.example/d/42"}
    });
    let (st, b) = s.post("/api/notifications", body).await;
    assert_eq!(st, 200, "{b}");
    assert_eq!(b["channels"], json!(["in-app", "email"]));
    let id = b["notification_id"].as_str().unwrap();
    let n = wait_delivery(&s, id, "email", "delivered").await;
    assert_eq!(n["deliveries"]["email"]["attempts"], 1);
    assert_eq!(n["deliveries"]["email"]["error"], serde_json::Value::Null);

    let msgs = smtp.wait_for(1).await;
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m["to"], "dana@example.com");
    assert_eq!(m["from"], "hearth@example.org");
    assert_eq!(m["subject"], "Your export Q3 <report>.pdf is ready");
    assert_eq!(m["content_type"], "multipart/alternative");
    let parts = m["parts"].as_array().unwrap();
    assert_eq!(parts.len(), 2, "{m}");
    assert_eq!(parts[0]["content_type"], "text/plain");
    let text = parts[0]["body"].as_str().unwrap();
    assert!(text.contains("Your PDF export \"Q3 <report>.pdf\" is ready.") && text.contains("https://files.example/d/42"), "{text}");
    assert_eq!(parts[1]["content_type"], "text/html");
    let html = parts[1]["body"].as_str().unwrap();
    assert!(html.contains("<strong>Q3 &lt;report&gt;.pdf</strong>"), "HTML must be escaped: {html}");
    assert!(html.contains("<a href=\"https:&#x2f;&#x2f;files.example&#x2f;d&#x2f;42\">"), "{html}");
}

#[tokio::test]
async fn plain_email_has_title_as_subject_and_message_with_link() {
    let smtp = SmtpServer::start().await;
    let s = server_for(&smtp, |_| {}).await;
    s.put("/api/notifications/preferences/eve", json!({"email": "eve@example.com", "channels": {"error": ["email"]}})).await;
    // No channels in the request: the preference for `error` routes it to email only.
    let body = json!({"type": "error", "title": "Job failed", "message": "The import stopped.", "user_id": "eve",
        "action_url": "https://app.example/jobs/7", "action_label": "Open job"});
    let (st, b) = s.post("/api/notifications", body).await;
    assert_eq!((st, b["channels"].clone()), (200, json!(["email"])), "{b}");
    wait_delivery(&s, b["notification_id"].as_str().unwrap(), "email", "delivered").await;
    let m = &smtp.wait_for(1).await[0];
    assert_eq!(m["to"], "eve@example.com");
    assert_eq!(m["subject"], "Job failed");
    assert_eq!(m["content_type"], "text/plain");
    let text = m["parts"][0]["body"].as_str().unwrap();
    assert!(text.starts_with("The import stopped.") && text.contains("Open job: https://app.example/jobs/7"), "{text}");
    // Email-only notifications are not in the in-app feed.
    let (_, list) = s.get("/api/notifications?user_id=eve").await;
    assert_eq!(list, json!([]));
}

#[tokio::test]
async fn unreachable_relay_retries_then_records_the_failure() {
    // A port nobody listens on: every attempt is a connection error (transient).
    let port = crate::common::free_port();
    let s = TestServer::start_with(move |c| {
        c.notification.channels.email.smtp_url = Some(format!("smtp://127.0.0.1:{port}?tls=none&timeout=2"));
        c.notification.channels.email.max_attempts = 2;
        c.notification.channels.email.retry_base_ms = 50;
    })
    .await;
    s.put("/api/notifications/preferences/fay", json!({"email": "fay@example.com"})).await;
    let started = std::time::Instant::now();
    let (st, b) =
        s.post("/api/notifications", json!({"type": "info", "title": "t", "user_id": "fay", "channels": ["in-app", "email"]})).await;
    assert_eq!(st, 200, "{b}");
    assert!(started.elapsed().as_secs() < 2, "the API never waits for SMTP");
    let id = b["notification_id"].as_str().unwrap();
    let (_, n) = s.get(&format!("/api/notifications/{id}")).await;
    assert_eq!(n["deliveries"]["in-app"]["state"], "delivered");
    let n = wait_delivery(&s, id, "email", "failed").await;
    assert_eq!(n["deliveries"]["email"]["attempts"], 2, "{n}");
    assert!(n["deliveries"]["email"]["error"].as_str().unwrap().contains("SMTP"), "{n}");
    let text = s.client.get(s.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(text.lines().any(|l| l.starts_with("hearth_notify_failed_total{") && l.contains("email")), "{text}");
}

#[tokio::test]
async fn bad_smtp_url_makes_email_unavailable_with_the_reason() {
    let s = TestServer::start_with(|c| c.notification.channels.email.smtp_url = Some("smtp://h?tls=maybe".into())).await;
    s.put("/api/notifications/preferences/g", json!({"email": "g@example.com"})).await;
    let (st, b) = s.post("/api/notifications", json!({"type": "info", "title": "t", "user_id": "g", "channels": ["email"]})).await;
    assert_eq!(assert_error(st, &b, 503), "service_unavailable");
    assert!(b["error"]["message"].as_str().unwrap().contains("tls=maybe"), "{b}");
}

/// Sends one plain email through `url` and checks it arrived.
async fn roundtrip(smtp: &SmtpServer, url: String) {
    let s = TestServer::start_with(move |c| {
        c.notification.channels.email.smtp_url = Some(url);
        c.notification.channels.email.max_attempts = 1;
    })
    .await;
    s.put("/api/notifications/preferences/tls", json!({"email": "tls@example.com"})).await;
    let (st, b) = s.post("/api/notifications", json!({"type": "info", "title": "secure", "user_id": "tls", "channels": ["email"]})).await;
    assert_eq!(st, 200, "{b}");
    let id = b["notification_id"].as_str().unwrap().to_string();
    for _ in 0..400 {
        let (_, n) = s.get(&format!("/api/notifications/{id}")).await;
        match n["deliveries"]["email"]["state"].as_str() {
            Some("delivered") => break,
            Some("failed") => panic!("TLS delivery failed: {n}"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(25)).await,
        }
    }
    let m = &smtp.wait_for(1).await[0];
    assert_eq!((m["to"].as_str(), m["subject"].as_str()), (Some("tls@example.com"), Some("secure")));
}

#[tokio::test]
async fn starttls_and_implicit_tls_with_a_private_ca() {
    let (_d, cert, key) = self_signed_cert();
    let (cert_s, key_s) = (cert.to_str().unwrap(), key.to_str().unwrap());
    // STARTTLS (required by default for smtp://; aiosmtpd requires it too).
    let smtp = SmtpServer::start_with(&["--tlscert", cert_s, "--tlskey", key_s]).await;
    roundtrip(&smtp, format!("smtp://127.0.0.1:{}?ca_file={cert_s}&timeout=5", smtp.port)).await;
    // Implicit TLS (smtps://).
    let smtps = SmtpServer::start_with(&["--smtpscert", cert_s, "--smtpskey", key_s]).await;
    roundtrip(&smtps, format!("smtps://127.0.0.1:{}?ca_file={cert_s}&timeout=5", smtps.port)).await;
}

#[tokio::test]
async fn starttls_refuses_an_untrusted_certificate() {
    let (_d, cert, key) = self_signed_cert();
    let smtp = SmtpServer::start_with(&["--tlscert", cert.to_str().unwrap(), "--tlskey", key.to_str().unwrap()]).await;
    let url = format!("smtp://127.0.0.1:{}?timeout=5", smtp.port);
    let s = TestServer::start_with(move |c| {
        c.notification.channels.email.smtp_url = Some(url);
        c.notification.channels.email.max_attempts = 1;
    })
    .await;
    s.put("/api/notifications/preferences/tls", json!({"email": "tls@example.com"})).await;
    let (_, b) = s.post("/api/notifications", json!({"type": "info", "title": "x", "user_id": "tls", "channels": ["email"]})).await;
    let n = wait_delivery(&s, b["notification_id"].as_str().unwrap(), "email", "failed").await;
    assert!(n["deliveries"]["email"]["error"].as_str().unwrap().contains("SMTP"), "{n}");
    assert!(smtp.messages().is_empty(), "nothing is sent over an unverified connection");
}
