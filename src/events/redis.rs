//! The event transport of a cluster: every node publishes to one Redis Stream and reads it.
//!
//! - `publish` hands the event to this node's local subscribers at once (as the embedded
//!   transport does) and queues it for a sender task, which appends it to the stream
//!   (`XADD`, trimmed to about [`KEEP`] entries) in publish order. Publishing never waits
//!   for Redis.
//! - A reader task on a dedicated connection follows the stream (`XREAD BLOCK`) from the
//!   position it had when the transport started, and re-broadcasts the other nodes' events
//!   locally, in stream order. So each publisher's order is kept on every node.
//! - When this node may have missed events — its reader resumed after an outage beyond
//!   the stream's trimmed history, or its own queue overflowed (the others then miss its
//!   events, and are told) — subscribers get [`super::RecvError::Lagged`] through the
//!   [`super::RESYNC`] marker, and resynchronise from the store, as for any lag.

use super::Event;
use super::transport::{EventTransport, LocalTransport, RESYNC, Subscription};
use crate::cluster::{Redis, RedisError};
use ::redis::streams::StreamReadReply;
use chrono::Utc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Entries the stream keeps (approximately): how far a node may fall behind (or be
/// disconnected) and still catch up without a resync.
pub const KEEP: usize = 100_000;
/// Events queued for the stream on this node before newer ones are dropped (and every
/// node told to resync).
const QUEUE: usize = 65_536;
/// Most events appended in one pipelined round trip.
const BATCH: usize = 512;

/// An [`EventTransport`] over a Redis Stream shared by every node.
pub struct RedisTransport {
    local: LocalTransport,
    out: mpsc::Sender<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
}

impl RedisTransport {
    /// Starts the sender and reader tasks of this node; they stop at `shutdown`. Events
    /// other nodes append after this returns are delivered here.
    pub async fn start(redis: Redis, capacity: usize, shutdown: CancellationToken) -> Result<RedisTransport, RedisError> {
        let key = redis.key("events");
        let start_at = last_id(&redis, &key).await?;
        let local = LocalTransport::new(capacity);
        let (out, rx) = mpsc::channel(QUEUE);
        let overflowed = Arc::new(AtomicBool::new(false));
        tokio::spawn(send_loop(redis.clone(), key.clone(), rx, overflowed.clone(), shutdown.clone()));
        tokio::spawn(read_loop(redis, key, start_at, local.clone(), shutdown));
        Ok(RedisTransport { local, out, overflowed })
    }
}

impl EventTransport for RedisTransport {
    fn publish(&self, event: Arc<Event>) {
        self.local.publish(event.clone());
        if self.out.try_send(event).is_err() {
            self.overflowed.store(true, Ordering::Relaxed);
        }
    }

    fn subscribe(&self) -> Subscription {
        self.local.subscribe()
    }

    /// This node's subscriptions, plus one: other nodes may listen, so a publisher must
    /// never skip an event because nobody listens here.
    fn subscriber_count(&self) -> usize {
        self.local.subscriber_count() + 1
    }
}

/// The id of the stream's newest entry (`0-0` when empty).
async fn last_id(redis: &Redis, key: &str) -> Result<String, RedisError> {
    let v: ::redis::Value = redis.query(::redis::cmd("XREVRANGE").arg(key).arg("+").arg("-").arg("COUNT").arg(1)).await?;
    Ok(first_id(&v).unwrap_or_else(|| "0-0".into()))
}

/// The id of the first entry of an `XRANGE`/`XREVRANGE` reply.
fn first_id(v: &::redis::Value) -> Option<String> {
    let ::redis::Value::Array(entries) = v else { return None };
    let ::redis::Value::Array(entry) = entries.first()? else { return None };
    match entry.first()? {
        ::redis::Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        ::redis::Value::SimpleString(s) => Some(s.clone()),
        _ => None,
    }
}

/// Appends queued events to the stream, in order, retrying while Redis is away.
async fn send_loop(
    redis: Redis,
    key: String,
    mut rx: mpsc::Receiver<Arc<Event>>,
    overflowed: Arc<AtomicBool>,
    shutdown: CancellationToken,
) {
    let node = redis.node_id().to_string();
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => if n == 0 { return },
            _ = shutdown.cancelled() => return,
        }
        if overflowed.swap(false, Ordering::Relaxed) {
            // Some of this node's events never made it to the stream: tell every node.
            batch.insert(0, resync_marker());
        }
        let mut pipe = ::redis::pipe();
        for e in &batch {
            let json = serde_json::to_vec(e.as_ref()).unwrap_or_default();
            pipe.cmd("XADD").arg(&key).arg("MAXLEN").arg("~").arg(KEEP).arg("*").arg("n").arg(&node).arg("e").arg(json).ignore();
        }
        let mut wait = Duration::from_millis(50);
        loop {
            let mut conn = redis.conn();
            match tokio::time::timeout(redis.timeout(), pipe.query_async::<()>(&mut conn)).await {
                Ok(Ok(())) => break,
                Ok(Err(e)) => tracing::warn!(error = %e, "events: cannot append to the shared stream; retrying"),
                Err(_) => tracing::warn!("events: appending to the shared stream timed out; retrying"),
            }
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.cancelled() => return,
            }
            wait = (wait * 2).min(Duration::from_secs(2));
        }
        batch.clear();
    }
}

