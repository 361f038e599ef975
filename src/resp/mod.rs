//! The cache over the Redis protocol (RESP2 and RESP3), for clients that already speak
//! it: `redis-cli`, redis-py, ioredis, Jedis, `redis-benchmark`. Off unless
//! `cache.resp.bind` names an address. An adapter like `http/`: it holds the app's
//! [`Cache`] and runs each command on it (see [`commands`] for the list and how it
//! differs from Redis).
//!
//! - With API keys configured, a connection must `AUTH <key>` (or `HELLO 3 AUTH default
//!   <key>`) first; read-only keys cannot write. Without keys the endpoint may only
//!   listen on a loopback address (as HTTP).
//! - Requests are read as they arrive and answered in order; every reply of the requests
//!   already in the buffer goes out in one write (pipelining costs no extra syscalls).
//! - A request that starts with `POST` or `Host:` is part of an HTTP request a browser
//!   was made to send here (cross-protocol scripting): the connection is closed, as
//!   Redis does.

pub mod commands;
pub mod cursors;
pub mod proto;
pub mod session;

use crate::App;
use crate::cache::Cache;
use crate::http::auth::{Authenticator, Principal};
use bytes::BytesMut;
use commands::{After, Session};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Binds `cache.resp.bind` (if set) and serves it on the app's background tasks until
/// shutdown. Returns the bound address.
pub async fn start(app: &Arc<App>) -> Result<Option<SocketAddr>, String> {
    let Some(bind) = app.config.cache.resp.bind.as_deref() else { return Ok(None) };
    let addr: SocketAddr = bind.parse().map_err(|_| format!("cache.resp.bind: '{bind}' is not an address like 127.0.0.1:6380"))?;
    crate::http::auth::check_bind(&app.config, addr).map_err(|e| format!("cache.resp.bind: {e}"))?;
    let listener = TcpListener::bind(addr).await.map_err(|e| format!("cannot listen on {addr} (cache.resp.bind): {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let auth = Arc::new(Authenticator::new(&app.config));
    let (cache, shutdown) = (app.cache.clone(), app.background().shutdown.clone());
    let max_bulk = app.config.cache.max_entry_bytes.max(64 * 1024);
    let cursors = Arc::new(cursors::Cursors::default());
    app.background().spawn(async move {
        let ids = AtomicU64::new(1);
        loop {
            let (stream, _) = tokio::select! {
                _ = shutdown.cancelled() => return,
                r = listener.accept() => match r {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "resp: accept failed");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let (cache, auth, shutdown) = (cache.clone(), auth.clone(), shutdown.clone());
            let id = ids.fetch_add(1, Ordering::Relaxed);
            let session =
                Session { resp3: false, principal: (!auth.enabled()).then_some(Principal::Open), name: None, id, cursors: cursors.clone() };
            tokio::spawn(async move {
                tokio::select! {
                    _ = shutdown.cancelled() => {}
                    _ = connection(stream, cache, auth, session, max_bulk) => {}
                }
            });
        }
    });
    tracing::info!("cache RESP endpoint listening on {local}");
    Ok(Some(local))
}

/// Serves one connection until the client leaves, sends `QUIT`, or breaks the protocol.
async fn connection(mut stream: TcpStream, cache: Cache, auth: Arc<Authenticator>, mut session: Session, max_bulk: usize) {
    let _ = stream.set_nodelay(true);
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut output = Vec::with_capacity(16 * 1024);
    let mut requests = Vec::new();
    loop {
        let mut close = false;
        let mut broken = None;
        loop {
            match proto::parse(&mut input, max_bulk) {
                Ok(Some(args)) => requests.push(args),
                Ok(None) => break,
                Err(e) => {
                    broken = Some(e.0);
                    break;
                }
            }
        }
        let mut pending = requests.drain(..).peekable();
        while let Some(args) = pending.next() {
            if args.first().is_some_and(|w| w.eq_ignore_ascii_case(b"POST") || w.eq_ignore_ascii_case(b"HOST:")) {
                tracing::warn!("resp: a connection sent an HTTP request (cross-protocol scripting?); closed");
                return;
            }
            if commands::is_plain_write(&args) {
                // A run of plain writes is made durable together (one group commit).
                let mut run = vec![args];
                while let Some(next) = pending.next_if(|a| commands::is_plain_write(a)) {
                    run.push(next);
                }
                let replies = futures::future::join_all(run.into_iter().map(|a| commands::run_write(&cache, &session, a))).await;
                for r in replies {
                    r.encode(session.resp3, &mut output);
                }
                continue;
            }
            let (reply, after) = commands::run(&cache, &auth, &mut session, args).await;
            reply.encode(session.resp3, &mut output);
            if after == After::Close {
                close = true;
                break;
            }
        }
        drop(pending);
        if let Some(why) = broken.filter(|_| !close) {
            // Answered after the requests before it, then the connection closes (as Redis).
            proto::Reply::err(format!("Protocol error: {why}")).encode(session.resp3, &mut output);
            close = true;
        }
        if !output.is_empty() {
            if stream.write_all(&output).await.is_err() {
                return;
            }
            output.clear();
        }
        if close {
            return;
        }
        match stream.read_buf(&mut input).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}
