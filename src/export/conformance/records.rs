//! The conformance suite of [`ExportRecordStore`]: read-after-write, compare-and-set
//! updates (no lost update, final drops the work), list filters and order, delete, and
//! everything surviving a re-open.

use super::Harness;
use crate::export::error::ExportError;
use crate::export::formats::RenderOptions;
use crate::export::record::{ExportJob, ExportStatus, Work, WorkItem};
use crate::export::record_store::{ExportRecordStore, ListFilter, Swap, update};
use chrono::{DateTime, Utc};

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<S: ExportRecordStore>(mut h: impl Harness<S>) {
    read_after_write(&h.fresh().await).await;
    swap_is_compare_and_set(&h.fresh().await).await;
    concurrent_updates_are_never_lost(&h.fresh().await).await;
    list_filters_then_limits_newest_first(&h.fresh().await).await;
    delete_removes_record_and_work(&h.fresh().await).await;
    reopen_keeps_everything(&mut h).await;
}

fn at(offset_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_893_456_000_000 + offset_ms).expect("valid instant")
}

/// A pending record with a fresh (time-ordered) id.
fn job(source_type: &str, user: Option<&str>, n: i64) -> ExportJob {
    let id = uuid::Uuid::now_v7().to_string();
    ExportJob {
        filename: format!("{source_type}-{n}.srt"),
        id,
        source_type: source_type.into(),
        source_id: Some(format!("src-{n}")),
        format: "srt".into(),
        batch: source_type == "batch",
        template: "default".into(),
        content_type: "application/x-subrip".into(),
        options: RenderOptions::default(),
        status: ExportStatus::Pending,
        progress: 0.0,
        size: None,
        etag: None,
        error: None,
        user_id: user.map(str::to_string),
        notify_user_id: None,
        webhook_url: Some("https://example.com/hook".into()),
        created_at: at(n),
        started_at: None,
        finished_at: None,
    }
}

fn work(n: i64) -> Work {
    let item =
        WorkItem { source_type: "transcript".into(), source_id: None, inline: Some(format!("{{\"n\":{n}}}")), filename: "a.srt".into() };
    Work { items: vec![item], webhook_secret: Some(format!("secret-{n}")) }
}

fn running(j: &ExportJob) -> ExportJob {
    ExportJob { status: ExportStatus::Running, started_at: Some(at(1000)), progress: 10.0, ..j.clone() }
}

fn completed(j: &ExportJob) -> ExportJob {
    ExportJob {
        status: ExportStatus::Completed,
        progress: 100.0,
        size: Some(42),
        etag: Some("\"ab\"".into()),
        finished_at: Some(at(2000)),
        ..j.clone()
    }
}

/// What was inserted reads back unchanged; an id is inserted once.
async fn read_after_write<S: ExportRecordStore>(s: &S) {
    let (j, w) = (job("transcript", Some("ann"), 1), work(1));
    s.insert(&j, &w).await.expect("insert");
    assert_eq!(s.get(&j.id).await.unwrap(), Some(j.clone()), "read-after-write: get returns the record as inserted");
    assert_eq!(s.work(&j.id).await.unwrap(), Some(w.clone()), "read-after-write: the work is stored with the record");
    let other = ExportJob { filename: "other.srt".into(), ..j.clone() };
    match s.insert(&other, &work(2)).await {
        Err(ExportError::Conflict(_)) => {}
        other => panic!("an insert under an existing id must be refused with Conflict, got {other:?}"),
    }
    assert_eq!(s.get(&j.id).await.unwrap(), Some(j.clone()), "a refused insert leaves the record");
    assert_eq!(s.work(&j.id).await.unwrap(), Some(w), "a refused insert leaves the work");
    assert_eq!(s.get("no-such-id").await.unwrap(), None, "an unknown id reads as None");
    assert_eq!(s.work("no-such-id").await.unwrap(), None, "an unknown id has no work");
}

