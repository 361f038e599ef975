//! The dashboard at `/ui`: its files and headers, and the whole of it in a real headless
//! Chromium (Debian's `chromium`, driven by `playwright-core` from `.ci/node`; both are
//! installed by `.ci/run`). Screenshots of every page land in `target/ui-screenshots/`.

use crate::common::{TestServer, repo_path};
use crate::foundation::{ADMIN, READER, with_keys};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::test]
async fn the_dashboard_files_are_public_with_a_strict_policy() {
    let s = TestServer::start_with(with_keys).await;
    let r = s.client.get(s.url("/ui")).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.url().path()), (200, "/ui/"), "/ui redirects to the page, which needs no key");
    let h = r.headers().clone();
    assert!(h["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = h["content-security-policy"].to_str().unwrap();
    for part in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(part), "{part} missing from {csp}");
    }
    assert!(!csp.contains("unsafe-inline") && !csp.contains("unsafe-eval"), "{csp}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["cache-control"], "no-cache");
    let etag = h["etag"].to_str().unwrap().to_string();
    let again = s.client.get(s.url("/ui/")).header("if-none-match", &etag).send().await.unwrap();
    assert_eq!(again.status(), 304, "an unchanged page is not sent again");

    let js = s.client.get(s.url("/ui/app.js")).send().await.unwrap();
    assert_eq!(js.status(), 200);
    assert!(js.headers()["content-type"].to_str().unwrap().starts_with("text/javascript"));
    let (st, b) = s.get("/ui/nope.js").await;
    assert_eq!(crate::common::assert_error(st, &b, 404), "not_found");
    let (st, _) = s.get("/api/queues").await;
    assert_eq!(st, 401, "the page is public, the API is not");
}

#[tokio::test]
async fn the_dashboard_refuses_a_rebinding_host_when_auth_is_off() {
    let s = TestServer::start().await;
    let r = s.client.get(s.url("/ui/")).header("host", "evil.example").send().await.unwrap();
    assert_eq!(r.status(), 403, "DNS rebinding must not reach the page");
    let r = s.client.get(s.url("/ui/")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}

/// The browser the tests drive: `HEARTH_CHROMIUM`, else Debian's.
fn chromium() -> PathBuf {
    std::env::var_os("HEARTH_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"))
}

#[tokio::test]
async fn the_dashboard_works_in_a_real_browser() {
    let browser = chromium();
    if !browser.exists() {
        eprintln!(
            "SKIPPED the_dashboard_works_in_a_real_browser: no Chromium at {} (apt-get install chromium; .ci/run does)",
            browser.display()
        );
        return;
    }
    let modules = repo_path(".ci/node/node_modules");
    assert!(
        modules.join("playwright-core").is_dir(),
        "playwright-core missing: npm install --prefix .ci/node playwright-core (.ci/run does)"
    );
    // The test's own jobs have no in-process handler: they wait for its worker calls.
    let s = TestServer::start_with(with_keys).await;
    let shots = repo_path("target/ui-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut cmd = std::process::Command::new("node");
    cmd.arg(repo_path("tests/api/ui/dashboard.mjs"))
        .env("HEARTH_URL", s.url(""))
        .env("HEARTH_ADMIN_KEY", ADMIN)
        .env("HEARTH_READER_KEY", READER)
        .env("HEARTH_CHROMIUM", &browser)
        .env("HEARTH_NODE_MODULES", &modules)
        .env("HEARTH_SCREENSHOTS", &shots);
    let run = tokio::task::spawn_blocking(move || cmd.output());
    let out =
        tokio::time::timeout(Duration::from_secs(300), run).await.expect("the browser test ends within 5 min").unwrap().expect("node runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "the browser test failed (screenshots in {}):\n{stdout}\n{stderr}", shots.display());
    assert!(stdout.contains("all steps passed"), "{stdout}");
    println!("{stdout}");
}
