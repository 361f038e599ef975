//! The conformance suite every [`ProgressStorage`] must pass (compiled for tests and with
//! the `conformance` feature).
//!
//! The [`Harness`] opens one fresh storage; every check uses its own id prefix in it, and
//! the last check re-opens it (a restart): what was acknowledged must still be there.

use super::error::ProgressError;
use super::machine;
use super::model::{NewProgress, ProgressRecord, ProgressStatus};
use super::storage::{ListQuery, ProgressStorage};
use crate::conformance::Harness;
use chrono::{DateTime, Duration, TimeZone, Utc};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).single().expect("valid time")
}

fn rec(id: &str) -> ProgressRecord {
    let req = NewProgress::with_stages(Some(id.into()), &["a", "b"]).metadata(serde_json::json!({"owner": id}));
    machine::new_record(req, t0()).expect("valid record")
}

/// `r` one version later, with `status` and `progress`.
fn next(r: &ProgressRecord, status: ProgressStatus, progress: f64) -> ProgressRecord {
    let mut n = r.clone();
    n.version += 1;
    n.status = status;
    n.progress = progress;
    n.updated_at = r.updated_at + Duration::seconds(1);
    n
}

fn ids(v: &[ProgressRecord], prefix: &str) -> Vec<String> {
    v.iter().filter(|r| r.id.starts_with(prefix)).map(|r| r.id.clone()).collect()
}

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<S: ProgressStorage>(mut h: impl Harness<S>) {
    let s = h.fresh().await;
    read_after_write_and_unique_ids(&s).await;
    versions_only_grow(&s).await;
    coalesced_snapshots_never_go_back_or_resurrect(&s).await;
    list_orders_filters_and_pages(&s).await;
    delete_is_final(&s).await;
    retention_takes_only_expired_records_of_one_status(&s).await;
    let kept = s.load("durable.1").await.expect("load").expect("written above");
    let s = h.reopen(s).await;
    let again = s.load("durable.1").await.expect("load after re-open").expect("an acknowledged record survives a re-open");
    assert_eq!(again, kept, "a re-opened storage returns the record exactly as acknowledged");
    assert!(s.load("del.1").await.expect("load").is_none(), "a deleted record stays deleted after a re-open");
}

async fn read_after_write_and_unique_ids<S: ProgressStorage>(s: &S) {
    assert!(s.load("durable.1").await.expect("load").is_none(), "an unknown id loads as None");
    let r = rec("durable.1");
    s.insert(&r).await.expect("insert");
    assert_eq!(s.load("durable.1").await.expect("load").as_ref(), Some(&r), "read-after-write returns the record as inserted");
    let dup = s.insert(&rec("durable.1")).await;
    assert!(matches!(dup, Err(ProgressError::AlreadyExists(_))), "a second insert of an id is AlreadyExists, got {dup:?}");
    assert_eq!(s.load("durable.1").await.expect("load").as_ref(), Some(&r), "a refused insert changes nothing");
}

async fn versions_only_grow<S: ProgressStorage>(s: &S) {
    let r = rec("ver.1");
    s.insert(&r).await.expect("insert");
    let newer = next(&r, ProgressStatus::Processing, 40.0);
    s.save(&newer).await.expect("a newer version replaces the record");
    assert_eq!(s.load("ver.1").await.expect("load").expect("present").progress, 40.0);
    let same = s.save(&newer).await;
    assert!(matches!(same, Err(ProgressError::Conflict(_))), "saving an equal version is a Conflict, got {same:?}");
    let mut older = newer.clone();
    older.version = r.version;
    older.progress = 5.0;
    let old = s.save(&older).await;
    assert!(matches!(old, Err(ProgressError::Conflict(_))), "saving an older version is a Conflict, got {old:?}");
    assert_eq!(s.load("ver.1").await.expect("load").expect("present").progress, 40.0, "a refused save changes nothing");
    let missing = s.save(&next(&rec("ver.missing"), ProgressStatus::Processing, 1.0)).await;
    assert!(matches!(missing, Err(ProgressError::NotFound(_))), "saving a record that does not exist is NotFound, got {missing:?}");
    assert!(s.load("ver.missing").await.expect("load").is_none(), "save never creates a record");
}

async fn coalesced_snapshots_never_go_back_or_resurrect<S: ProgressStorage>(s: &S) {
    let a = rec("co.a");
    let b = rec("co.b");
    s.insert(&a).await.expect("insert");
    s.insert(&b).await.expect("insert");
    let b2 = next(&b, ProgressStatus::Processing, 60.0);
    s.save(&b2).await.expect("save");
    let a2 = next(&a, ProgressStatus::Processing, 30.0);
    let mut b_old = b2.clone();
    b_old.version = b.version;
    b_old.progress = 10.0;
    let ghost = next(&rec("co.ghost"), ProgressStatus::Processing, 50.0);
    let written = s.save_coalesced(vec![a2.clone(), b_old, ghost]).await.expect("save_coalesced");
    assert_eq!(written, 1, "only the newer snapshot of an existing record is written");
    assert_eq!(s.load("co.a").await.expect("load").expect("present").progress, 30.0, "a newer snapshot is written");
    assert_eq!(s.load("co.b").await.expect("load").expect("present").progress, 60.0, "an older snapshot never replaces a newer record");
    assert!(s.load("co.ghost").await.expect("load").is_none(), "a snapshot never creates a record");
    assert_eq!(s.save_coalesced(Vec::new()).await.expect("empty batch"), 0);
}