/// A swap applies only over the expected record; a final record drops the work.
async fn swap_is_compare_and_set<S: ExportRecordStore>(s: &S) {
    let (j, w) = (job("document", None, 1), work(1));
    s.insert(&j, &w).await.unwrap();
    let run = running(&j);
    assert_eq!(s.swap(&j, &run).await.unwrap(), Swap::Applied, "a swap over the stored record applies");
    assert_eq!(s.get(&j.id).await.unwrap(), Some(run.clone()), "an applied swap is read back");
    assert_eq!(s.work(&j.id).await.unwrap(), Some(w.clone()), "a swap to a non-final status keeps the work");
    let stale = ExportJob { error: Some("late".into()), ..j.clone() };
    assert_eq!(
        s.swap(&j, &stale).await.unwrap(),
        Swap::Stale(Some(Box::new(run.clone()))),
        "a swap over an older record is refused with the current one"
    );
    let slightly_off = ExportJob { progress: 11.0, ..run.clone() };
    let next = ExportJob { progress: 50.0, ..run.clone() };
    assert!(matches!(s.swap(&slightly_off, &next).await.unwrap(), Swap::Stale(_)), "the whole record is compared, not only the status");
    assert_eq!(s.get(&j.id).await.unwrap(), Some(run.clone()), "a refused swap writes nothing");
    let done = completed(&run);
    assert_eq!(s.swap(&run, &done).await.unwrap(), Swap::Applied, "a swap to a final status applies");
    assert_eq!(s.work(&j.id).await.unwrap(), None, "a swap to a final status drops the work");
    assert_eq!(s.get(&j.id).await.unwrap(), Some(done), "the final record is read back");
    let ghost = job("document", None, 2);
    assert_eq!(s.swap(&ghost, &running(&ghost)).await.unwrap(), Swap::Stale(None), "a swap never creates a record");
    assert_eq!(s.get(&ghost.id).await.unwrap(), None, "a swap never creates a record");
    for status in [ExportStatus::Failed, ExportStatus::Cancelled] {
        let (k, w) = (job("batch", None, 3), work(3));
        s.insert(&k, &w).await.unwrap();
        s.swap(&k, &ExportJob { status, error: Some("x".into()), ..k.clone() }).await.unwrap();
        assert_eq!(s.work(&k.id).await.unwrap(), None, "{status:?} is final: the work goes with the swap");
    }
}

/// Many writers updating one record through compare-and-set lose nothing.
async fn concurrent_updates_are_never_lost<S: ExportRecordStore>(s: &S) {
    let j = job("transcript", None, 1);
    s.insert(&j, &work(1)).await.unwrap();
    let writers = 24;
    let bump = |r: ExportJob| Some(ExportJob { progress: r.progress + 1.0, ..r });
    let tasks = (0..writers).map(|_| update(s, &j.id, bump));
    for r in futures::future::join_all(tasks).await {
        r.expect("update").expect("exists");
    }
    let end = s.get(&j.id).await.unwrap().expect("exists");
    assert_eq!(end.progress, writers as f64, "concurrent compare-and-set updates are all applied, none lost");
    let same = update(s, &j.id, |_| None).await.unwrap();
    assert_eq!(same, Some(end), "an update that declines returns the record unchanged");
    assert_eq!(update(s, "no-such-id", bump).await.unwrap(), None, "an update of an unknown id is None");
}

