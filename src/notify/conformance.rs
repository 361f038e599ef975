//! The conformance suite every [`NotificationStore`] must pass (compiled for tests and with
//! the `conformance` feature, so backends outside this crate run the same checks).
//!
//! A [`Harness`] (the one every seam's suite takes) opens a store over fresh, empty
//! storage and re-opens the same storage (as after a restart). Each check panics with a
//! message naming the rule that broke. The suite uses only the trait's public API and millisecond-precise timestamps (a store must
//! keep at least that precision); nothing in it depends on how the embedded store lays out
//! its data.

use super::error::NotifyError;
use super::model::{Delivery, DeliveryState, FeedPage, ListQuery, Notification, NotificationKind, Preferences};
use super::store::{NewNotification, NotificationStore, OutboxEntry, RenderedEmail};
use crate::conformance::Harness;
use chrono::{DateTime, Duration, Utc};
use std::collections::{BTreeMap, BTreeSet};

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<S: NotificationStore>(mut h: impl Harness<S>) {
    read_after_write(&h.fresh().await).await;
    feed_order_and_cursor_paging(&h.fresh().await).await;
    unread_counts_are_exact(&h.fresh().await).await;
    users_are_isolated(&h.fresh().await).await;
    an_insert_is_atomic(&h.fresh().await).await;
    delivery_state_only_moves_forward(&h.fresh().await).await;
    preferences_round_trip_and_default(&h.fresh().await).await;
    retention_deletes_only_what_is_old(&h.fresh().await).await;
    outbox_survives_reopen_until_settled(&mut h).await;
    reopen_keeps_everything(&mut h).await;
}

/// A fixed, millisecond-precise instant `offset_ms` after 2030-01-01.
fn at(offset_ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_893_456_000_000 + offset_ms).expect("valid instant")
}

const DAY: i64 = 86_400_000;

/// A notification for `user` on `channels` (queued channels pending, in-app delivered).
pub(crate) fn note(user: &str, channels: &[&str], created: DateTime<Utc>) -> Notification {
    let deliveries = channels
        .iter()
        .map(|c| {
            let state = if *c == "in-app" { DeliveryState::Delivered } else { DeliveryState::Pending };
            (c.to_string(), Delivery { state, attempts: u32::from(*c == "in-app"), error: None, updated_at: created })
        })
        .collect();
    Notification {
        id: uuid::Uuid::now_v7().to_string(),
        kind: NotificationKind::Info,
        title: "Hello".into(),
        message: "A message".into(),
        user_id: user.into(),
        channels: channels.iter().map(|c| c.to_string()).collect(),
        action_url: None,
        action_label: None,
        template: None,
        data: None,
        read: false,
        read_at: None,
        created_at: created,
        deliveries,
    }
}

fn plain(n: &Notification) -> NewNotification {
    NewNotification { notification: n.clone(), email: None, outbox: Vec::new() }
}

fn feed_note(user: &str, created: DateTime<Utc>) -> Notification {
    note(user, &["in-app"], created)
}

async fn insert_one<S: NotificationStore>(s: &S, n: &Notification) -> u64 {
    s.insert(vec![plain(n)]).await.expect("insert")[0]
}

/// Every page of `user`'s feed with `limit`, following cursors; checks page sizes.
async fn all_pages<S: NotificationStore>(s: &S, user: &str, unread_only: bool, limit: usize) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let FeedPage { items, next_cursor } = s.list(user, &ListQuery { unread_only, limit, cursor }).await.expect("list");
        assert!(items.len() <= limit, "a page holds at most `limit` notifications");
        assert!(items.iter().all(|n| n.user_id == user), "a feed lists only its user's notifications");
        ids.extend(items.iter().map(|n| n.id.clone()));
        match next_cursor {
            Some(c) => {
                assert_eq!(items.len(), limit, "a page followed by a cursor is full");
                cursor = Some(c);
            }
            None => return ids,
        }
        assert!(ids.len() <= 10_000, "paging must end");
    }
}

