//! The cache over the Redis protocol, driven by real Redis clients: `redis-cli`,
//! redis-py (RESP2 and RESP3), the redis-rs crate (pipelined) and `redis-benchmark`.

use crate::common::TestServer;
use std::net::SocketAddr;
use std::process::Command;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ADMIN: &str = "admin-key-0123456789";
const READER: &str = "reader-key-0123456789";

/// A server with the RESP endpoint on a free loopback port; `keys`: configure API keys.
async fn start(keys: bool) -> (TestServer, SocketAddr) {
    let s = TestServer::start_with(|c| {
        c.cache.resp.bind = Some("127.0.0.1:0".into());
        if keys {
            use hearth::config::{ApiKeyConfig, KeyScope};
            c.auth.api_keys = vec![
                ApiKeyConfig { key: ADMIN.into(), scope: KeyScope::Admin, name: None },
                ApiKeyConfig { key: READER.into(), scope: KeyScope::ReadOnly, name: None },
            ];
        }
    })
    .await;
    let addr = hearth::resp::start(&s.app).await.unwrap().expect("cache.resp.bind is set");
    (s, addr)
}

/// Runs `redis-cli` with `args`; its output, trimmed.
fn cli(addr: SocketAddr, args: &[&str]) -> String {
    let out = Command::new("redis-cli").args(["-p", &addr.port().to_string()]).args(args).output().expect("redis-cli is installed");
    assert!(out.status.success(), "redis-cli {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_cli_reads_and_writes_the_same_cache_as_http() {
    let (s, addr) = start(false).await;
    assert_eq!(cli(addr, &["PING"]), "PONG");
    assert_eq!(cli(addr, &["SET", "greeting", "hello", "EX", "600"]), "OK");
    let r = reqwest::get(s.url("/api/cache/greeting")).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "hello", "a key set over RESP is read over HTTP");
    let put = reqwest::Client::new().put(s.url("/api/cache/from-http")).body("42").send().await.unwrap();
    assert_eq!(put.status(), 200);
    assert_eq!(cli(addr, &["GET", "from-http"]), "42", "and the other way round");
    assert_eq!(cli(addr, &["INCRBY", "from-http", "8"]), "50");
    assert_eq!(cli(addr, &["INCR", "counter"]), "1");
    assert_eq!(cli(addr, &["DECR", "counter"]), "0");
    assert!(cli(addr, &["INCR", "greeting"]).contains("not an integer"));
    let ttl: i64 = cli(addr, &["TTL", "greeting"]).parse().unwrap();
    assert!((590..=600).contains(&ttl), "TTL {ttl}");
    assert_eq!(cli(addr, &["TTL", "missing"]), "-2");
    assert_eq!(cli(addr, &["APPEND", "greeting", " world"]), "11");
    assert_eq!(cli(addr, &["STRLEN", "greeting"]), "11");
    let ttl: i64 = cli(addr, &["TTL", "greeting"]).parse().unwrap();
    assert!(ttl > 500, "APPEND keeps the TTL ({ttl})");
    assert_eq!(cli(addr, &["SET", "greeting", "x", "NX"]), "", "NX on an existing key: nil");
    assert_eq!(cli(addr, &["SET", "lock", "owner-a", "NX", "PX", "30000"]), "OK");
    assert_eq!(cli(addr, &["HEARTH.CAD", "lock", "owner-b"]), "0", "only the owner releases a lock");
    assert_eq!(cli(addr, &["HEARTH.CAD", "lock", "owner-a"]), "1");
    assert_eq!(cli(addr, &["EXISTS", "lock", "greeting", "greeting"]), "2");
    assert_eq!(cli(addr, &["HEARTH.TAG", "greeting", "team:1"]), "1");
    assert_eq!(cli(addr, &["HEARTH.INVALIDATE", "team:1"]), "1");
    assert_eq!(cli(addr, &["GET", "greeting"]), "");
    assert_eq!(cli(addr, &["MSET", "a", "1", "b", "2"]), "OK");
    assert_eq!(cli(addr, &["MGET", "a", "b", "c"]), "1\n2", "a missing key is an empty line (nil)");
    assert_eq!(cli(addr, &["GETDEL", "a"]), "1");
    assert_eq!(cli(addr, &["DEL", "a", "b"]), "1");
    assert!(cli(addr, &["NOSUCH", "x"]).starts_with("ERR unknown command 'nosuch', with args beginning with: 'x'"));
    assert!(cli(addr, &["INFO"]).contains("loading:0"));
    assert_eq!(cli(addr, &["SELECT", "0"]), "OK");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_works_in_resp2_and_resp3_with_pipelines() {
    let (_s, addr) = start(true).await;
    let script = format!(
        r#"
import redis
for proto in (2, 3):
    r = redis.Redis(host="127.0.0.1", port={port}, password="{ADMIN}", protocol=proto, decode_responses=True)
    assert r.ping()
    assert r.set(f"k{{proto}}", "v", ex=60)
    assert r.get(f"k{{proto}}") == "v"
    assert r.incr(f"n{{proto}}") == 1
    p = r.pipeline(transaction=False)
    for i in range(100):
        p.incr(f"n{{proto}}")
    assert p.execute()[-1] == 101
    assert r.set(f"k{{proto}}", "w", nx=True) is None
    assert r.getdel(f"k{{proto}}") == "v"
    assert r.get(f"k{{proto}}") is None
    assert 0 < r.pttl(f"n{{proto}}") <= 3600 * 1000
ro = redis.Redis(host="127.0.0.1", port={port}, password="{READER}", decode_responses=True)
assert ro.get("n2") == "101"
try:
    ro.set("x", "y")
    raise SystemExit("a read-only key wrote")
except redis.exceptions.NoPermissionError:
    pass
try:
    redis.Redis(host="127.0.0.1", port={port}).get("n2")
    raise SystemExit("no AUTH was accepted")
except redis.exceptions.AuthenticationError:
    pass
print("ok")
"#,
        port = addr.port()
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "redis-py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_rust_client_and_redis_benchmark_work() {
    let (s, addr) = start(false).await;
    let client = redis::Client::open(format!("redis://{addr}/0")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.set(format!("p:{i}"), i).ignore();
    }
    pipe.get("p:499");
    let (last,): (i64,) = pipe.query_async(&mut conn).await.unwrap();
    assert_eq!(last, 499);
    assert_eq!(s.app.cache.get("p:0").await.unwrap().unwrap().data().as_ref(), b"0");
    let out = Command::new("redis-benchmark")
        .args(["-p", &addr.port().to_string(), "-t", "set,get,incr,mset", "-n", "2000", "-c", "8", "-P", "4", "-q"])
        .output()
        .expect("redis-benchmark is installed");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    for t in ["SET", "GET", "INCR", "MSET"] {
        let done = text.split(['\r', '\n']).map(str::trim).any(|l| l.starts_with(t) && l.contains("requests per second"));
        assert!(done, "{t} ran: {text}");
    }
    assert!(!text.contains("ERR"), "{text}");
}

#[tokio::test]
async fn bad_keys_http_requests_and_open_binds_are_refused() {
    let (_s, addr) = start(false).await;
    // A key that is not UTF-8 gets an error, not a mangled key.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"*3\r\n$3\r\nSET\r\n$2\r\n\xff\xfe\r\n$1\r\nv\r\n").await.unwrap();
    let mut buf = [0u8; 128];
    let n = c.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("-ERR invalid key"), "{}", String::from_utf8_lossy(&buf[..n]));
    // What a browser sends when a page points it here: closed, unanswered.
    let mut c = tokio::net::TcpStream::connect(addr).await.unwrap();
    c.write_all(b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 13\r\n\r\nSET k hacked\r\n").await.unwrap();
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).await.unwrap();
    assert!(rest.is_empty(), "an HTTP request gets no answer: {:?}", String::from_utf8_lossy(&rest));
    // A public address without API keys does not start.
    let s = TestServer::start_with(|c| c.cache.resp.bind = Some("0.0.0.0:0".into())).await;
    let err = hearth::resp::start(&s.app).await.unwrap_err();
    assert!(err.contains("cache.resp.bind") && err.contains("API keys"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_scan_and_dbsize_list_the_cache_for_redis_cli_and_redis_py() {
    let (s, addr) = start(false).await;
    for i in 0..25 {
        assert_eq!(cli(addr, &["SET", &format!("user:{i}"), "x"]), "OK");
    }
    cli(addr, &["SET", "order:1", "y"]);
    // Set over HTTP, listed over RESP: the same cache.
    let put = reqwest::Client::new().put(s.url("/api/cache/user:http")).body("z").send().await.unwrap();
    assert_eq!(put.status(), 200);
    let mut keys: Vec<String> = cli(addr, &["KEYS", "user:*"]).lines().map(str::to_owned).collect();
    keys.sort();
    let mut expected: Vec<String> = (0..25).map(|i| format!("user:{i}")).chain(["user:http".to_string()]).collect();
    expected.sort();
    assert_eq!(keys, expected, "KEYS lists exactly the matching keys");
    assert_eq!(cli(addr, &["KEYS", "order:?"]), "order:1");
    assert_eq!(cli(addr, &["DBSIZE"]), "27");
    // redis-cli --scan follows the cursor to the end, page by page (10 entries a page).
    let mut scanned: Vec<String> = cli(addr, &["--scan", "--pattern", "user:*"]).lines().map(str::to_owned).collect();
    scanned.sort();
    assert_eq!(scanned, expected, "redis-cli --scan lists every key once");
    assert!(cli(addr, &["SCAN", "123456789"]).contains("invalid cursor"), "an unknown cursor is refused");
    assert_eq!(cli(addr, &["SCAN", "0", "MATCH", "order:*", "TYPE", "hash"]), "0", "no key is a hash");
    // redis-py's scan_iter (SCAN with MATCH and COUNT over a connection pool) sees the same.
    let script = format!(
        r#"
import redis
r = redis.Redis(host="127.0.0.1", port={port}, decode_responses=True)
keys = sorted(r.scan_iter(match="user:*", count=3))
assert keys == sorted([f"user:{{i}}" for i in range(25)] + ["user:http"]), keys
cursor, page = r.scan(0, match="user:*", count=5)
assert cursor != 0 and len(page) <= 5, (cursor, page)
assert sorted(r.keys("order:*")) == ["order:1"]
assert r.dbsize() == 27
print("ok")
"#,
        port = addr.port()
    );
    let out = Command::new("python3").args(["-c", &script]).output().expect("python3");
    assert!(
        out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == "ok",
        "redis-py: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
