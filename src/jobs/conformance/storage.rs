//! What the broker stores: identity (unique keys, chosen ids), all-or-nothing batches,
//! listings, counts, retention, schedules, and everything acknowledged across a re-open.

use super::*;
use crate::jobs::broker::ListFilter;
use crate::jobs::model::{Schedule, ScheduleJob};

/// A held unique key and an existing chosen id answer the existing job.
pub(super) async fn unique_keys_and_chosen_ids_answer_existing<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let keyed = |id: &str, now| Job { unique_key: Some("k".into()), unique_for: Some(60), ..job_at(id, now) };
    enqueue(&b, vec![keyed("a", t0())], t0()).await;
    let again = enqueue_as(&b, vec![keyed("a2", at(1))], false, at(1)).await.expect("enqueue");
    assert_eq!((again.answers[0].job_id.as_str(), again.answers[0].existing), ("a", true), "a held unique key answers the existing job");
    assert!(b.get("a2").await.expect("get").is_none(), "no job is created for a held unique key");
    let later = enqueue_as(&b, vec![keyed("a3", at(61))], false, at(61)).await.expect("enqueue");
    assert!(!later.answers[0].existing, "a unique key is free again after unique_for seconds");
    // Without unique_for the key is held while its job is not final.
    let open = |id: &str| Job { unique_key: Some("open".into()), ..job(id) };
    enqueue(&b, vec![open("o1")], t0()).await;
    assert!(
        enqueue_as(&b, vec![open("o2")], false, t0()).await.expect("enqueue").answers[0].existing,
        "a key without unique_for is held while its job lives"
    );
    let claimed = claim(&b, "w", 10, at(61)).await;
    assert!(claimed.iter().any(|j| j.id == "o1"));
    complete(&b, "o1", "w", at(62)).await.expect("complete");
    assert!(
        !enqueue_as(&b, vec![open("o3")], false, at(62)).await.expect("enqueue").answers[0].existing,
        "the key is released when its job is final"
    );
    // Chosen ids.
    let x = enqueue_as(&b, vec![job("export-1")], true, at(63)).await.expect("enqueue");
    assert!(!x.answers[0].existing);
    let y = enqueue_as(&b, vec![Job { priority: 1, ..job("export-1") }], true, at(63)).await.expect("enqueue");
    assert_eq!(
        (y.answers[0].job_id.as_str(), y.answers[0].existing, y.answers[0].status),
        ("export-1", true, JobStatus::Pending),
        "an existing chosen id answers the existing job"
    );
    assert_eq!(get(&b, "export-1").await.priority, 5, "the existing job is not replaced");
    claim(&b, "w", 10, at(63)).await;
    complete(&b, "export-1", "w", at(64)).await.expect("complete");
    let z = enqueue_as(&b, vec![job("export-1")], true, at(65)).await.expect("enqueue");
    assert_eq!((z.answers[0].existing, z.answers[0].status), (true, JobStatus::Completed), "a chosen id of a final job still answers it");
}

/// A batch with an unknown dependency is refused whole.
pub(super) async fn an_unknown_dependency_writes_nothing<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let bad = Job { depends_on: vec!["missing".into()], ..job("b") };
    let r = enqueue_as(&b, vec![job("a"), bad], false, t0()).await;
    match r {
        Err(JobError::Invalid { field, .. }) => assert_eq!(field, "[1].depends_on[0]", "the error names the request and the dependency"),
        other => panic!("an unknown dependency must be refused as invalid, got {other:?}"),
    }
    assert!(b.get("a").await.expect("get").is_none(), "a refused batch writes nothing (not even its valid jobs)");
    assert!(claim(&b, "w", 10, t0()).await.is_empty(), "a refused batch makes nothing claimable");
    let keyed = Job { unique_key: Some("k".into()), depends_on: vec!["missing".into()], ..job("c") };
    assert!(enqueue_as(&b, vec![keyed], false, t0()).await.is_err());
    assert!(
        !enqueue_as(&b, vec![Job { unique_key: Some("k".into()), ..job("d") }], false, t0()).await.expect("enqueue").answers[0].existing,
        "a refused batch holds no unique key"
    );
}