async fn outbox_map<S: NotificationStore>(s: &S) -> BTreeMap<String, Vec<String>> {
    s.outbox().await.expect("outbox").into_iter().map(|OutboxEntry { notification_id, channels }| (notification_id, channels)).collect()
}

/// What was inserted is read back unchanged, with its email and outbox entry.
async fn read_after_write<S: NotificationStore>(s: &S) {
    let mut n = note("reader", &["in-app", "email"], at(0));
    n.kind = NotificationKind::Warning;
    n.action_url = Some("https://example.com/a?b=c".into());
    n.action_label = Some("Open".into());
    n.template = Some("welcome".into());
    n.data = Some(serde_json::json!({"name": "Zoë", "items": [1, 2.5, null], "nested": {"ok": true}}));
    let email = RenderedEmail { to: "z@example.com".into(), subject: "Hi".into(), text: "Body".into(), html: Some("<p>Body</p>".into()) };
    let counts =
        s.insert(vec![NewNotification { notification: n.clone(), email: Some(email.clone()), outbox: vec!["email".into()] }]).await;
    assert_eq!(counts.expect("insert"), vec![1], "insert returns the user's unread count after it");
    assert_eq!(s.get(&n.id).await.unwrap(), Some(n.clone()), "read-after-write: get returns the notification as inserted");
    assert_eq!(s.get_with_email(&n.id).await.unwrap(), Some((n.clone(), Some(email))), "read-after-write: the email is kept with it");
    assert_eq!(outbox_map(s).await.get(&n.id), Some(&vec!["email".to_string()]), "read-after-write: the outbox entry is kept");
    let quiet = note("reader", &["email"], at(1));
    assert_eq!(insert_one(s, &quiet).await, 1, "a notification outside the feed leaves the unread count as it is");
    assert_eq!(s.get_with_email(&quiet.id).await.unwrap(), Some((quiet.clone(), None)), "no email stored means none read back");
    assert!(!outbox_map(s).await.contains_key(&quiet.id), "an empty outbox list stores no outbox entry");
    assert_eq!(all_pages(s, "reader", false, 10).await, vec![n.id.clone()], "only in-app notifications are in the feed");
    assert_eq!(s.get("no-such-id").await.unwrap(), None, "an unknown id reads as None");
    assert_eq!(s.get_with_email("no-such-id").await.unwrap(), None, "an unknown id reads as None");
}

/// Newest first; cursor paging never repeats or skips, also while the feed changes.
async fn feed_order_and_cursor_paging<S: NotificationStore>(s: &S) {
    let mut inserted = Vec::new();
    for i in 0..8 {
        let n = feed_note("pager", at(i));
        insert_one(s, &n).await;
        insert_one(s, &feed_note("pager-other", at(i))).await;
        insert_one(s, &note("pager", &["email"], at(i))).await;
        inserted.push(n.id);
    }
    let batch: Vec<Notification> = (0..10).map(|i| feed_note("pager", at(100 + i))).collect();
    s.insert(batch.iter().map(plain).collect()).await.expect("batch insert");
    inserted.extend(batch.iter().map(|n| n.id.clone()));
    // An older creation time does not move a later insert down: the feed is in insert order.
    let late = feed_note("pager", at(-DAY));
    insert_one(s, &late).await;
    inserted.push(late.id.clone());
    let newest_first: Vec<String> = inserted.iter().rev().cloned().collect();
    for limit in [1, 3, 5, 19, 50] {
        assert_eq!(
            all_pages(s, "pager", false, limit).await,
            newest_first,
            "feed order is newest first; paging by {limit} neither repeats nor skips"
        );
    }
    for id in inserted.iter().step_by(3) {
        s.mark_read(id, at(DAY)).await.unwrap().expect("exists");
    }
    let unread: Vec<String> = newest_first.iter().filter(|id| !inserted.iter().step_by(3).any(|r| r == *id)).cloned().collect();
    for limit in [1, 4, 50] {
        assert_eq!(
            all_pages(s, "pager", true, limit).await,
            unread,
            "unread-only paging by {limit} lists exactly the unread, newest first"
        );
    }
    // Changes between pages: newer inserts never appear on later pages, deleted ones are
    // skipped, nothing else is lost.
    let first = s.list("pager", &ListQuery { unread_only: false, limit: 5, cursor: None }).await.unwrap();
    let seen: Vec<String> = first.items.iter().map(|n| n.id.clone()).collect();
    assert_eq!(seen, newest_first[..5], "the first page is the five newest");
    insert_one(s, &feed_note("pager", at(200))).await;
    let gone = newest_first[9].clone();
    s.delete(&gone).await.unwrap().expect("exists");
    let mut rest = Vec::new();
    let mut cursor = first.next_cursor;
    while let Some(c) = cursor {
        let page = s.list("pager", &ListQuery { unread_only: false, limit: 4, cursor: Some(c) }).await.unwrap();
        rest.extend(page.items.iter().map(|n| n.id.clone()));
        cursor = page.next_cursor;
    }
    let expected: Vec<String> = newest_first[5..].iter().filter(|id| **id != gone).cloned().collect();
    assert_eq!(rest, expected, "a cursor continues below its page whatever was inserted or deleted since");
    let empty = s.list("nobody", &ListQuery { unread_only: false, limit: 10, cursor: None }).await.unwrap();
    assert_eq!((empty.items.len(), empty.next_cursor), (0, None), "an unknown user has an empty feed");
}