/// Follows the stream and re-broadcasts other nodes' events locally.
async fn read_loop(redis: Redis, key: String, mut after: String, local: LocalTransport, shutdown: CancellationToken) {
    let node = redis.node_id().to_string();
    let mut conn = None;
    let mut wait = Duration::from_millis(50);
    let mut broken = false;
    loop {
        if shutdown.is_cancelled() {
            return;
        }
        if conn.is_none() {
            match redis.dedicated().await {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "events: cannot connect to read the shared stream; retrying");
                    broken = true;
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    wait = (wait * 2).min(Duration::from_secs(2));
                    continue;
                }
            }
        }
        if broken {
            // Back after an outage: events older than the stream's history are gone.
            match gap_since(&redis, &key, &after).await {
                Ok(true) => local.publish(resync_marker()),
                Ok(false) => {}
                Err(_) => {
                    // Not quite back yet: look again shortly.
                    tokio::select! {
                        _ = tokio::time::sleep(wait) => {}
                        _ = shutdown.cancelled() => return,
                    }
                    continue;
                }
            }
            broken = false;
            wait = Duration::from_millis(50);
        }
        let c = conn.as_mut().expect("connected above");
        let cmd = ::redis::cmd("XREAD").arg("COUNT").arg(BATCH).arg("BLOCK").arg(1000).arg("STREAMS").arg(&key).arg(&after).clone();
        let read = tokio::select! {
            r = tokio::time::timeout(redis.timeout() + Duration::from_secs(1), cmd.query_async::<Option<StreamReadReply>>(c)) => r,
            _ = shutdown.cancelled() => return,
        };
        match read {
            Ok(Ok(Some(reply))) => {
                for stream in reply.keys {
                    for entry in stream.ids {
                        after = entry.id.clone();
                        let from: Option<String> = entry.get("n");
                        if from.as_deref() == Some(node.as_str()) {
                            continue;
                        }
                        let Some(json) = entry.get::<Vec<u8>>("e") else { continue };
                        match serde_json::from_slice::<Event>(&json) {
                            Ok(e) => local.publish(Arc::new(Event { from_peer: true, ..e })),
                            Err(err) => tracing::warn!(error = %err, id = %entry.id, "events: unreadable entry in the shared stream"),
                        }
                    }
                }
            }
            Ok(Ok(None)) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "events: reading the shared stream failed; reconnecting");
                conn = None;
                broken = true;
            }
            Err(_) => {
                conn = None;
                broken = true;
            }
        }
    }
}

/// True when entries after `after` may have been trimmed away. Trimming removes the
/// oldest entries first, so while `after` itself is still in the stream nothing after it
/// is gone; once it is gone, some may be (answered conservatively: a resync costs a reload,
/// a missed event costs a wrong screen).
async fn gap_since(redis: &Redis, key: &str, after: &str) -> Result<bool, RedisError> {
    if after == "0-0" {
        // Started on an empty stream: a gap only once trimming has begun.
        let len: u64 = redis.query(::redis::cmd("XLEN").arg(key)).await?;
        return Ok(len as usize >= KEEP);
    }
    let v: ::redis::Value = redis.query(::redis::cmd("XRANGE").arg(key).arg(after).arg(after)).await?;
    Ok(first_id(&v).is_none())
}

