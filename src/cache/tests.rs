//! Unit tests of the cache service (tiers, TTL, single flight, consistency races).

use super::*;
use crate::clock::ManualClock;
use std::sync::atomic::{AtomicUsize, Ordering};

struct Fixture {
    _dir: tempfile::TempDir,
    store: Store,
    clock: ManualClock,
}

impl Fixture {
    fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        Fixture { _dir: dir, store, clock: ManualClock::new(chrono::Utc::now()) }
    }

    fn cache(&self, tweak: impl FnOnce(&mut CacheConfig)) -> Cache {
        let mut cfg = CacheConfig::default();
        tweak(&mut cfg);
        Cache::new(self.store.clone(), Arc::new(self.clock.clone()), cfg)
    }
}

fn text(s: &str) -> CacheValue {
    CacheValue::with_content_type(s.to_owned(), "text/plain")
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

#[tokio::test]
async fn set_then_get_from_l1_then_from_l2_after_restart() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    c.set("user:1", text("alice"), secs(60), &[]).await.unwrap();
    let hit = c.lookup("user:1").await.unwrap().unwrap();
    assert_eq!((hit.tier, hit.value.data().as_ref(), hit.value.content_type()), (Tier::L1, &b"alice"[..], Some("text/plain")));
    // A new cache on the same store has an empty L1: the value comes from L2, then L1.
    let c2 = f.cache(|_| {});
    assert_eq!(c2.lookup("user:1").await.unwrap().unwrap().tier, Tier::L2);
    assert_eq!(c2.lookup("user:1").await.unwrap().unwrap().tier, Tier::L1);
    assert!(c2.get("user:2").await.unwrap().is_none());
    let s = c2.get_stats().await.unwrap();
    assert_eq!((s.hits, s.misses, s.l1.hits, s.l2.hits, s.l2.misses), (2, 1, 1, 1, 1));
    assert_eq!(s.entries, 1);
    assert!((s.hit_rate - 2.0 / 3.0).abs() < 1e-9);
}

#[tokio::test]
async fn expired_entries_are_never_returned_and_are_swept() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    c.set("a", text("1"), secs(10), &["t".into()]).await.unwrap();
    c.set("b", text("2"), secs(100), &[]).await.unwrap();
    f.clock.advance(chrono::Duration::seconds(9));
    assert!(c.get("a").await.unwrap().is_some());
    f.clock.advance(chrono::Duration::seconds(1));
    assert!(c.get("a").await.unwrap().is_none(), "expired at exactly its expiry");
    // Also from L2 alone.
    assert!(f.cache(|_| {}).get("a").await.unwrap().is_none());
    assert_eq!(c.get_stats().await.unwrap().l2.entries, 2, "not swept yet");
    assert_eq!(c.sweep_expired().await.unwrap(), 1);
    let s = c.get_stats().await.unwrap();
    assert_eq!((s.l2.entries, s.expired), (1, 1));
    assert!(c.get("b").await.unwrap().is_some());
    // The tag index row went with it: invalidating the tag removes nothing.
    assert_eq!(c.invalidate(&["t".into()]).await.unwrap(), 0);
}

#[tokio::test]
async fn l1_copies_live_at_most_l1_ttl() {
    let f = Fixture::new();
    let c = f.cache(|cfg| cfg.l1.ttl = 5);
    let expires = c.set("k", text("v"), secs(100), &[]).await.unwrap().expires_at;
    let hit = c.lookup("k").await.unwrap().unwrap();
    assert_eq!((hit.tier, hit.expires_at), (Tier::L1, expires), "an L1 hit reports the entry's expiry, not its copy's");
    f.clock.advance(chrono::Duration::seconds(6));
    let hit = c.lookup("k").await.unwrap().unwrap();
    assert_eq!(hit.tier, Tier::L2);
    assert_eq!(c.lookup("k").await.unwrap().unwrap().tier, Tier::L1, "promoted again");
}