async fn list_orders_filters_and_pages<S: ProgressStorage>(s: &S) {
    for id in ["list.c", "list.a", "list.b", "list.d"] {
        s.insert(&rec(id)).await.expect("insert");
    }
    let b = s.load("list.b").await.expect("load").expect("present");
    s.save(&next(&b, ProgressStatus::Processing, 10.0)).await.expect("save");
    let all = |after: Option<&str>, status, limit| ListQuery { after: after.map(str::to_string), status, limit };
    let every = s.list(all(Some("list."), None, 1000)).await.expect("list");
    assert_eq!(ids(&every, "list."), ["list.a", "list.b", "list.c", "list.d"], "list is ordered by id");
    let page = s.list(all(Some("list.a"), None, 2)).await.expect("list");
    assert_eq!(ids(&page, "list."), ["list.b", "list.c"], "after is exclusive and limit is honoured");
    assert_eq!(page.len(), 2, "a page holds at most `limit` records");
    let pending = s.list(all(Some("list."), Some(ProgressStatus::Pending), 1000)).await.expect("list");
    assert_eq!(ids(&pending, "list."), ["list.a", "list.c", "list.d"], "the status filter follows status changes");
    let processing = s.list(all(Some("list."), Some(ProgressStatus::Processing), 1000)).await.expect("list");
    assert_eq!(ids(&processing, "list."), ["list.b"], "a record is listed under its current status only");
    let paged = s.list(all(Some("list.a"), Some(ProgressStatus::Pending), 1)).await.expect("list");
    assert_eq!(ids(&paged, "list."), ["list.c"], "status filter and cursor combine");
}

async fn delete_is_final<S: ProgressStorage>(s: &S) {
    let r = rec("del.1");
    s.insert(&r).await.expect("insert");
    assert!(s.delete("del.1").await.expect("delete"), "deleting a present record answers true");
    assert!(!s.delete("del.1").await.expect("delete"), "deleting an absent record answers false");
    assert!(s.load("del.1").await.expect("load").is_none(), "a deleted record is gone");
    let later = next(&r, ProgressStatus::Processing, 70.0);
    assert!(matches!(s.save(&later).await, Err(ProgressError::NotFound(_))), "save never revives a deleted record");
    assert_eq!(s.save_coalesced(vec![later]).await.expect("save_coalesced"), 0, "a coalesced snapshot never revives a deleted record");
    assert!(s.load("del.1").await.expect("load").is_none());
    let listed = s.list(ListQuery { after: Some("del.".into()), status: None, limit: 1000 }).await.expect("list");
    assert!(ids(&listed, "del.").is_empty(), "a deleted record is not listed");
}

async fn retention_takes_only_expired_records_of_one_status<S: ProgressStorage>(s: &S) {
    let now = t0();
    for (id, status, age_h) in [
        ("ret.old", ProgressStatus::Completed, 30),
        ("ret.old2", ProgressStatus::Completed, 40),
        ("ret.new", ProgressStatus::Completed, 1),
        ("ret.failed", ProgressStatus::Failed, 30),
    ] {
        let r = rec(id);
        s.insert(&r).await.expect("insert");
        let mut done = next(&r, status, 100.0);
        done.finished_at = Some(now - Duration::hours(age_h));
        s.save(&done).await.expect("save");
    }
    let cutoff = now - Duration::hours(24);
    let first = s.remove_finished(ProgressStatus::Completed, cutoff, 1).await.expect("remove_finished");
    assert_eq!(first.len(), 1, "remove_finished honours its limit");
    let rest = s.remove_finished(ProgressStatus::Completed, cutoff, 100).await.expect("remove_finished");
    let mut removed: Vec<String> = first.into_iter().chain(rest).collect();
    removed.sort();
    assert_eq!(removed, ["ret.old", "ret.old2"], "only records of that status finished before the cutoff are removed");
    for gone in ["ret.old", "ret.old2"] {
        assert!(s.load(gone).await.expect("load").is_none(), "a removed record is gone");
    }
    for kept in ["ret.new", "ret.failed"] {
        assert!(s.load(kept).await.expect("load").is_some(), "{kept} is newer or of another status and stays");
    }
    assert!(s.remove_finished(ProgressStatus::Completed, cutoff, 100).await.expect("again").is_empty(), "nothing is removed twice");
}