/// Unread counts follow insert, read, read-all and delete exactly.
async fn unread_counts_are_exact<S: NotificationStore>(s: &S) {
    let user = "counter";
    let notes: Vec<Notification> = (0..5).map(|i| feed_note(user, at(i))).collect();
    for (i, n) in notes.iter().enumerate() {
        assert_eq!(insert_one(s, n).await, i as u64 + 1, "each feed insert adds one to the unread count");
    }
    let quiet = note(user, &["webhook"], at(9));
    insert_one(s, &quiet).await;
    assert_eq!(s.unread_count(user).await.unwrap(), 5, "notifications outside the feed are not counted");
    let (a, b) = (&notes[0], &notes[1]);
    let (read, change) = s.mark_read(&a.id, at(DAY)).await.unwrap().expect("exists");
    assert!(read.read && read.read_at == Some(at(DAY)), "mark_read sets read and read_at to the given time");
    assert_eq!((change.ids.clone(), change.unread_count), (vec![a.id.clone()], 4), "mark_read reports the change and the new count");
    assert_eq!(change.changed, vec![read.clone()], "the change carries the notification as stored");
    let (again, change) = s.mark_read(&a.id, at(2 * DAY)).await.unwrap().expect("exists");
    assert_eq!(again.read_at, Some(at(DAY)), "marking read twice keeps the first read_at");
    assert!(change.ids.is_empty() && change.unread_count == 4, "marking read twice changes nothing");
    assert!(s.mark_read("no-such-id", at(DAY)).await.unwrap().is_none(), "mark_read of an unknown id is None");
    let (_, change) = s.mark_read(&quiet.id, at(DAY)).await.unwrap().expect("exists");
    assert_eq!((change.ids, change.unread_count), (vec![quiet.id.clone()], 4), "reading a notification outside the feed leaves the count");
    assert_eq!(s.delete(&b.id).await.unwrap(), Some((b.clone(), 3)), "deleting an unread one returns it and the lower count");
    assert_eq!(s.delete(&a.id).await.unwrap().map(|(_, c)| c), Some(3), "deleting a read one leaves the count");
    assert!(s.delete(&b.id).await.unwrap().is_none(), "a second delete finds nothing");
    assert!(s.get(&b.id).await.unwrap().is_none(), "a deleted notification is gone");
    let change = s.mark_all_read(user, at(3 * DAY)).await.unwrap();
    let expected: BTreeSet<String> = notes[2..].iter().map(|n| n.id.clone()).collect();
    assert_eq!(change.ids.iter().cloned().collect::<BTreeSet<_>>(), expected, "read-all changes exactly the unread feed notifications");
    assert!(change.changed.iter().all(|n| n.read && n.read_at == Some(at(3 * DAY))), "read-all sets read_at to the given time");
    assert_eq!(change.unread_count, 0, "read-all leaves no unread");
    assert_eq!(s.unread_count(user).await.unwrap(), 0, "read-all leaves no unread");
    let change = s.mark_all_read(user, at(4 * DAY)).await.unwrap();
    assert!(change.ids.is_empty() && change.unread_count == 0, "read-all with nothing unread changes nothing");
    assert!(all_pages(s, user, true, 10).await.is_empty(), "no unread notification is listed after read-all");
    assert_eq!(all_pages(s, user, false, 10).await.len(), 3, "read notifications stay in the feed");
    assert_eq!(insert_one(s, &feed_note(user, at(5))).await, 1, "counting resumes from zero");
    assert_eq!(s.unread_count("nobody").await.unwrap(), 0, "an unknown user has no unread");
}

