//! The conformance suite every L2 [`CacheBackend`] must pass (compiled for tests and with
//! the `conformance` feature).
//!
//! The [`Harness`] opens one fresh storage; every check uses its own key prefix in it, and
//! the last check re-opens it (a restart). Give the backend a small capacity (64 KiB or
//! so) so that the eviction check can fill it; a backend that does not bound its size
//! itself (e.g. one that leaves eviction to the server's `maxmemory`) reports
//! `capacity() == u64::MAX`, and that check is skipped. Keys given to a backend are full
//! keys.

use super::CacheValue;
use super::backend::{BackendEntry, CacheBackend, KeyFilter, Precondition};
use crate::conformance::Harness;
use std::sync::Arc;

/// The suite's "now": the wall clock when the suite first asks, fixed from then on.
/// Backends get every time from the caller, but a remote store may also let its own
/// (wall) clock expire entries, so the suite's times must be near the real ones.
fn now() -> i64 {
    static NOW: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *NOW.get_or_init(|| chrono::Utc::now().timestamp_millis())
}
/// An hour, in ms.
const HOUR: i64 = 3_600_000;

fn entry(data: &[u8], ttl_ms: i64, tags: &[&str]) -> BackendEntry {
    BackendEntry {
        value: CacheValue::with_content_type(data.to_vec(), "text/plain"),
        expires_ms: now() + ttl_ms,
        tags: tags.iter().map(|t| t.to_string()).collect(),
    }
}