#[tokio::test]
async fn compression_round_trips_and_shrinks_l2() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    let big = "the quick brown fox jumps over the lazy dog. ".repeat(2000);
    c.set("big", text(&big), secs(60), &[]).await.unwrap();
    let s = c.get_stats().await.unwrap();
    assert!(s.l2.bytes < big.len() as u64 / 5, "L2 holds {} bytes for a {} byte value", s.l2.bytes, big.len());
    let v = f.cache(|_| {}).get("big").await.unwrap().unwrap();
    assert_eq!(v.data().as_ref(), big.as_bytes());
    // With compression off the record is at least the value.
    let f2 = Fixture::new();
    let c2 = f2.cache(|cfg| cfg.compression.enabled = false);
    c2.set("big", text(&big), secs(60), &[]).await.unwrap();
    assert!(c2.get_stats().await.unwrap().l2.bytes >= big.len() as u64);
}

#[tokio::test]
async fn l2_stays_within_its_byte_bound_evicting_earliest_expiry_first() {
    let f = Fixture::new();
    let max = 64 * 1024;
    let c = f.cache(|cfg| {
        cfg.l2.max_size = max;
        cfg.compression.enabled = false;
        cfg.l1.enabled = false;
    });
    let mut seed = 7u32;
    for i in 0..100u64 {
        let v: Vec<u8> = (0..2048)
            .map(|_| {
                seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12345);
                (seed >> 16) as u8
            })
            .collect();
        // Later keys live longer, so the earliest keys are the first victims.
        c.set(&format!("k{i:03}"), CacheValue::new(v), secs(1000 + i), &[]).await.unwrap();
        let s = c.get_stats().await.unwrap();
        assert!(s.l2.bytes <= max, "after {i}: {} > {max}", s.l2.bytes);
    }
    let s = c.get_stats().await.unwrap();
    assert!(s.l2.evictions > 60, "evictions {}", s.l2.evictions);
    assert_eq!(s.l2.entries + s.l2.evictions, 100);
    assert!(c.get("k000").await.unwrap().is_none());
    assert!(c.get("k099").await.unwrap().is_some());
    // A value bigger than the whole tier is refused, naming the value.
    let err = c.set("huge", CacheValue::new(vec![0u8; max as usize + 1]), secs(10), &[]).await.unwrap_err();
    assert!(matches!(err, CacheError::TooLarge(_)), "{err:?}");
}

#[tokio::test]
async fn invalidate_and_delete_pattern_hit_both_tiers() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    c.set("user:1", text("a"), secs(60), &["user".into(), "profile".into()]).await.unwrap();
    c.set("user:2", text("b"), secs(60), &["user".into()]).await.unwrap();
    c.set("post:1", text("c"), secs(60), &["post".into()]).await.unwrap();
    c.set("user:1/avatar", text("d"), secs(60), &[]).await.unwrap();
    assert_eq!(c.invalidate(&["profile".into()]).await.unwrap(), 1);
    assert!(c.get("user:1").await.unwrap().is_none());
    assert!(c.get("user:2").await.unwrap().is_some());
    assert_eq!(c.delete_pattern("user:*").await.unwrap(), 2);
    assert!(c.get("user:2").await.unwrap().is_none());
    assert!(c.get("user:1/avatar").await.unwrap().is_none());
    assert!(c.get("post:1").await.unwrap().is_some());
    // Nothing survives in L2 either.
    let fresh = f.cache(|_| {});
    assert!(fresh.get("user:2").await.unwrap().is_none());
    assert!(fresh.get("post:1").await.unwrap().is_some());
    assert!(c.delete("post:1").await.unwrap());
    assert!(!c.delete("post:1").await.unwrap());
    assert!(f.cache(|_| {}).get("post:1").await.unwrap().is_none());
}