/// No operation on one user touches another, whatever the ids look like.
async fn users_are_isolated<S: NotificationStore>(s: &S) {
    let users = ["u", "u2", "u:1", "U", "u 1", "u/1", "ü", "u*", "u\u{1F600}", "user:with:colons:and:more"];
    let mut own: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for round in 0..2 {
        for (i, u) in users.iter().enumerate() {
            let n = feed_note(u, at(round * 100 + i as i64));
            insert_one(s, &n).await;
            own.entry(u).or_default().insert(0, n.id);
        }
    }
    for u in users {
        assert_eq!(all_pages(s, u, false, 3).await, own[u], "user '{u}' lists exactly their own feed");
        assert_eq!(s.unread_count(u).await.unwrap(), 2, "user '{u}' counts only their own unread");
    }
    let change = s.mark_all_read("u", at(DAY)).await.unwrap();
    assert_eq!(change.ids.len(), 2, "read-all of 'u' changes only the notifications of 'u'");
    s.delete(&own["u2"][0]).await.unwrap().expect("exists");
    for u in users.iter().filter(|u| !["u", "u2"].contains(u)) {
        assert_eq!(s.unread_count(u).await.unwrap(), 2, "read-all of 'u' and a delete of 'u2' leave '{u}' alone");
    }
    assert_eq!(s.unread_count("u2").await.unwrap(), 1, "a delete lowers only its user's count");
    let prefs = Preferences { user_id: "u:1".into(), email: Some("a@example.com".into()), ..Default::default() };
    s.put_preferences(&prefs).await.unwrap();
    let got = s.preferences(&["u".into(), "u:1".into()]).await.unwrap();
    assert_eq!(got[0].email, None, "preferences of one user are not another's");
}

