//! The worker examples a user copies (`examples/python_worker.py` with `websockets`,
//! `examples/node_worker.mjs` with `ws`), run as written against a real `hearth serve`
//! with an API key: each, hung up on at its first attempt, reconnects and completes the
//! jobs it is given, with its handler's result.
//! `.ci/run` installs both packages (pip; npm under `.ci/node`).

use crate::common::{Child, free_port, repo_path};
use crate::foundation::ADMIN;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::time::Duration;

const JOBS: usize = 30;

/// Starts the example `cmd` against a port whose first connection is hung up on (so it
/// goes through its reconnect path), then hearth on that port, enqueues the jobs, and checks that the example
/// stops after completing them all, each with its handler's result.
async fn check(queue: &str, mut cmd: Command) {
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    cmd.env("HEARTH_URL", &base)
        .env("HEARTH_API_KEY", ADMIN)
        .env("HEARTH_QUEUES", queue)
        .env("HEARTH_CREDIT", "5")
        .env("HEARTH_STOP_AFTER", JOBS.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let example = cmd.spawn().expect("the example starts");
    let pid = example.id();
    let waited = tokio::task::spawn_blocking(move || example.wait_with_output());
    // Its first attempt finds a server that hangs up: it has to try again.
    let door = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    let (hang_up, _) = tokio::time::timeout(Duration::from_secs(30), door.accept()).await.expect("the example dials").unwrap();
    drop((hang_up, door));
    let dir = tempfile::tempdir().unwrap();
    let child = Child::spawn_on(dir.path(), port, &[("HEARTH__MODULES__SEARCH__ENABLED", "false"), ("HEARTH_API_KEY", ADMIN)]).await;
    let client = reqwest::Client::new();
    let jobs: Vec<Value> = (0..JOBS).map(|i| json!({"name": "echo", "queue": queue, "payload": {"n": i}})).collect();
    let r = client.post(format!("{base}/api/jobs/batch")).bearer_auth(ADMIN).json(&jobs).send().await.unwrap();
    assert_eq!(r.status(), 201);
    let ids: Vec<String> = r.json::<Vec<Value>>().await.unwrap().iter().map(|e| e["job_id"].as_str().unwrap().to_string()).collect();
    let Ok(out) = tokio::time::timeout(Duration::from_secs(60), waited).await else {
        let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
        panic!("the example did not finish within 60 s");
    };
    let out = out.unwrap().unwrap();
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{}\n{stdout}\n{stderr}", out.status);
    let summary: Value =
        serde_json::from_str(stdout.lines().last().unwrap_or_default()).unwrap_or_else(|e| panic!("{e}: {stdout}\n{stderr}"));
    assert_eq!(summary["processed"].as_u64(), Some(JOBS as u64), "{summary}");
    assert!(format!("{stdout}{stderr}").contains("connection"), "it said it reconnects: {stdout}{stderr}");
    for (i, id) in ids.iter().enumerate() {
        let j: Value = client.get(format!("{base}/api/jobs/{id}")).bearer_auth(ADMIN).send().await.unwrap().json().await.unwrap();
        assert_eq!((j["status"].as_str(), &j["result"]), (Some("completed"), &json!({"echo": {"n": i}})), "{j}");
    }
    drop(child);
}

#[tokio::test]
async fn ws_worker_python_example_completes_jobs() {
    let probe = Command::new("python3").args(["-c", "import websockets.asyncio.client"]).output().expect("python3 runs");
    assert!(probe.status.success(), "the Python example needs `pip install websockets` (13 or newer; .ci/run installs it)");
    let mut cmd = Command::new("python3");
    cmd.arg(repo_path("examples/python_worker.py"));
    check("py", cmd).await;
}

#[tokio::test]
async fn ws_worker_node_example_completes_jobs() {
    let modules = repo_path(".ci/node/node_modules");
    assert!(modules.join("ws").is_dir(), "the Node example needs `ws`: npm install --prefix .ci/node ws (.ci/run does)");
    // As a user runs it: the file in a folder whose node_modules has `ws`.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(repo_path("examples/node_worker.mjs"), dir.path().join("node_worker.mjs")).unwrap();
    std::os::unix::fs::symlink(&modules, dir.path().join("node_modules")).unwrap();
    let mut cmd = Command::new("node");
    cmd.arg(dir.path().join("node_worker.mjs"));
    check("node", cmd).await;
}