/// Listing: newest first, filtered, a page at a time with a cursor.
pub(super) async fn listing_pages_newest_first_with_filters<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let names: Vec<String> = (0..5).map(|i| format!("j{i}")).collect();
    for n in &names {
        enqueue(&b, vec![job(n)], t0()).await;
    }
    enqueue(&b, vec![Job { queue: "other".into(), name: "special".into(), ..job("o") }], t0()).await;
    claim(&b, "w", 1, t0()).await;
    let page = |limit, cursor: Option<String>| ListFilter { limit, cursor, queue: Some("default".into()), ..Default::default() };
    let mut seen = Vec::new();
    let mut cursor = None;
    for _ in 0..10 {
        let p = b.list(page(2, cursor.clone())).await.expect("list");
        assert!(p.jobs.len() <= 2, "a page holds at most `limit` jobs");
        seen.extend(ids(&p.jobs));
        cursor = p.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, ["j4", "j3", "j2", "j1", "j0"], "pages list newest first, each job once, until no cursor is returned");
    let running = b.list(ListFilter { status: Some(JobStatus::Running), limit: 50, ..Default::default() }).await.expect("list");
    assert_eq!(ids(&running.jobs), ["j0"], "the status filter sees the live state (running)");
    let named = b.list(ListFilter { name: Some("special".into()), limit: 50, ..Default::default() }).await.expect("list");
    assert_eq!(ids(&named.jobs), ["o"], "the name filter");
    let all = b.list(ListFilter { limit: 50, ..Default::default() }).await.expect("list");
    assert_eq!(all.jobs.len(), 6);
    assert!(all.next_cursor.is_none(), "the last page has no cursor");
    assert!(
        matches!(
            b.list(ListFilter { limit: 5, cursor: Some("not a cursor".into()), ..Default::default() }).await,
            Err(JobError::Invalid { .. })
        ),
        "a foreign cursor is invalid"
    );
}

/// Queue stats count jobs per status and completions in the last minute.
pub(super) async fn counts_per_status<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let jobs = vec![
        job("a"),
        job("b"),
        job("c"),
        Job { max_attempts: 1, ..job("d") },
        job("e"),
        Job { status: JobStatus::Scheduled, run_at: at(600), ..job("f") },
    ];
    enqueue(&b, jobs, t0()).await;
    claim(&b, "w", 4, t0()).await;
    complete(&b, "a", "w", at(1)).await.expect("complete");
    complete(&b, "b", "w", at(1)).await.expect("complete");
    fail(&b, "d", "w", true, at(1)).await.expect("fail");
    b.cancel("e", "x", at(1)).await.expect("cancel");
    let s = b.queue_stats(at(2)).await.expect("stats").into_iter().find(|s| s.name == "default").expect("the queue is listed");
    let got: Vec<(JobStatus, u64)> = JobStatus::ALL.iter().map(|st| (*st, s.count(*st))).collect();
    let want = [
        (JobStatus::Pending, 0),
        (JobStatus::Scheduled, 1),
        (JobStatus::Running, 1),
        (JobStatus::Completed, 2),
        (JobStatus::Failed, 0),
        (JobStatus::Dead, 1),
        (JobStatus::Cancelled, 1),
    ];
    assert_eq!(got, want, "counts per status");
    assert_eq!(s.completed_last_minute, 2, "completions in the last minute");
    assert!(!s.paused);
    let later = b.queue_stats(at(120)).await.expect("stats").into_iter().find(|s| s.name == "default").expect("listed");
    assert_eq!(later.completed_last_minute, 0, "completions older than a minute are not counted");
    enqueue(&b, vec![job_at("g", at(120))], at(120)).await;
    let s = b.queue_stats(at(130)).await.expect("stats").into_iter().find(|s| s.name == "default").expect("listed");
    assert_eq!(s.oldest_ready_at, Some(at(120)), "the oldest ready job's run_at");
}

/// Retention deletes final jobs finished before their cutoff, and nothing else.
pub(super) async fn retention_deletes_only_old_final_jobs<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    enqueue(&b, vec![job("old"), Job { max_attempts: 1, ..job("dead") }, job("recent"), job("live")], t0()).await;
    claim(&b, "w", 3, t0()).await;
    complete(&b, "old", "w", at(10)).await.expect("complete");
    fail(&b, "dead", "w", true, at(10)).await.expect("fail");
    complete(&b, "recent", "w", at(100)).await.expect("complete");
    let n = b.delete_finished(at(50), at(5), at(200)).await.expect("retention");
    assert_eq!(n, 1, "only final jobs finished before their cutoff are deleted");
    assert!(b.get("old").await.expect("get").is_none(), "an old completed job is deleted");
    assert_eq!(get(&b, "dead").await.status, JobStatus::Dead, "a dead job follows its own cutoff");
    assert_eq!(get(&b, "recent").await.status, JobStatus::Completed, "a recent final job is kept");
    assert_eq!(get(&b, "live").await.status, JobStatus::Pending, "a live job is never deleted");
    let s = b.queue_stats(at(200)).await.expect("stats").into_iter().find(|s| s.name == "default").expect("listed");
    assert_eq!(s.count(JobStatus::Completed), 1, "deleted jobs leave the counts");
}