fn resync_marker() -> Arc<Event> {
    Arc::new(Event {
        topic: RESYNC.into(),
        key: String::new(),
        user_id: None,
        data: serde_json::Value::Null.into(),
        at: Utc::now(),
        from_peer: false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::RedisConfig;
    use crate::cluster::test_server::RedisServer;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_nodes_on_one_redis_pass_the_conformance_suite() {
        let server = RedisServer::start();
        let url = server.url();
        let shutdown = CancellationToken::new();
        let s2 = shutdown.clone();
        super::super::conformance::run_async(move |capacity| {
            let (url, shutdown) = (url.clone(), s2.clone());
            async move {
                let node = || async {
                    let redis = Redis::connect(&RedisConfig { url: Some(url.clone()), ..Default::default() }).await.unwrap();
                    RedisTransport::start(redis, capacity, shutdown.clone()).await.unwrap()
                };
                (node().await, node().await)
            }
        })
        .await;
        shutdown.cancel();
    }

    async fn node(url: &str, shutdown: &CancellationToken) -> RedisTransport {
        let redis = Redis::connect(&RedisConfig { url: Some(url.to_string()), ..Default::default() }).await.unwrap();
        RedisTransport::start(redis, 1024, shutdown.clone()).await.unwrap()
    }

    fn ev(n: u64) -> Arc<Event> {
        Arc::new(Event {
            topic: "t".into(),
            key: n.to_string(),
            user_id: None,
            data: serde_json::json!({"n": n}).into(),
            at: Utc::now(),
            from_peer: false,
        })
    }

    async fn next(sub: &mut Subscription) -> Result<Arc<Event>, super::super::RecvError> {
        tokio::time::timeout(Duration::from_secs(15), sub.recv()).await.expect("an event within 15 s")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_relayed_from_another_node_are_marked_so_webhooks_go_out_once() {
        let server = RedisServer::start();
        let shutdown = CancellationToken::new();
        let (a, b) = (node(&server.url(), &shutdown).await, node(&server.url(), &shutdown).await);
        let (mut on_a, mut on_b) = (a.subscribe(), b.subscribe());
        a.publish(ev(7));
        assert!(!next(&mut on_a).await.unwrap().from_peer, "the publishing node sees its own event as its own");
        assert!(next(&mut on_b).await.unwrap().from_peer, "the other node sees it relayed");
        shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn events_published_while_redis_is_down_arrive_in_order_once_it_is_back() {
        let mut server = RedisServer::start();
        let shutdown = CancellationToken::new();
        let (a, b) = (node(&server.url(), &shutdown).await, node(&server.url(), &shutdown).await);
        let mut sub = b.subscribe();
        a.publish(ev(0));
        assert_eq!(next(&mut sub).await.unwrap().key, "0");
        server.kill();
        for n in 1..=5 {
            a.publish(ev(n));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        server.restart();
        for n in 1..=5 {
            let e = next(&mut sub).await.expect("no resync: the stream kept everything");
            assert_eq!(e.key, n.to_string(), "events queued during the outage arrive in publish order");
        }
        shutdown.cancel();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_behind_the_trimmed_history_gets_lagged() {
        let server = RedisServer::start();
        let redis = Redis::connect(&RedisConfig { url: Some(server.url()), ..Default::default() }).await.unwrap();
        let key = redis.key("gap");
        let mut ids = Vec::new();
        for i in 0..10 {
            let id: String = redis.query(::redis::cmd("XADD").arg(&key).arg("MAXLEN").arg(3).arg("*").arg("i").arg(i)).await.unwrap();
            ids.push(id);
        }
        assert!(gap_since(&redis, &key, &ids[0]).await.unwrap(), "entries after ids[0] were trimmed away");
        assert!(!gap_since(&redis, &key, &ids[7]).await.unwrap(), "the entry after ids[7] is still there");
        assert!(!gap_since(&redis, &key, &ids[9]).await.unwrap());
    }
}