#[tokio::test]
async fn l1_only_mode_works_without_l2() {
    let f = Fixture::new();
    let c = f.cache(|cfg| cfg.l2.enabled = false);
    c.set("x:1", text("a"), secs(60), &["t".into()]).await.unwrap();
    c.set("x:2", text("b"), secs(60), &[]).await.unwrap();
    assert_eq!(c.lookup("x:1").await.unwrap().unwrap().tier, Tier::L1);
    assert_eq!(c.invalidate(&["t".into()]).await.unwrap(), 1);
    assert_eq!(c.delete_pattern("x:*").await.unwrap(), 1);
    let v = c.get_or_set("y", || async { Ok::<_, anyhow::Error>(text("z")) }, secs(5)).await.unwrap();
    assert_eq!(v.data().as_ref(), b"z");
    assert!(c.get("y").await.unwrap().is_some());
    assert!(!c.get_stats().await.unwrap().l2.enabled);
}

#[tokio::test]
async fn bad_arguments_name_their_field() {
    let f = Fixture::new();
    let c = f.cache(|cfg| cfg.max_entry_bytes = 10);
    let field = |e: CacheError| match e {
        CacheError::Invalid { field, .. } => field,
        CacheError::TooLarge(_) => "value",
        other => panic!("unexpected {other:?}"),
    };
    assert_eq!(field(c.set("", text("a"), None, &[]).await.unwrap_err()), "key");
    assert_eq!(field(c.set(&"k".repeat(1025), text("a"), None, &[]).await.unwrap_err()), "key");
    assert_eq!(field(c.set("k", text("01234567890"), None, &[]).await.unwrap_err()), "value");
    assert_eq!(field(c.set("k", text("a"), Some(Duration::ZERO), &[]).await.unwrap_err()), "ttl");
    assert_eq!(field(c.set("k", text("a"), secs(11 * 365 * 86400), &[]).await.unwrap_err()), "ttl");
    assert_eq!(field(c.set("k", text("a"), None, &["".into()]).await.unwrap_err()), "tags");
    assert_eq!(field(c.delete_pattern("user:[").await.unwrap_err()), "pattern");
    assert_eq!(field(c.invalidate(&[]).await.unwrap_err()), "tags");
    assert_eq!(field(c.get("").await.unwrap_err()), "key");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn single_flight_runs_the_factory_once_for_concurrent_misses() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    let runs = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(tokio::sync::Notify::new());
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (c, runs, gate) = (c.clone(), runs.clone(), gate.clone());
        tasks.push(tokio::spawn(async move {
            c.get_or_set(
                "hot",
                || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    gate.notified().await;
                    Ok::<_, anyhow::Error>(text("computed"))
                },
                secs(60),
            )
            .await
        }));
    }
    // Let every task reach the flight, then release the one factory.
    while c.inner.flights.len() == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    gate.notify_waiters();
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().data().as_ref(), b"computed");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(c.get("hot").await.unwrap().unwrap().data().as_ref(), b"computed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_factory_releases_every_waiter_with_its_error() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (c, runs) = (c.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            c.get_or_set(
                "boom",
                || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Err::<CacheValue, _>(anyhow::anyhow!("database down"))
                },
                secs(60),
            )
            .await
        }));
    }
    for t in tasks {
        match t.await.unwrap() {
            Err(CacheError::Factory(e)) => assert!(e.to_string().contains("database down")),
            other => panic!("expected the factory error, got {other:?}"),
        }
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(c.get("boom").await.unwrap().is_none(), "errors are not cached");
    // The next call runs the factory again.
    let v = c.get_or_set("boom", || async { Ok::<_, anyhow::Error>(text("ok")) }, secs(60)).await.unwrap();
    assert_eq!(v.data().as_ref(), b"ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_leader_hands_over_to_a_waiter() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    let c1 = c.clone();
    let leader = tokio::spawn(async move { c1.get_or_set("k", std::future::pending::<Result<CacheValue, anyhow::Error>>, secs(60)).await });
    while c.inner.flights.len() == 0 {
        tokio::task::yield_now().await;
    }
    let c2 = c.clone();
    let waiter = tokio::spawn(async move { c2.get_or_set("k", || async { Ok::<_, anyhow::Error>(text("second")) }, secs(60)).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    let v = tokio::time::timeout(Duration::from_secs(5), waiter).await.expect("waiter released").unwrap().unwrap();
    assert_eq!(v.data().as_ref(), b"second");
}

/// Runs `get_or_set` whose factory loads "old" and blocks until released; while it
/// blocks, `remove` runs; the old value must not be stored afterwards.
async fn removal_during_factory_is_not_undone<F, Fut>(c: &Cache, key: &str, tags: &[String], remove: F)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ()>,
{
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (c1, k1, t1, s1, r1) = (c.clone(), key.to_owned(), tags.to_vec(), started.clone(), release.clone());
    let load = tokio::spawn(async move {
        c1.get_or_set_tagged(&k1, secs(60), &t1, || async move {
            s1.notify_one();
            r1.notified().await;
            Ok::<_, anyhow::Error>(text("old"))
        })
        .await
    });
    started.notified().await;
    remove().await;
    release.notify_one();
    let got = load.await.unwrap().unwrap();
    assert_eq!(got.data().as_ref(), b"old", "the caller still gets its factory's value");
    assert!(c.get(key).await.unwrap().is_none(), "{key}: the removal was undone in L1 or L2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_invalidate_and_pattern_are_not_undone_by_a_concurrent_get_or_set() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    removal_during_factory_is_not_undone(&c, "d:1", &[], || async {
        c.delete("d:1").await.unwrap();
    })
    .await;
    removal_during_factory_is_not_undone(&c, "i:1", &["grp".into()], || async {
        c.invalidate(&["grp".into()]).await.unwrap();
    })
    .await;
    removal_during_factory_is_not_undone(&c, "p:1", &[], || async {
        c.delete_pattern("p:*").await.unwrap();
    })
    .await;
    // A set during the factory wins over the factory's older value.
    let started = Arc::new(tokio::sync::Notify::new());
    let release = Arc::new(tokio::sync::Notify::new());
    let (c1, s1, r1) = (c.clone(), started.clone(), release.clone());
    let load = tokio::spawn(async move {
        c1.get_or_set(
            "s:1",
            || async move {
                s1.notify_one();
                r1.notified().await;
                Ok::<_, anyhow::Error>(text("old"))
            },
            secs(60),
        )
        .await
    });
    started.notified().await;
    c.set("s:1", text("new"), secs(60), &[]).await.unwrap();
    release.notify_one();
    load.await.unwrap().unwrap();
    assert_eq!(c.get("s:1").await.unwrap().unwrap().data().as_ref(), b"new");
    assert_eq!(f.cache(|_| {}).get("s:1").await.unwrap().unwrap().data().as_ref(), b"new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_sets_and_deletes_leave_both_tiers_agreeing() {
    let f = Fixture::new();
    let c = f.cache(|_| {});
    for round in 0..20 {
        let key = format!("race:{round}");
        let mut tasks = Vec::new();
        for i in 0..8 {
            let (c2, key2) = (c.clone(), key.clone());
            tasks.push(tokio::spawn(async move {
                let (c, key) = (c2, key2);
                if i % 3 == 2 {
                    c.delete(&key).await.map(|_| ())
                } else {
                    c.set(&key, text(&format!("v{i}")), secs(60), &[]).await.map(|_| ())
                }
            }));
            let (c3, key3) = (c.clone(), key.clone());
            tasks.push(tokio::spawn(async move { c3.get(&key3).await.map(|_| ()) }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        let l1 = c.get(&key).await.unwrap().map(|v| v.data().clone());
        let l2 = f.cache(|_| {}).get(&key).await.unwrap().map(|v| v.data().clone());
        assert_eq!(l1, l2, "round {round}: L1 and L2 disagree");
    }
}

#[tokio::test]
async fn cached_returns_typed_values_and_computes_once() {
    #[derive(serde::Serialize, serde::Deserialize, PartialEq, Debug)]
    struct User {
        id: u32,
        name: String,
    }
    let f = Fixture::new();
    let c = f.cache(|_| {});
    let runs = AtomicUsize::new(0);
    for _ in 0..3 {
        let u: User = c
            .cached("user:7", secs(60), &["users"], || async {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, anyhow::Error>(User { id: 7, name: "Ada".into() })
            })
            .await
            .unwrap();
        assert_eq!(u, User { id: 7, name: "Ada".into() });
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(c.get("user:7").await.unwrap().unwrap().content_type(), Some("application/json"));
    assert_eq!(c.invalidate(&["users".into()]).await.unwrap(), 1);
    let _: User =
        c.cached("user:7", secs(60), &["users"], || async { Ok::<_, anyhow::Error>(User { id: 7, name: "Ada".into() }) }).await.unwrap();
    // A value of another shape is recomputed rather than failing.
    c.set_json("user:8", &"not a user", secs(60), &[]).await.unwrap();
    let u: User = c.cached("user:8", secs(60), &[], || async { Ok::<_, anyhow::Error>(User { id: 8, name: "Bo".into() }) }).await.unwrap();
    assert_eq!(u.id, 8);
    assert_eq!(c.get_json::<User>("user:8").await.unwrap().unwrap().name, "Bo");
}

#[tokio::test]
async fn hooks_see_every_operation() {
    #[derive(Default)]
    struct Log(parking_lot::Mutex<Vec<String>>);
    impl CacheHooks for Log {
        fn on_get(&self, key: &str) {
            self.0.lock().push(format!("get {key}"));
        }
        fn on_set(&self, key: &str, _: &CacheValue) {
            self.0.lock().push(format!("set {key}"));
        }
        fn on_delete(&self, key: &str) {
            self.0.lock().push(format!("delete {key}"));
        }
        fn on_hit(&self, key: &str, tier: Tier) {
            self.0.lock().push(format!("hit {key} {}", tier.as_str()));
        }
        fn on_miss(&self, key: &str) {
            self.0.lock().push(format!("miss {key}"));
        }
    }
    let f = Fixture::new();
    let c = f.cache(|_| {});
    let log = Arc::new(Log::default());
    c.register_hooks(log.clone());
    c.set("a", text("1"), secs(60), &[]).await.unwrap();
    c.get("a").await.unwrap();
    c.get("b").await.unwrap();
    c.delete("a").await.unwrap();
    assert_eq!(*log.0.lock(), vec!["set a", "get a", "hit a l1", "get b", "miss b", "delete a"]);
}

#[tokio::test]
async fn l1_is_bounded_by_bytes() {
    let f = Fixture::new();
    let c = f.cache(|cfg| {
        cfg.l1.max_bytes = 256 * 1024;
        cfg.l2.enabled = false;
    });
    for i in 0..200 {
        c.set(&format!("k{i}"), CacheValue::new(vec![1u8; 4096]), secs(60), &[]).await.unwrap();
    }
    let s = c.get_stats().await.unwrap();
    assert!(s.l1.bytes <= 256 * 1024, "{}", s.l1.bytes);
    assert!(s.l1.evictions > 0);
}

/// `cache.l1.max_size` counts entries (the seed's `max_size: 1000`), whatever their size.
#[tokio::test]
async fn l1_is_bounded_by_entries() {
    let f = Fixture::new();
    let c = f.cache(|cfg| {
        cfg.l1.max_size = 50;
        cfg.l2.enabled = false;
    });
    for i in 0..400 {
        c.set(&format!("k{i}"), CacheValue::new(vec![1u8; 8]), secs(60), &[]).await.unwrap();
    }
    let s = c.get_stats().await.unwrap();
    assert!(s.l1.entries <= 50, "{} entries", s.l1.entries);
    assert!(s.l1.entries >= 10, "small entries still fit: {}", s.l1.entries);
    assert!(s.l1.evictions > 0);
}
