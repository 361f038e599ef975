//! Helpers of the notification tests: a real SMTP server (Python aiosmtpd writing a
//! Maildir), a Maildir reader (Python's `mailbox`), WebSocket clients and polling.

use crate::common::{TestServer, free_port};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::Duration;
use tokio_tungstenite::tungstenite::Message;

/// An aiosmtpd process delivering every message into a Maildir; killed on drop.
pub struct SmtpServer {
    child: std::process::Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    /// The Maildir.
    pub maildir: PathBuf,
    _dir: tempfile::TempDir,
}

impl SmtpServer {
    /// Starts `python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c aiosmtpd.handlers.Mailbox MAILDIR`
    /// and waits until it accepts connections.
    pub async fn start() -> SmtpServer {
        SmtpServer::start_with(&[]).await
    }

    /// As [`SmtpServer::start`] with extra aiosmtpd arguments (e.g. `--tlscert`).
    pub async fn start_with(extra: &[&str]) -> SmtpServer {
        let dir = tempfile::tempdir().unwrap();
        let maildir = dir.path().join("Maildir");
        for sub in ["cur", "new", "tmp"] {
            std::fs::create_dir_all(maildir.join(sub)).unwrap();
        }
        let port = free_port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
            .args(extra)
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3 -m aiosmtpd (pip install aiosmtpd)");
        let server = SmtpServer { child, port, maildir, _dir: dir };
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// `SMTP_URL` for this server (plain SMTP).
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}?tls=none&timeout=5", self.port)
    }

    /// Every message in the Maildir, parsed by Python's `mailbox` and `email` packages:
    /// `[{to, from, subject, content_type, parts: [{content_type, body}]}]`.
    pub fn messages(&self) -> Vec<Value> {
        read_maildir(&self.maildir)
    }

    /// Waits until the Maildir holds at least `n` messages and returns them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        for _ in 0..400 {
            let m = self.messages();
            if m.len() >= n {
                return m;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("expected {n} messages in {}, got {:?}", self.maildir.display(), self.messages());
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const READ_MAILDIR: &str = r#"
import json, mailbox, sys
from email import policy
from email.parser import BytesParser
out = []
for key, msg in mailbox.Maildir(sys.argv[1], factory=None, create=False).items():
    m = BytesParser(policy=policy.default).parsebytes(msg.as_bytes())
    parts = []
    for p in (m.walk() if m.is_multipart() else [m]):
        if p.is_multipart():
            continue
        parts.append({"content_type": p.get_content_type(), "body": p.get_content()})
    out.append({"to": str(m["To"]), "from": str(m["From"]), "subject": str(m["Subject"]),
                "content_type": m.get_content_type(), "parts": parts})
print(json.dumps(out))
"#;

/// Reads a Maildir with Python's `mailbox` (an independent MIME parser).
pub fn read_maildir(dir: &Path) -> Vec<Value> {
    let out = std::process::Command::new("python3").arg("-c").arg(READ_MAILDIR).arg(dir).output().expect("python3");
    assert!(out.status.success(), "maildir reader failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).expect("maildir json")
}

/// Polls `GET /api/notifications/{id}` until `deliveries.<channel>.state` is `state`.
pub async fn wait_delivery(s: &TestServer, id: &str, channel: &str, state: &str) -> Value {
    let mut last = Value::Null;
    for _ in 0..600 {
        let (st, n) = s.get(&format!("/api/notifications/{id}")).await;
        assert_eq!(st, 200, "{n}");
        if n["deliveries"][channel]["state"] == state {
            return n;
        }
        last = n;
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("delivery {channel} of {id} never became {state}: {last}");
}

/// Sends an in-app notification to `user` and returns its id.
pub async fn send(s: &TestServer, user: &str, title: &str) -> String {
    let (st, b) = s.post("/api/notifications", json!({"type": "info", "title": title, "message": "m", "user_id": user})).await;
    assert_eq!(st, 200, "{b}");
    b["notification_id"].as_str().unwrap().to_string()
}

/// A connected notification WebSocket.
pub type Ws = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `/ws/notifications?user_id=...` (with `?token=` when given) and consumes the
/// `hello` frame, returning it.
pub async fn ws_connect(s: &TestServer, user: &str, token: Option<&str>) -> (Ws, Value) {
    let mut url = s.ws_url(&format!("/ws/notifications?user_id={user}"));
    if let Some(t) = token {
        url.push_str(&format!("&token={t}"));
    }
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws connect");
    let hello = next_frame(&mut ws).await.expect("hello frame");
    assert_eq!(hello["event"], "hello", "{hello}");
    (ws, hello)
}

/// The next JSON frame (skipping pings), or None when the socket closed; panics after 5 s.
pub async fn next_frame(ws: &mut Ws) -> Option<Value> {
    loop {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next()).await.expect("a frame within 5 s");
        match msg {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return None,
            Some(Ok(Message::Text(t))) => return Some(serde_json::from_str(&t).expect("json frame")),
            Some(Ok(Message::Ping(p))) => {
                let _ = ws.send(Message::Pong(p)).await;
            }
            Some(Ok(_)) => {}
        }
    }
}

/// True when no frame arrives within `ms` milliseconds.
pub async fn silent_for(ws: &mut Ws, ms: u64) -> bool {
    tokio::time::timeout(Duration::from_millis(ms), ws.next()).await.is_err()
}

/// A self-signed certificate for 127.0.0.1 made with the openssl CLI: (dir, cert, key).
pub fn self_signed_cert() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1", "-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .expect("openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
    (dir, cert, key)
}
