//! A private redis-server for a test: its own port and temp directory, append-only with
//! `appendfsync always` (what hearth recommends), killed when dropped. Tests never share a
//! server, and never use one already running on the machine.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running redis-server.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl RedisServer {
    /// Starts one; panics with a clear message when `redis-server` is not installed
    /// (`.ci/run` installs it).
    pub fn start() -> RedisServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut s = RedisServer { child: None, port, dir };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes"])
            .args(["--appendfsync", "always", "--maxmemory-policy", "noeviction", "--protected-mode", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server must be installed for this test (apt-get install redis-server; .ci/run does it)");
        self.child = Some(child);
        // Ready once it answers PING (it refuses commands with LOADING while it replays
        // its append-only file after a restart).
        let deadline = Instant::now() + Duration::from_secs(10);
        while !answers_ping(self.port) {
            assert!(Instant::now() < deadline, "redis-server did not start on port {}", self.port);
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `redis://127.0.0.1:<port>/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server hard (`kill -9`) and starts it again on the same port and data:
    /// what it had made durable survives.
    pub fn crash_and_restart(&mut self) {
        self.kill();
        self.spawn();
    }

    /// Kills the server hard; it stays down until [`RedisServer::restart`].
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the killed server again on the same port and data.
    pub fn restart(&mut self) {
        if self.child.is_none() {
            self.spawn();
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn answers_ping(port: u16) -> bool {
    use std::io::{Read, Write};
    let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", port)) else { return false };
    let _ = conn.set_read_timeout(Some(Duration::from_secs(1)));
    let mut buf = [0u8; 7];
    conn.write_all(b"PING\r\n").is_ok() && conn.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port()
}

/// A conformance [`Harness`](crate::conformance::Harness) for a Redis backend: one private
/// server; each fresh backend gets a key prefix of its own (so nothing of an earlier one
/// is visible) and a re-open reconnects under the same prefix.
pub struct OnRedis<B> {
    server: RedisServer,
    made: usize,
    make: fn(super::Redis) -> B,
}

impl<B> OnRedis<B> {
    /// Backends that `make` builds on a connection.
    pub fn new(make: fn(super::Redis) -> B) -> Self {
        OnRedis { server: RedisServer::start(), made: 0, make }
    }

    /// The server (to crash and restart it).
    pub fn server_mut(&mut self) -> &mut RedisServer {
        &mut self.server
    }

    async fn open(&self) -> B {
        let cfg = super::RedisConfig { url: Some(self.server.url()), key_prefix: format!("t{}:", self.made), ..Default::default() };
        (self.make)(super::Redis::connect(&cfg).await.expect("connects to the test redis-server"))
    }
}

#[async_trait::async_trait]
impl<B: Send + Sync + 'static> crate::conformance::Harness<B> for OnRedis<B> {
    async fn fresh(&mut self) -> B {
        self.made += 1;
        self.open().await
    }

    async fn reopen(&mut self, backend: B) -> B {
        drop(backend);
        self.open().await
    }
}
