//! A private S3-protocol server for tests: moto in server mode (`pip install
//! "moto[server]"`, which `.ci/run` does) on a free port, killed when dropped.

use super::config::StorageConfig;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running moto server.
pub struct S3Server {
    child: Child,
    port: u16,
}

impl S3Server {
    /// Starts one; panics with a clear message when `moto_server` is not installed.
    pub fn start() -> S3Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server must be installed for this test (pip install \"moto[server]\"; .ci/run does it)");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not start on port {port}");
            std::thread::sleep(Duration::from_millis(50));
        }
        S3Server { child, port }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Creates `bucket`.
    pub async fn create_bucket(&self, bucket: &str) {
        let r = reqwest::Client::new().put(format!("{}/{bucket}", self.endpoint())).send().await.expect("moto answers");
        assert!(r.status().is_success(), "create bucket {bucket}: {}", r.status());
    }

    /// Export storage settings for `bucket` on this server.
    pub fn config(&self, bucket: &str) -> StorageConfig {
        StorageConfig {
            kind: "s3".into(),
            bucket: Some(bucket.into()),
            region: Some("us-east-1".into()),
            endpoint: Some(self.endpoint()),
            path_style: true,
            access_key_id: Some("test".into()),
            secret_access_key: Some("test".into()),
            ..StorageConfig::default()
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
