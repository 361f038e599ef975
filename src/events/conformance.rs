//! The conformance suite every [`EventTransport`] must pass (compiled for tests and with the
//! `conformance` feature, so backend crates and hearth's own adapters run the same checks).
//!
//! `make(capacity)` returns two handles on ONE bus: events published on the first must
//! reach subscribers of the second. For the embedded transport both are the same channel;
//! for a cluster transport they are two nodes ([`run_async`] takes an async `make`).
//! `capacity` is the local fan-out capacity (how far a subscriber may fall behind before
//! it lags); the suite passes at least 16.

use super::{Event, EventTransport, RecvError, Subscription};
use chrono::Utc;
use std::sync::Arc;
use std::time::Duration;

/// How long the suite waits for an event that must arrive.
const WAIT: Duration = Duration::from_secs(5);

fn event(topic: &str, n: u64) -> Arc<Event> {
    Arc::new(Event {
        topic: topic.into(),
        key: format!("k{n}"),
        user_id: None,
        data: serde_json::json!({ "n": n }).into(),
        at: Utc::now(),
        from_peer: false,
    })
}

fn n_of(e: &Event) -> u64 {
    e.data["n"].as_u64().expect("suite events carry n")
}

async fn next(sub: &mut Subscription) -> Result<Arc<Event>, RecvError> {
    tokio::time::timeout(WAIT, sub.recv()).await.expect("an event must arrive within 5 s")
}

/// Waits until `sub` has seen the event numbered `n` on `topic` (skipping others).
async fn drain_until(sub: &mut Subscription, topic: &str, n: u64) {
    loop {
        match next(sub).await {
            Ok(e) if e.topic == topic && n_of(&e) == n => return,
            Ok(_) | Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => panic!("transport closed while waiting for {topic} {n}"),
        }
    }
}

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<T: EventTransport>(make: impl Fn(usize) -> (T, T)) {
    run_async(|capacity| std::future::ready(make(capacity))).await
}

/// As [`run`], for transports that connect to something when made.
pub async fn run_async<T, F, Fut>(make: F)
where
    T: EventTransport,
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = (T, T)>,
{
    in_order_to_every_subscriber(make(4096).await).await;
    never_older_than_the_subscription(make(1024).await).await;
    lagged_then_the_newest(make(16).await).await;
    concurrent_publishers_keep_their_own_order(make(8192).await).await;
    subscriber_count_follows_drops(make(64).await).await;
}

/// Every subscriber receives every event, in publish order.
async fn in_order_to_every_subscriber<T: EventTransport>((publisher, node): (T, T)) {
    let mut a = node.subscribe();
    let mut b = node.subscribe();
    for n in 0..1000 {
        publisher.publish(event("order", n));
    }
    for sub in [&mut a, &mut b] {
        for n in 0..1000 {
            let e = next(sub).await.unwrap_or_else(|e| panic!("event {n}: {e}"));
            assert_eq!((e.topic.as_str(), n_of(&e)), ("order", n), "events must arrive in publish order");
            assert_eq!(e.key, format!("k{n}"), "the key travels with the event");
        }
    }
}

/// A subscription never sees events published before it was made.
async fn never_older_than_the_subscription<T: EventTransport>((publisher, node): (T, T)) {
    let mut probe = node.subscribe();
    publisher.publish(event("before", 1));
    // Once the probe has it, the event has reached this node.
    drain_until(&mut probe, "before", 1).await;
    let mut late = node.subscribe();
    publisher.publish(event("after", 2));
    let e = next(&mut late).await.expect("the later event arrives");
    assert_eq!((e.topic.as_str(), n_of(&e)), ("after", 2), "a subscription must not receive events published before it");
}

/// A subscriber that falls behind gets `Lagged`, then continues with events still held,
/// in order, up to the newest.
async fn lagged_then_the_newest<T: EventTransport>((publisher, node): (T, T)) {
    let capacity = 16;
    let mut slow = node.subscribe();
    let mut fast = node.subscribe();
    let total = (capacity * 8) as u64;
    for n in 0..total {
        publisher.publish(event("lag", n));
    }
    // The fast subscriber drains as they arrive; once it saw the last one, all reached
    // this node and the slow one has been overrun.
    let mut seen = 0;
    loop {
        match next(&mut fast).await {
            Ok(e) if n_of(&e) == total - 1 => break,
            Ok(_) => seen += 1,
            Err(RecvError::Lagged(_)) => {}
            Err(RecvError::Closed) => panic!("closed"),
        }
        assert!(seen <= total, "more events than published");
    }
    match next(&mut slow).await {
        Err(RecvError::Lagged(n)) => assert!(n > 0, "Lagged must count the skipped events"),
        other => panic!("a subscriber overrun by {total} events with capacity {capacity} must get Lagged, got {other:?}"),
    }
    let mut last = None;
    loop {
        match tokio::time::timeout(Duration::from_millis(200), slow.recv()).await {
            Ok(Ok(e)) => {
                let n = n_of(&e);
                assert!(last.is_none_or(|l| n > l), "after Lagged, events continue in order");
                last = Some(n);
            }
            Ok(Err(RecvError::Lagged(_))) => {}
            Ok(Err(RecvError::Closed)) => panic!("closed"),
            Err(_) => break,
        }
    }
    assert_eq!(last, Some(total - 1), "after Lagged, the newest event is still delivered");
}

/// Two publishers at once: each one's events arrive in its own order.
async fn concurrent_publishers_keep_their_own_order<T: EventTransport>((publisher, node): (T, T)) {
    let publisher = Arc::new(publisher);
    let mut sub = node.subscribe();
    let per = 500u64;
    let tasks: Vec<_> = ["left", "right"]
        .into_iter()
        .map(|topic| {
            let p = publisher.clone();
            tokio::spawn(async move {
                for n in 0..per {
                    p.publish(event(topic, n));
                    if n % 50 == 0 {
                        tokio::task::yield_now().await;
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("publisher task");
    }
    let (mut left, mut right) = (0, 0);
    while left < per || right < per {
        let e = next(&mut sub).await.expect("no event may be lost below capacity");
        let slot = if e.topic == "left" { &mut left } else { &mut right };
        assert_eq!(n_of(&e), *slot, "events of one publisher arrive in its order");
        *slot += 1;
    }
}

/// The count of local subscribers follows subscribe and drop.
async fn subscriber_count_follows_drops<T: EventTransport>((_, node): (T, T)) {
    let before = node.subscriber_count();
    let a = node.subscribe();
    let b = node.subscribe();
    assert_eq!(node.subscriber_count(), before + 2);
    drop(a);
    assert_eq!(node.subscriber_count(), before + 1);
    drop(b);
    assert_eq!(node.subscriber_count(), before);
}
