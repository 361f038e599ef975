//! The conformance suite of [`SourceStore`]: read-after-write per kind, kinds kept apart,
//! replace, delete, opaque ids, large values, and a re-open keeping everything.

use super::Harness;
use crate::export::source_store::{SourceKind, SourceStore};

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<S: SourceStore>(mut h: impl Harness<S>) {
    round_trip_per_kind(&h.fresh().await).await;
    ids_are_opaque(&h.fresh().await).await;
    reopen_keeps_everything(&mut h).await;
}

fn json(kind: SourceKind, id: &str, text: &str) -> String {
    serde_json::json!({ "id": id, "kind": kind.as_str(), "text": text }).to_string()
}

/// Put, get, replace and delete per kind; the same id under two kinds is two sources.
async fn round_trip_per_kind<S: SourceStore>(s: &S) {
    for kind in SourceKind::ALL {
        assert_eq!(s.get(kind, "x").await.unwrap(), None, "an unknown {kind:?} reads as None");
        s.put(kind, "x", json(kind, "x", "first")).await.expect("put");
        assert_eq!(s.get(kind, "x").await.unwrap(), Some(json(kind, "x", "first")), "read-after-write for {kind:?}");
    }
    for kind in SourceKind::ALL {
        assert_eq!(
            s.get(kind, "x").await.unwrap(),
            Some(json(kind, "x", "first")),
            "kinds are separate: a put of one kind leaves the other"
        );
    }
    s.put(SourceKind::Document, "x", json(SourceKind::Document, "x", "second, longer than the first")).await.unwrap();
    assert_eq!(
        s.get(SourceKind::Document, "x").await.unwrap(),
        Some(json(SourceKind::Document, "x", "second, longer than the first")),
        "put replaces"
    );
    s.put(SourceKind::Document, "x", "{}".into()).await.unwrap();
    assert_eq!(
        s.get(SourceKind::Document, "x").await.unwrap().as_deref(),
        Some("{}"),
        "put replaces the whole value, also by a shorter one"
    );
    assert!(s.delete(SourceKind::Transcript, "x").await.unwrap(), "a delete reports the source existed");
    assert_eq!(s.get(SourceKind::Transcript, "x").await.unwrap(), None, "a deleted source is gone");
    assert!(!s.delete(SourceKind::Transcript, "x").await.unwrap(), "a second delete reports nothing was there");
    assert_eq!(s.get(SourceKind::Document, "x").await.unwrap().as_deref(), Some("{}"), "deleting one kind leaves the other");
    let big = json(SourceKind::Transcript, "big", &"ä".repeat(512 * 1024));
    s.put(SourceKind::Transcript, "big", big.clone()).await.unwrap();
    assert_eq!(s.get(SourceKind::Transcript, "big").await.unwrap(), Some(big), "a 1 MiB source round-trips");
}

/// Any id within the rules comes back unchanged and stays apart from its look-alikes.
async fn ids_are_opaque<S: SourceStore>(s: &S) {
    let long = "i".repeat(200);
    let ids = ["a", "A", "a ", " a", "ü id with spaces", "x:y", "x*", "a.b", "..", "%2F", "a\\b", "{id}", "🙂", long.as_str()];
    for (n, id) in ids.iter().enumerate() {
        s.put(SourceKind::Transcript, id, json(SourceKind::Transcript, id, &n.to_string())).await.expect("put");
    }
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            s.get(SourceKind::Transcript, id).await.unwrap(),
            Some(json(SourceKind::Transcript, id, &n.to_string())),
            "id {id:?} is opaque and unique"
        );
    }
    assert!(s.delete(SourceKind::Transcript, "a").await.unwrap(), "delete by id");
    for id in ["A", "a ", " a"] {
        assert!(s.get(SourceKind::Transcript, id).await.unwrap().is_some(), "deleting 'a' leaves {id:?}");
    }
}

/// A re-open keeps every source and every deletion.
async fn reopen_keeps_everything<S: SourceStore>(h: &mut impl Harness<S>) {
    let s = h.fresh().await;
    for kind in SourceKind::ALL {
        for id in ["keep", "drop"] {
            s.put(kind, id, json(kind, id, "v")).await.unwrap();
        }
        s.delete(kind, "drop").await.unwrap();
    }
    let s = h.reopen(s).await;
    for kind in SourceKind::ALL {
        assert_eq!(s.get(kind, "keep").await.unwrap(), Some(json(kind, "keep", "v")), "a re-open keeps {kind:?} sources");
        assert_eq!(s.get(kind, "drop").await.unwrap(), None, "a re-open keeps {kind:?} deletions");
    }
}
