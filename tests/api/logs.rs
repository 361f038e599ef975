//! What the real binary writes to a pipe: plain text without ANSI colour codes, or one
//! JSON object per line with `logging.format: json`; and readiness without the model is
//! "degraded" (200), so a Kubernetes readiness probe keeps keyword search in service.

use crate::common::{free_port, hearth_bin};
use std::path::Path;
use std::time::Duration;

/// Runs `hearth serve` with `config` (no model, output to a file), asks `/readyz` and a
/// missing route a few times, stops it and returns what it wrote and the last readiness.
async fn run_and_capture(dir: &Path, config: &str) -> (String, u16, serde_json::Value) {
    let file = dir.join("hearth.yaml");
    std::fs::write(&file, config).unwrap();
    let empty_models = dir.join("no-models");
    std::fs::create_dir_all(&empty_models).unwrap();
    let log_path = dir.join("out.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let port = free_port();
    let mut child = std::process::Command::new(hearth_bin())
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.join("data"))
        .arg("--bind")
        .arg(format!("127.0.0.1:{port}"))
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .env("HEARTH__SEARCH__EMBEDDINGS__MODEL_DIR", &empty_models)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("spawn hearth");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut last = (0, serde_json::Value::Null);
    for _ in 0..400 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
            let status = r.status().as_u16();
            last = (status, r.json().await.unwrap_or_default());
            if last.1["modules"]["search"]["status"] == "degraded" {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let _ = client.get(format!("{base}/api/nothing-here")).send().await;
    let _ = client.get(format!("{base}/healthz")).send().await;
    sigterm(child.id());
    let _ = child.wait();
    (std::fs::read_to_string(&log_path).unwrap(), last.0, last.1)
}

/// Asks the child to stop (SIGTERM) so that it flushes its last lines.
fn sigterm(pid: u32) {
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
}

#[tokio::test]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    let (out, status, ready) = run_and_capture(dir.path(), "logging:\n  level: INFO\n").await;
    assert!(out.contains("hearth listening"), "{out}");
    assert!(!out.contains('\u{1b}'), "ANSI escape codes in piped output: {out:?}");
    assert_eq!(status, 200, "keyword-only search is degraded, not down: {ready}");
    assert_eq!(ready["modules"]["search"]["status"], "degraded", "{ready}");
    assert!(ready["modules"]["search"]["reason"].as_str().unwrap_or("").contains("keyword search works"), "{ready}");
    assert!(!out.contains("ERROR"), "probes and a 404 log no error: {out}");
}

#[tokio::test]
async fn json_logs_are_one_object_per_line() {
    let dir = tempfile::tempdir().unwrap();
    let (out, _, _) = run_and_capture(dir.path(), "logging:\n  level: info\n  format: json\n").await;
    let mut messages = Vec::new();
    for line in out.lines().filter(|l| !l.trim().is_empty()) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(v["level"].is_string() && v["timestamp"].is_string(), "{line}");
        messages.push(v["fields"]["message"].as_str().unwrap_or_default().to_string());
    }
    assert!(messages.iter().any(|m| m.contains("hearth listening")), "{out}");
}