/// A purge deletes final jobs of one queue in one status, at most `limit`, and nothing
/// else; a purged job is gone from reads and counts.
pub(super) async fn purge_deletes_one_status_of_one_queue<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let other = |id: &str| Job { queue: "other".into(), ..job(id) };
    let once = |j: Job| Job { max_attempts: 1, ..j };
    let jobs = vec![job("c1"), job("c2"), job("c3"), once(job("d1")), other("oc"), job("live")];
    enqueue(&b, jobs, t0()).await;
    claim(&b, "w", 4, t0()).await;
    claim_from(&b, &["other"], "w", 1, t0()).await;
    for id in ["c1", "c2", "c3", "oc"] {
        complete(&b, id, "w", at(1)).await.expect("complete");
    }
    fail(&b, "d1", "w", true, at(1)).await.expect("fail");
    assert_eq!(b.delete_jobs("default", JobStatus::Pending, 10).await.expect("purge"), 0, "a live status is never purged");
    assert_eq!(b.delete_jobs("default", JobStatus::Completed, 2).await.expect("purge"), 2, "at most `limit` jobs are deleted");
    assert_eq!(b.delete_jobs("default", JobStatus::Completed, 10).await.expect("purge"), 1, "the rest on the next call");
    assert_eq!(b.delete_jobs("default", JobStatus::Completed, 10).await.expect("purge"), 0, "nothing is left to purge");
    for id in ["c1", "c2", "c3"] {
        assert!(b.get(id).await.expect("get").is_none(), "purged job {id} is gone");
    }
    assert_eq!(get(&b, "d1").await.status, JobStatus::Dead, "another status is kept");
    assert_eq!(get(&b, "oc").await.status, JobStatus::Completed, "another queue is kept");
    assert_eq!(get(&b, "live").await.status, JobStatus::Pending, "a live job is kept");
    let s = b.queue_stats(at(2)).await.expect("stats").into_iter().find(|s| s.name == "default").expect("listed");
    assert_eq!((s.count(JobStatus::Completed), s.count(JobStatus::Dead)), (0, 1), "purged jobs leave the counts");
    assert_eq!(b.delete_jobs("default", JobStatus::Dead, 10).await.expect("purge"), 1, "dead jobs are purged too");
    assert!(b.get("d1").await.expect("get").is_none(), "the dead job is gone");
    assert!(b.retry("d1", at(3)).await.is_err(), "a purged job cannot be retried");
}

fn schedule(name: &str, next_run: Option<DateTime<Utc>>) -> Schedule {
    Schedule {
        name: name.into(),
        cron: "0 3 * * *".into(),
        timezone: "UTC".into(),
        job: ScheduleJob {
            name: "t".into(),
            payload: serde_json::json!({}),
            queue: None,
            priority: None,
            max_attempts: None,
            timeout: None,
        },
        next_run,
        last_run: None,
        last_job_id: None,
        source: "api".into(),
        created_at: t0(),
    }
}