/// `len` pseudo-random (xorshift) bytes: data no compressor shrinks.
pub fn noise(len: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

fn always() -> Precondition {
    Box::new(|| true)
}

fn never() -> Precondition {
    Box::new(|| false)
}

async fn data<B: CacheBackend>(b: &B, key: &str) -> Option<Vec<u8>> {
    b.get(key, now()).await.expect("get").map(|e| e.value.data().to_vec())
}

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<B: CacheBackend>(mut h: impl Harness<B>) {
    let b = h.fresh().await;
    read_after_write_round_trips_everything(&b).await;
    expired_entries_are_never_returned(&b).await;
    preconditions_guard_writes(&b).await;
    tags_invalidate_exactly_their_entries(&b).await;
    pattern_deletes_match_prefix_and_filter(&b).await;
    listings_page_through_live_matching_keys(&b).await;
    sweep_removes_only_expired_entries(&b).await;
    usage_and_eviction_respect_the_capacity(&b).await;
    b.set("durable:1", entry(b"kept", HOUR, &["d"]), always()).await.expect("set");
    let b = h.reopen(b).await;
    assert_eq!(data(&b, "durable:1").await.as_deref(), Some(&b"kept"[..]), "an acknowledged set survives a re-open");
    assert_eq!(b.delete_tagged(&["d".into()]).await.expect("delete_tagged"), 1, "tags survive a re-open");
}

async fn read_after_write_round_trips_everything<B: CacheBackend>(b: &B) {
    assert!(b.get("rw:missing", now()).await.expect("get").is_none(), "a missing key reads as None");
    let out = b.set("rw:1", entry(b"hello", HOUR, &["t1", "t2"]), always()).await.expect("set");
    assert!(out.applied && !out.existed, "a first set is applied and replaced nothing: {out:?}");
    let got = b.get("rw:1", now()).await.expect("get").expect("read-after-write finds the entry");
    assert_eq!(got.value.data().as_ref(), b"hello", "the bytes round-trip");
    assert_eq!(got.value.content_type(), Some("text/plain"), "the content type round-trips");
    assert_eq!(got.expires_ms, now() + HOUR, "the expiry round-trips");
    let mut tags = got.tags.clone();
    tags.sort();
    assert_eq!(tags, ["t1", "t2"], "the tags round-trip");
    let out = b.set("rw:1", entry(b"again", HOUR, &[]), always()).await.expect("set");
    assert!(out.applied && out.existed, "overwriting reports the replaced entry: {out:?}");
    assert_eq!(data(b, "rw:1").await.as_deref(), Some(&b"again"[..]), "an overwrite replaces the value");
    // Values beyond any compression threshold come back byte for byte.
    let big: Vec<u8> = (0..40_000u32).map(|i| (i % 251) as u8).collect();
    b.set("rw:big", BackendEntry { value: CacheValue::new(big.clone()), expires_ms: now() + HOUR, tags: vec![] }, always())
        .await
        .expect("set a large value");
    let got = b.get("rw:big", now()).await.expect("get").expect("large value present");
    assert_eq!(got.value.data().as_ref(), big.as_slice(), "a large value round-trips exactly");
    assert_eq!(got.value.content_type(), None, "no content type stays none");
    let out = b.delete("rw:1", always()).await.expect("delete");
    assert!(out.applied && out.existed, "deleting a present key reports it existed: {out:?}");
    assert!(data(b, "rw:1").await.is_none(), "a deleted key is gone");
    let out = b.delete("rw:1", always()).await.expect("delete");
    assert!(!out.existed, "deleting an absent key reports it did not exist: {out:?}");
    b.delete("rw:big", always()).await.expect("delete");
}

async fn expired_entries_are_never_returned<B: CacheBackend>(b: &B) {
    b.set("exp:1", entry(b"x", 1000, &[]), always()).await.expect("set");
    assert!(b.get("exp:1", now() + 999).await.expect("get").is_some(), "an entry is live before its expiry");
    assert!(b.get("exp:1", now() + 1000).await.expect("get").is_none(), "an entry is not returned at its expiry instant");
    assert!(b.get("exp:1", now() + HOUR).await.expect("get").is_none(), "an entry is not returned after its expiry");
}

async fn preconditions_guard_writes<B: CacheBackend>(b: &B) {
    b.set("pre:1", entry(b"first", HOUR, &[]), always()).await.expect("set");
    let out = b.set("pre:1", entry(b"second", HOUR, &[]), never()).await.expect("set");
    assert!(!out.applied, "a set whose precondition fails is not applied: {out:?}");
    assert_eq!(data(b, "pre:1").await.as_deref(), Some(&b"first"[..]), "a refused set changes nothing");
    let out = b.delete("pre:1", never()).await.expect("delete");
    assert!(!out.applied, "a delete whose precondition fails is not applied: {out:?}");
    assert!(data(b, "pre:1").await.is_some(), "a refused delete changes nothing");
    let out = b.set("pre:new", entry(b"v", HOUR, &[]), never()).await.expect("set");
    assert!(!out.applied && data(b, "pre:new").await.is_none(), "a refused set never creates the key");
    b.delete("pre:1", always()).await.expect("delete");
}

async fn tags_invalidate_exactly_their_entries<B: CacheBackend>(b: &B) {
    b.set("tag:a", entry(b"a", HOUR, &["red"]), always()).await.expect("set");
    b.set("tag:b", entry(b"b", HOUR, &["red", "blue"]), always()).await.expect("set");
    b.set("tag:c", entry(b"c", HOUR, &["blue"]), always()).await.expect("set");
    b.set("tag:d", entry(b"d", HOUR, &["green"]), always()).await.expect("set");
    // An overwrite without the tag must drop the entry from that tag.
    b.set("tag:e", entry(b"e", HOUR, &["red"]), always()).await.expect("set");
    b.set("tag:e", entry(b"e2", HOUR, &["green"]), always()).await.expect("set");
    let n = b.delete_tagged(&["red".into()]).await.expect("delete_tagged");
    assert_eq!(n, 2, "invalidating a tag removes exactly the entries that carry it now");
    assert!(data(b, "tag:a").await.is_none() && data(b, "tag:b").await.is_none(), "tagged entries are gone");
    assert!(data(b, "tag:c").await.is_some(), "an entry without the tag stays");
    assert_eq!(data(b, "tag:e").await.as_deref(), Some(&b"e2"[..]), "an entry re-set without the tag is not invalidated by it");
    let n = b.delete_tagged(&["blue".into(), "green".into()]).await.expect("delete_tagged");
    assert_eq!(n, 3, "several tags at once remove each entry once");
    assert_eq!(b.delete_tagged(&["red".into()]).await.expect("again"), 0, "a tag with no entries removes nothing");
}

async fn pattern_deletes_match_prefix_and_filter<B: CacheBackend>(b: &B) {
    for k in ["pat:user:1", "pat:user:2", "pat:user:x", "pat:order:1", "patx:user:1"] {
        b.set(k, entry(k.as_bytes(), HOUR, &[]), always()).await.expect("set");
    }
    let digits: KeyFilter = Arc::new(|k: &str| k.rsplit(':').next().is_some_and(|s| s.chars().all(|c| c.is_ascii_digit())));
    let n = b.delete_matching("pat:user:", digits).await.expect("delete_matching");
    assert_eq!(n, 2, "a pattern delete removes the keys with the prefix that pass the filter");
    assert!(data(b, "pat:user:1").await.is_none() && data(b, "pat:user:2").await.is_none());
    for kept in ["pat:user:x", "pat:order:1", "patx:user:1"] {
        assert!(data(b, kept).await.is_some(), "{kept} does not match and stays");
    }
    let all: KeyFilter = Arc::new(|_| true);
    assert_eq!(b.delete_matching("pat:", all).await.expect("delete_matching"), 2, "the prefix bounds the scan");
    assert!(data(b, "patx:user:1").await.is_some(), "a key outside the prefix stays");
    b.delete("patx:user:1", always()).await.expect("delete");
}

/// Every key `list_keys` gives for `scan_prefix` and `filter` at `now_ms`, page by page
/// (`count` per page), sorted and without repeats.
async fn list_all<B: CacheBackend>(b: &B, scan_prefix: &str, filter: KeyFilter, count: usize, now_ms: i64) -> Vec<String> {
    let (mut keys, mut cursor) = (Vec::new(), None::<String>);
    for _ in 0..10_000 {
        let page = b.list_keys(scan_prefix, filter.clone(), cursor.as_deref(), count, now_ms).await.expect("list_keys");
        keys.extend(page.keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => {
                keys.sort();
                keys.dedup();
                return keys;
            }
        }
    }
    panic!("a listing of a handful of keys never ended");
}

async fn listings_page_through_live_matching_keys<B: CacheBackend>(b: &B) {
    for k in ["ls:a:1", "ls:a:2", "ls:a:3", "ls:a:x", "ls:b:1", "lsx:a:1"] {
        b.set(k, entry(k.as_bytes(), HOUR, &[]), always()).await.expect("set");
    }
    b.set("ls:a:4", entry(b"shorter", HOUR / 2, &[]), always()).await.expect("set");
    let all: KeyFilter = Arc::new(|_| true);
    let digits: KeyFilter = Arc::new(|k: &str| k.rsplit(':').next().is_some_and(|s| s.chars().all(|c| c.is_ascii_digit())));
    for count in [1, 2, 100] {
        assert_eq!(
            list_all(b, "ls:a:", all.clone(), count, now()).await,
            ["ls:a:1", "ls:a:2", "ls:a:3", "ls:a:4", "ls:a:x"],
            "pages of {count} list every live key with the prefix once"
        );
    }
    assert_eq!(
        list_all(b, "ls:a:", digits, 2, now() + HOUR / 2).await,
        ["ls:a:1", "ls:a:2", "ls:a:3"],
        "the filter applies, and an entry expired at now_ms is not listed"
    );
    assert_eq!(list_all(b, "ls:", all.clone(), 3, now()).await.len(), 6, "the prefix bounds the listing");
    assert!(list_all(b, "nothing-here:", all.clone(), 10, now()).await.is_empty(), "no key, empty listing");
    assert_eq!(b.delete_matching("ls", all).await.expect("cleanup"), 7);
}

async fn sweep_removes_only_expired_entries<B: CacheBackend>(b: &B) {
    b.set("sw:old1", entry(b"o", 10, &["sw"]), always()).await.expect("set");
    b.set("sw:old2", entry(b"o", 20, &[]), always()).await.expect("set");
    b.set("sw:live", entry(b"l", HOUR, &["sw"]), always()).await.expect("set");
    let n = b.sweep(now() + 1000).await.expect("sweep");
    assert!(n >= 2, "the sweep removes the expired entries (removed {n})");
    assert!(b.get("sw:live", now() + 1000).await.expect("get").is_some(), "the sweep keeps live entries");
    assert_eq!(b.sweep(now() + 1000).await.expect("sweep"), 0, "a second sweep finds nothing");
    assert_eq!(b.delete_tagged(&["sw".into()]).await.expect("delete_tagged"), 1, "a swept entry no longer counts for its tags");
}

async fn usage_and_eviction_respect_the_capacity<B: CacheBackend>(b: &B) {
    let before = b.usage().await.expect("usage");
    b.set("use:1", entry(&[7u8; 1000], HOUR, &[]), always()).await.expect("set");
    let after = b.usage().await.expect("usage");
    assert_eq!(after.entries, before.entries + 1, "usage counts entries");
    assert!(after.bytes >= before.bytes + 1000, "usage counts bytes");
    b.delete("use:1", always()).await.expect("delete");
    assert_eq!(b.usage().await.expect("usage"), before, "a delete gives the space back");
    let capacity = b.capacity();
    if capacity == u64::MAX {
        return;
    }
    // Incompressible bytes, so that a compressing backend cannot fit them all.
    let value = noise((capacity / 8) as usize, 0x9e37_79b9);
    for i in 0..16i64 {
        // Later writes expire later, so an earliest-expiry policy evicts the first ones.
        b.set(&format!("evict:{i:02}"), entry(&value, HOUR + i * 1000, &[]), always()).await.expect("set under pressure");
        let u = b.usage().await.expect("usage");
        assert!(u.bytes <= capacity, "usage ({} bytes) never exceeds the capacity ({capacity})", u.bytes);
    }
    assert!(data(b, "evict:15").await.is_some(), "the newest write survives eviction");
    let n = b.delete_matching("evict:", Arc::new(|_| true)).await.expect("cleanup");
    assert!(n < 16, "eviction removed older entries to make room");
}
