//! Test harness: a real hearth server on 127.0.0.1:0 with a temp data dir, an HTTP
//! client, and helpers to run the real binary as a child process for crash tests.

#![allow(dead_code)]

use hearth::app::AppBuilder;
use hearth::{App, Config};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A running in-process server.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The app behind it, for direct Rust-API checks.
    pub app: Arc<App>,
    /// A client with no credentials.
    pub client: reqwest::Client,
    /// Keeps the data dir alive (None when the caller owns the dir).
    pub dir: Option<tempfile::TempDir>,
    /// The data dir.
    pub data_dir: PathBuf,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl TestServer {
    /// Starts a server with default config on a fresh temp dir.
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    /// Starts a server after `tweak` adjusts the default config.
    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().to_path_buf();
        let mut s = TestServer::start_in(&data_dir, tweak).await;
        s.dir = Some(dir);
        s
    }

    /// Starts a server on an existing data dir (to test restarts).
    pub async fn start_in(data_dir: &Path, tweak: impl FnOnce(&mut Config)) -> TestServer {
        TestServer::start_built(data_dir, tweak, |b| b).await
    }

    /// Starts a server whose app `customize` assembles (e.g. with other backends).
    pub async fn start_built(
        data_dir: &Path,
        tweak: impl FnOnce(&mut Config),
        customize: impl FnOnce(AppBuilder) -> AppBuilder,
    ) -> TestServer {
        let mut config = Config::default();
        config.server.data_dir = data_dir.to_path_buf();
        config.server.bind = "127.0.0.1:0".into();
        config.server.shutdown_grace_seconds = 5;
        config.search.embeddings.model_dir = models_dir().display().to_string();
        config.notification.templates.dir = repo_path("templates/notifications").display().to_string();
        config.export.template_dir = repo_path("templates/exports").display().to_string();
        tweak(&mut config);
        let app = customize(App::builder(config)).build().await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(hearth::http::serve(listener, app.clone(), async move {
            let _ = rx.await;
        }));
        TestServer {
            addr,
            app,
            client: reqwest::Client::new(),
            dir: None,
            data_dir: data_dir.to_path_buf(),
            stop: Some(tx),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT` + path.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// `ws://127.0.0.1:PORT` + path.
    pub fn ws_url(&self, path: &str) -> String {
        format!("ws://{}{}", self.addr, path)
    }

    /// GET, returning status and JSON body (Null when the body is not JSON).
    pub async fn get(&self, path: &str) -> (u16, Value) {
        let r = self.client.get(self.url(path)).send().await.expect("request");
        split(r).await
    }

    /// POST a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.post(self.url(path)).json(&body).send().await.expect("request");
        split(r).await
    }

    /// PATCH a JSON body.
    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.patch(self.url(path)).json(&body).send().await.expect("request");
        split(r).await
    }

    /// PUT a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self.client.put(self.url(path)).json(&body).send().await.expect("request");
        split(r).await
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> (u16, Value) {
        let r = self.client.delete(self.url(path)).send().await.expect("request");
        split(r).await
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) -> Option<tempfile::TempDir> {
        self.shutdown().await;
        self.dir.take()
    }

    async fn shutdown(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        self.app.background().shutdown.cancel();
    }
}

/// Splits a response into status and JSON body.
pub async fn split(r: reqwest::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().await.unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Asserts the foundation's error body and returns its code.
pub fn assert_error(status: u16, body: &Value, expected_status: u16) -> String {
    assert_eq!(status, expected_status, "unexpected status; body: {body}");
    let code = body["error"]["code"].as_str().unwrap_or_else(|| panic!("no error.code in {body}"));
    assert!(body["error"]["message"].is_string(), "no error.message in {body}");
    code.to_string()
}

/// A path inside the repository.
pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// The models directory (`HEARTH_TEST_MODELS` or `<repo>/models`).
pub fn models_dir() -> PathBuf {
    std::env::var_os("HEARTH_TEST_MODELS").map(PathBuf::from).unwrap_or_else(|| repo_path("models"))
}

/// The path of the built `hearth` binary, for crash tests that spawn it.
pub fn hearth_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_hearth"))
}

/// A free loopback port (bound then released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A `hearth serve` child process on a data dir, killed with SIGKILL on drop.
pub struct Child {
    /// The process.
    pub child: std::process::Child,
    /// Base URL.
    pub base: String,
}

impl Child {
    /// Spawns `hearth serve --data-dir DIR --bind 127.0.0.1:PORT` with extra env, and
    /// waits until `/healthz` answers.
    pub async fn spawn(data_dir: &Path, env: &[(&str, &str)]) -> Child {
        Child::spawn_on(data_dir, free_port(), env).await
    }

    /// As [`Child::spawn`], on a chosen port (for clients started before the server).
    pub async fn spawn_on(data_dir: &Path, port: u16, env: &[(&str, &str)]) -> Child {
        let mut cmd = std::process::Command::new(hearth_bin());
        cmd.arg("serve").arg("--data-dir").arg(data_dir).arg("--bind").arg(format!("127.0.0.1:{port}"));
        cmd.current_dir(data_dir.parent().unwrap_or(data_dir));
        cmd.env("HEARTH__SEARCH__EMBEDDINGS__MODEL_DIR", models_dir());
        cmd.env("RUST_LOG", "warn");
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null());
        let child = cmd.spawn().expect("spawn hearth");
        let base = format!("http://127.0.0.1:{port}");
        // Killed on drop, whether it answers or not.
        let child = Child { child, base };
        let c = reqwest::Client::new();
        for _ in 0..400 {
            if c.get(format!("{}/healthz", child.base)).send().await.is_ok() {
                return child;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("hearth child did not start on {}", child.base);
    }

    /// SIGKILL and wait.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        self.kill();
    }
}