/// Lists filter first, then take the newest `limit`; they follow swaps.
async fn list_filters_then_limits_newest_first<S: ExportRecordStore>(s: &S) {
    let shapes = [("transcript", Some("ann")), ("document", Some("bob")), ("batch", None), ("transcript", Some("bob"))];
    let mut all = Vec::new();
    for n in 0..12 {
        let (t, u) = shapes[n as usize % shapes.len()];
        let j = job(t, u, n);
        s.insert(&j, &work(n)).await.unwrap();
        all.push(j);
    }
    for i in [1, 4, 7] {
        let done = completed(&running(&all[i]));
        s.swap(&all[i], &done).await.unwrap();
        all[i] = done;
    }
    let failed = ExportJob { status: ExportStatus::Failed, error: Some("boom".into()), ..all[10].clone() };
    s.swap(&all[10], &failed).await.unwrap();
    all[10] = failed;
    let newest_first: Vec<ExportJob> = all.iter().rev().cloned().collect();
    let filters = [
        ListFilter::default(),
        ListFilter { source_type: Some("transcript".into()), ..Default::default() },
        ListFilter { status: Some(ExportStatus::Completed), ..Default::default() },
        ListFilter { user_id: Some("bob".into()), ..Default::default() },
        ListFilter { source_type: Some("transcript".into()), user_id: Some("bob".into()), ..Default::default() },
        ListFilter { status: Some(ExportStatus::Failed), source_type: Some("document".into()), ..Default::default() },
        ListFilter { source_type: Some("nothing".into()), ..Default::default() },
        ListFilter { user_id: Some("ann".into()), status: Some(ExportStatus::Pending), ..Default::default() },
    ];
    for f in filters {
        for limit in [1, 2, 5, 100] {
            let f = ListFilter { limit, ..f.clone() };
            let expected: Vec<ExportJob> = newest_first.iter().filter(|j| f.matches(j)).take(limit).cloned().collect();
            assert_eq!(s.list(&f).await.unwrap(), expected, "list {f:?}: filtered, newest first, then limited");
        }
    }
    let oldest = ListFilter { source_type: Some("transcript".into()), user_id: Some("ann".into()), limit: 1, ..Default::default() };
    assert_eq!(s.list(&oldest).await.unwrap().len(), 1, "the limit counts matching records only");
}

/// A delete removes the record and its work, and only those.
async fn delete_removes_record_and_work<S: ExportRecordStore>(s: &S) {
    let (a, b) = (job("transcript", None, 1), job("transcript", None, 2));
    s.insert(&a, &work(1)).await.unwrap();
    s.insert(&b, &work(2)).await.unwrap();
    assert!(s.delete(&a.id).await.unwrap(), "deleting a record reports it existed");
    assert_eq!((s.get(&a.id).await.unwrap(), s.work(&a.id).await.unwrap()), (None, None), "a delete removes the record and its work");
    assert!(!s.delete(&a.id).await.unwrap(), "a second delete reports nothing was there");
    assert_eq!(s.get(&b.id).await.unwrap(), Some(b.clone()), "a delete leaves other records");
    assert_eq!(s.list(&ListFilter { limit: 10, ..Default::default() }).await.unwrap(), vec![b.clone()], "a deleted record is not listed");
    assert_eq!(s.swap(&a, &running(&a)).await.unwrap(), Swap::Stale(None), "a deleted record cannot be swapped back");
    s.insert(&a, &work(3)).await.expect("a deleted id may be inserted again");
    assert_eq!(s.work(&a.id).await.unwrap(), Some(work(3)), "a re-inserted id has its new work");
}

/// A re-open keeps records, work, final states and deletions.
async fn reopen_keeps_everything<S: ExportRecordStore>(h: &mut impl Harness<S>) {
    let s = h.fresh().await;
    let jobs: Vec<ExportJob> = (0..5).map(|n| job("document", Some("ann"), n)).collect();
    for (n, j) in jobs.iter().enumerate() {
        s.insert(j, &work(n as i64)).await.unwrap();
    }
    let run = running(&jobs[1]);
    s.swap(&jobs[1], &run).await.unwrap();
    let done = completed(&running(&jobs[2]));
    s.swap(&jobs[2], &done).await.unwrap();
    s.delete(&jobs[3].id).await.unwrap();
    let listed = s.list(&ListFilter { limit: 100, ..Default::default() }).await.unwrap();
    let s = h.reopen(s).await;
    assert_eq!(
        s.list(&ListFilter { limit: 100, ..Default::default() }).await.unwrap(),
        listed,
        "a re-open keeps every record and the order"
    );
    assert_eq!(s.get(&jobs[1].id).await.unwrap(), Some(run), "a re-open keeps updates");
    assert_eq!(s.work(&jobs[1].id).await.unwrap(), Some(work(1)), "a re-open keeps pending work");
    assert_eq!(
        (s.get(&jobs[2].id).await.unwrap(), s.work(&jobs[2].id).await.unwrap()),
        (Some(done), None),
        "a re-open keeps final states without work"
    );
    assert_eq!(s.get(&jobs[3].id).await.unwrap(), None, "a re-open keeps deletions");
    match s.insert(&jobs[0], &work(0)).await {
        Err(ExportError::Conflict(_)) => {}
        other => panic!("ids stored before a re-open still conflict, got {other:?}"),
    }
}