/// Schedules are stored; a fired slot is recorded unless the schedule changed meanwhile;
/// the slot's job id makes a slot fire once.
pub(super) async fn schedules_are_stored_and_fire_once_per_slot<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    b.put_schedule(schedule("nightly", Some(at(100)))).await.expect("put");
    b.put_schedule(schedule("other", None)).await.expect("put");
    let all = b.schedules().await.expect("schedules");
    assert_eq!(all.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["nightly", "other"], "schedules are listed by name");
    assert_eq!(all[0], schedule("nightly", Some(at(100))), "a schedule is stored as given");
    let slot_id = format!("schedule:nightly:{}", at(100).timestamp());
    let first = enqueue_as(&b, vec![job_at(&slot_id, at(100))], true, at(100)).await.expect("fire");
    let second = enqueue_as(&b, vec![job_at(&slot_id, at(100))], true, at(101)).await.expect("fire again");
    assert!(!first.answers[0].existing && second.answers[0].existing, "one enqueue per slot id");
    let fired =
        Schedule { next_run: Some(at(200)), last_run: Some(at(100)), last_job_id: Some(slot_id.clone()), ..schedule("nightly", None) };
    assert!(b.record_fired(fired.clone(), at(100)).await.expect("record"), "a fired slot is recorded");
    assert!(!b.record_fired(fired.clone(), at(100)).await.expect("record"), "a slot already recorded is not recorded again");
    b.put_schedule(schedule("nightly", Some(at(500)))).await.expect("replace");
    assert!(
        !b.record_fired(Schedule { next_run: Some(at(600)), ..fired }, at(200)).await.expect("record"),
        "a replaced schedule is not overwritten by a fired slot"
    );
    assert_eq!(b.schedules().await.expect("schedules")[0].next_run, Some(at(500)));
    assert!(b.delete_schedule("other").await.expect("delete"), "delete says it deleted");
    assert!(!b.delete_schedule("other").await.expect("delete"), "deleting a missing schedule says so");
    let b = h.reopen(b, at(300)).await;
    let all = b.schedules().await.expect("schedules");
    assert_eq!(
        all.iter().map(|s| (s.name.as_str(), s.next_run)).collect::<Vec<_>>(),
        [("nightly", Some(at(500)))],
        "schedules survive a re-open"
    );
}

/// After a re-open every acknowledged job is there with its state.
pub(super) async fn a_reopen_keeps_every_acknowledged_job<B: JobBroker>(h: &mut impl Harness<B>) {
    let b = h.fresh(t0()).await;
    let later = Job { status: JobStatus::Scheduled, run_at: at(3600), ..job("c") };
    let deps = Job { depends_on: vec!["b".into()], ..job("d") };
    enqueue(&b, vec![job("a"), job("b"), later, deps, Job { max_attempts: 1, ..job("e") }], t0()).await;
    claim(&b, "w", 3, t0()).await; // a, b, e
    complete(&b, "a", "w", at(1)).await.expect("complete");
    fail(&b, "e", "w", true, at(1)).await.expect("fail");
    b.set_paused("paused", true).await.expect("pause");
    let seq_before = get(&b, "d").await.seq;
    let b = h.reopen(b, at(2)).await;
    let a = get(&b, "a").await;
    assert_eq!(
        (a.status, a.result),
        (JobStatus::Completed, Some(serde_json::json!({ "done": "a" }))),
        "a completed job survives with its result"
    );
    assert_eq!(get(&b, "e").await.status, JobStatus::Dead, "a dead job survives");
    assert_eq!(get(&b, "c").await.status, JobStatus::Scheduled, "a delayed job survives, still delayed");
    assert_eq!(get(&b, "d").await.status, JobStatus::Pending, "a waiting job survives");
    // A job that was running: ready again now (claims in memory), or once its lease ends.
    let running = get(&b, "b").await;
    let now = match running.status {
        JobStatus::Pending => {
            assert!(running.attempts <= 1, "a job running at the re-open keeps at most the attempt it had");
            at(2)
        }
        JobStatus::Running => {
            let t = b.tick(at(61)).await.expect("tick");
            assert!(t.ended.iter().any(|e| e.job.id == "b"), "a run whose holder went away ends with its lease");
            assert_eq!(get(&b, "b").await.attempts, 1, "an expired lease counts the attempt");
            at(61)
        }
        s => panic!("a job running at the re-open must be pending or still running, not {s:?}"),
    };
    assert_eq!(ids(&claim(&b, "w", 10, now).await), ["b"], "the job that was running is claimable again (d still waits on it)");
    complete(&b, "b", "w", now).await.expect("complete");
    assert_eq!(ids(&claim(&b, "w", 10, now).await), ["d"], "dependencies survive a re-open");
    let stats = b.queue_stats(now).await.expect("stats");
    assert!(stats.iter().any(|s| s.name == "paused" && s.paused), "a paused queue stays paused");
    enqueue(&b, vec![job("f")], now).await;
    assert!(get(&b, "f").await.seq > seq_before, "the enqueue sequence continues after a re-open");
    let newest = b.list(ListFilter { limit: 1, ..Default::default() }).await.expect("list");
    assert_eq!(ids(&newest.jobs), ["f"], "a job enqueued after a re-open lists first");
}