/// An insert (notifications, emails, outbox entries) is all or nothing.
async fn an_insert_is_atomic<S: NotificationStore>(s: &S) {
    let user = "atomic";
    let kept = feed_note(user, at(0));
    insert_one(s, &kept).await;
    let fresh = note(user, &["in-app", "email"], at(1));
    let email = RenderedEmail { to: "a@example.com".into(), subject: "s".into(), text: "t".into(), html: None };
    let items = vec![NewNotification { notification: fresh.clone(), email: Some(email), outbox: vec!["email".into()] }, plain(&kept)];
    match s.insert(items).await {
        Err(NotifyError::Conflict(_)) => {}
        other => panic!("an insert naming a stored id must be refused with Conflict, got {other:?}"),
    }
    assert!(s.get(&fresh.id).await.unwrap().is_none(), "a refused insert stores none of its notifications");
    assert!(!outbox_map(s).await.contains_key(&fresh.id), "a refused insert stores none of its outbox entries");
    assert_eq!(s.unread_count(user).await.unwrap(), 1, "a refused insert leaves the unread count");
    assert_eq!(all_pages(s, user, false, 10).await, vec![kept.id.clone()], "a refused insert leaves the feed");
    let twin = feed_note(user, at(2));
    match s.insert(vec![plain(&twin), plain(&twin)]).await {
        Err(NotifyError::Conflict(_)) => {}
        other => panic!("an insert naming one id twice must be refused with Conflict, got {other:?}"),
    }
    assert!(s.get(&twin.id).await.unwrap().is_none(), "a refused insert stores nothing");

    // Readers never see half an insert: once a notification is visible its outbox entry
    // is, and the other way round (nothing is settled meanwhile).
    let batches: Vec<Vec<Notification>> =
        (0..40).map(|b| (0..3).map(|i| note(user, &["in-app", "push"], at(10 + b * 3 + i))).collect()).collect();
    let write = async {
        for b in &batches {
            let items = b.iter().map(|n| NewNotification { notification: n.clone(), email: None, outbox: vec!["push".into()] }).collect();
            s.insert(items).await.expect("insert");
        }
    };
    let read = async {
        for round in 0..60 {
            let b = &batches[round % batches.len()];
            let n = &b[round % 3];
            if s.get(&n.id).await.unwrap().is_some() {
                assert!(outbox_map(s).await.contains_key(&n.id), "a visible notification has its outbox entry (atomic insert)");
            }
            if outbox_map(s).await.contains_key(&b[2].id) {
                assert!(s.get(&b[2].id).await.unwrap().is_some(), "a visible outbox entry has its notification (atomic insert)");
                assert!(s.get(&b[0].id).await.unwrap().is_some(), "the notifications of one insert appear together");
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(write, read);
    assert_eq!(s.unread_count(user).await.unwrap(), 1 + 120, "every insert counted once");
}

/// A channel's delivery state changes only while pending; attempts never go down.
async fn delivery_state_only_moves_forward<S: NotificationStore>(s: &S) {
    let n = note("deliv", &["in-app", "email", "webhook"], at(0));
    insert_one(s, &n).await;
    s.mark_read(&n.id, at(1)).await.unwrap();
    let retry = Delivery { state: DeliveryState::Pending, attempts: 1, error: Some("timeout".into()), updated_at: at(10) };
    let got = s.record_delivery(&n.id, "email", retry.clone()).await.unwrap().expect("a pending channel takes a new state");
    assert_eq!(got.deliveries["email"], retry, "the recorded state is returned");
    assert!(
        got.read && got.deliveries["webhook"].state == DeliveryState::Pending,
        "recording one channel leaves the rest of the notification"
    );
    let done = Delivery { state: DeliveryState::Delivered, attempts: 2, error: None, updated_at: at(20) };
    assert!(s.record_delivery(&n.id, "email", done.clone()).await.unwrap().is_some(), "pending may become delivered");
    let late = Delivery { state: DeliveryState::Failed, attempts: 3, error: Some("late".into()), updated_at: at(30) };
    assert!(s.record_delivery(&n.id, "email", late).await.unwrap().is_none(), "a final state is never overwritten");
    assert_eq!(s.get(&n.id).await.unwrap().unwrap().deliveries["email"], done, "a refused change leaves the state");
    let many = Delivery { state: DeliveryState::Pending, attempts: 4, error: Some("x".into()), updated_at: at(40) };
    s.record_delivery(&n.id, "webhook", many).await.unwrap().expect("pending");
    let fail = Delivery { state: DeliveryState::Failed, attempts: 1, error: Some("gone".into()), updated_at: at(50) };
    let got = s.record_delivery(&n.id, "webhook", fail).await.unwrap().expect("pending may fail");
    assert_eq!((got.deliveries["webhook"].state, got.deliveries["webhook"].attempts), (DeliveryState::Failed, 4), "attempts never go down");
    let any = Delivery { state: DeliveryState::Failed, attempts: 1, error: None, updated_at: at(60) };
    assert!(s.record_delivery(&n.id, "in-app", any.clone()).await.unwrap().is_none(), "a delivered channel stays delivered");
    assert!(s.record_delivery(&n.id, "push", any.clone()).await.unwrap().is_none(), "a channel not routed is not added");
    assert!(s.record_delivery("no-such-id", "email", any).await.unwrap().is_none(), "an unknown notification is not created");
    assert!(!s.get(&n.id).await.unwrap().unwrap().deliveries.contains_key("push"), "a channel not routed is not added");
}

/// Preferences read back as written, in the order asked, with defaults for strangers.
async fn preferences_round_trip_and_default<S: NotificationStore>(s: &S) {
    let default = Preferences { user_id: "stranger".into(), ..Default::default() };
    assert_eq!(s.preferences(&["stranger".into()]).await.unwrap(), vec![default.clone()], "absent preferences are the defaults");
    let p = Preferences {
        user_id: "pref".into(),
        email: Some("p@example.com".into()),
        channels: BTreeMap::from([("error".to_string(), vec!["in-app".to_string(), "email".to_string()])]),
        muted_types: vec![NotificationKind::Info, NotificationKind::Warning],
    };
    s.put_preferences(&p).await.unwrap();
    let q = Preferences { user_id: "pref2".into(), email: Some("q@example.com".into()), ..Default::default() };
    s.put_preferences(&q).await.unwrap();
    let got = s.preferences(&["pref2".into(), "stranger".into(), "pref".into()]).await.unwrap();
    assert_eq!(got, vec![q, default, p.clone()], "preferences round-trip, in the order asked");
    let replaced = Preferences { user_id: "pref".into(), ..Default::default() };
    s.put_preferences(&replaced).await.unwrap();
    assert_eq!(s.preferences(&["pref".into()]).await.unwrap(), vec![replaced], "put replaces all of a user's preferences");
    assert!(s.preferences(&[]).await.unwrap().is_empty(), "asking for no users answers none");
}

/// Retention removes unread ones created before the bound and read ones read before the
/// other bound, nothing else, at most `limit` per call.
async fn retention_deletes_only_what_is_old<S: NotificationStore>(s: &S) {
    let now = at(200 * DAY);
    let (unread_before, read_before) = (now - Duration::days(5), now - Duration::days(30));
    let old_unread = feed_note("ret", now - Duration::days(10));
    let new_unread = feed_note("ret", now - Duration::days(1));
    let edge = feed_note("ret", unread_before);
    let old_read = feed_note("ret", now - Duration::days(40));
    let recent_read = feed_note("ret", now - Duration::days(40));
    let old_quiet = note("ret", &["email"], now - Duration::days(100));
    for n in [&old_unread, &new_unread, &edge, &old_read, &recent_read] {
        insert_one(s, n).await;
    }
    s.insert(vec![NewNotification { notification: old_quiet.clone(), email: None, outbox: vec!["email".into()] }]).await.unwrap();
    s.mark_read(&old_read.id, now - Duration::days(31)).await.unwrap();
    s.mark_read(&recent_read.id, now - Duration::days(1)).await.unwrap();
    assert_eq!(s.delete_expired(unread_before, read_before, 100).await.unwrap(), 3, "retention removes exactly the expired");
    for n in [&old_unread, &old_read, &old_quiet] {
        assert!(s.get(&n.id).await.unwrap().is_none(), "an expired notification is removed");
    }
    for n in [&new_unread, &edge, &recent_read] {
        assert!(s.get(&n.id).await.unwrap().is_some(), "retention keeps what is not older than its bound");
    }
    assert!(!outbox_map(s).await.contains_key(&old_quiet.id), "retention removes the outbox entry with the notification");
    assert_eq!(s.unread_count("ret").await.unwrap(), 2, "retention keeps the unread count exact");
    assert_eq!(s.delete_expired(unread_before, read_before, 100).await.unwrap(), 0, "nothing is left to expire");
    for i in 0..7 {
        insert_one(s, &feed_note("bulk", now - Duration::days(50) + Duration::milliseconds(i))).await;
    }
    let mut rounds = Vec::new();
    loop {
        let n = s.delete_expired(unread_before, read_before, 3).await.unwrap();
        rounds.push(n);
        if n < 3 {
            break;
        }
    }
    assert_eq!(rounds, vec![3, 3, 1], "retention removes at most `limit` per call until none is left");
    assert_eq!(s.unread_count("bulk").await.unwrap(), 0, "retention keeps the unread count exact");
}

/// Outbox entries outlive restarts and go once settled.
async fn outbox_survives_reopen_until_settled<S: NotificationStore>(h: &mut impl Harness<S>) {
    let s = h.fresh().await;
    let a = note("ob", &["in-app", "email", "webhook"], at(0));
    let b = note("ob", &["push"], at(1));
    let c = feed_note("ob", at(2));
    let d = note("ob", &["email"], at(3));
    let with = |n: &Notification, ch: &[&str]| NewNotification {
        notification: n.clone(),
        email: None,
        outbox: ch.iter().map(|c| c.to_string()).collect(),
    };
    s.insert(vec![with(&a, &["email", "webhook"]), with(&b, &["push"]), plain(&c), with(&d, &["email"])]).await.unwrap();
    let s = h.reopen(s).await;
    let expected = BTreeMap::from([
        (a.id.clone(), vec!["email".to_string(), "webhook".to_string()]),
        (b.id.clone(), vec!["push".to_string()]),
        (d.id.clone(), vec!["email".to_string()]),
    ]);
    assert_eq!(outbox_map(&s).await, expected, "outbox entries (with their channels in order) survive a re-open");
    s.settle_outbox(&[a.id.clone(), "no-such-id".into()]).await.unwrap();
    s.delete(&d.id).await.unwrap();
    let s = h.reopen(s).await;
    assert_eq!(outbox_map(&s).await.into_keys().collect::<Vec<_>>(), vec![b.id.clone()], "settled or deleted entries are gone, for good");
    s.settle_outbox(std::slice::from_ref(&b.id)).await.unwrap();
    s.settle_outbox(&[]).await.unwrap();
    let s = h.reopen(s).await;
    assert!(outbox_map(&s).await.is_empty(), "a settled outbox stays empty after a re-open");
    assert!(s.get(&a.id).await.unwrap().is_some(), "settling keeps the notification");
}

/// A re-open keeps every notification, state, count and preference, and later inserts
/// still go on top of the feed.
async fn reopen_keeps_everything<S: NotificationStore>(h: &mut impl Harness<S>) {
    let s = h.fresh().await;
    let notes: Vec<Notification> = (0..6).map(|i| note("keep", &["in-app", "email"], at(i))).collect();
    let email = RenderedEmail { to: "k@example.com".into(), subject: "s".into(), text: "t".into(), html: None };
    s.insert(notes.iter().map(|n| NewNotification { notification: n.clone(), email: Some(email.clone()), outbox: Vec::new() }).collect())
        .await
        .unwrap();
    s.mark_read(&notes[1].id, at(DAY)).await.unwrap();
    s.delete(&notes[2].id).await.unwrap();
    let done = Delivery { state: DeliveryState::Delivered, attempts: 1, error: None, updated_at: at(DAY) };
    s.record_delivery(&notes[3].id, "email", done).await.unwrap();
    let prefs = Preferences { user_id: "keep".into(), email: Some("k@example.com".into()), ..Default::default() };
    s.put_preferences(&prefs).await.unwrap();
    let mut before = Vec::new();
    for n in &notes {
        before.push(s.get_with_email(&n.id).await.unwrap());
    }
    let feed = all_pages(&s, "keep", false, 4).await;
    let s = h.reopen(s).await;
    for (n, b) in notes.iter().zip(&before) {
        assert_eq!(&s.get_with_email(&n.id).await.unwrap(), b, "a re-open keeps every notification, its state and email");
    }
    assert_eq!(all_pages(&s, "keep", false, 4).await, feed, "a re-open keeps the feed and its order");
    assert_eq!(s.unread_count("keep").await.unwrap(), 4, "a re-open keeps the unread count");
    assert_eq!(s.preferences(&["keep".into()]).await.unwrap(), vec![prefs], "a re-open keeps preferences");
    let later = feed_note("keep", at(-DAY));
    assert_eq!(insert_one(&s, &later).await, 5, "counting continues after a re-open");
    let top = s.list("keep", &ListQuery { unread_only: false, limit: 1, cursor: None }).await.unwrap();
    assert_eq!(top.items[0].id, later.id, "an insert after a re-open goes on top of the feed");
    match s.insert(vec![plain(&notes[0])]).await {
        Err(NotifyError::Conflict(_)) => {}
        other => panic!("ids stored before a re-open still conflict, got {other:?}"),
    }
}
