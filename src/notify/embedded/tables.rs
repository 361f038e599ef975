//! The redb tables of the embedded notification store and the transactional operations on
//! them.
//!
//! Layout (all keys ordered so that the common queries are range scans):
//! - `notify_items`: id -> notification ([`super::record`]);
//! - `notify_feed`: (user, seq) -> id, every in-app notification of a user;
//! - `notify_unread`: (user, seq) -> id, the unread subset; `notify_unread_count`: user -> n;
//! - `notify_unread_age`: (created ms, seq) -> id for unread notifications and
//!   `notify_read_age`: (read ms, seq) -> id for read ones, which retention scans;
//! - `notify_email`: id -> the rendered email (kept until the notification is removed);
//! - `notify_outbox`: id -> channels whose delivery job is not yet enqueued;
//! - `notify_prefs`: user -> preferences; `notify_meta`: `seq` -> last sequence number.
//!
//! Invariant: every function here that mutates validates first and then writes, so an
//! `Err` leaves the transaction untouched (the group-commit writer's rule).

use super::record::{Record, ms};
use crate::notify::error::NotifyError;
use crate::notify::model::{Delivery, DeliveryState, FeedPage, ListQuery, Notification, Preferences};
use crate::notify::store::{NewNotification, OutboxEntry, ReadChange, RenderedEmail};
use crate::store::{StoreError, codec, open_read};
use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use std::collections::HashSet;

const ITEMS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_items");
const FEED: TableDefinition<(&str, u64), &str> = TableDefinition::new("notify_feed");
const UNREAD: TableDefinition<(&str, u64), &str> = TableDefinition::new("notify_unread");
const UNREAD_COUNT: TableDefinition<&str, u64> = TableDefinition::new("notify_unread_count");
const UNREAD_AGE: TableDefinition<(i64, u64), &str> = TableDefinition::new("notify_unread_age");
const READ_AGE: TableDefinition<(i64, u64), &str> = TableDefinition::new("notify_read_age");
const EMAILS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_email");
const OUTBOX: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_outbox");
const PREFS: TableDefinition<&str, &[u8]> = TableDefinition::new("notify_prefs");
const META: TableDefinition<&str, u64> = TableDefinition::new("notify_meta");

fn load<T: ReadableTable<&'static str, &'static [u8]>>(t: &T, id: &str) -> Result<Option<Record>, StoreError> {
    match t.get(id)? {
        Some(v) => Ok(Some(Record::decode(v.value())?)),
        None => Ok(None),
    }
}

fn adjust_unread(txn: &WriteTransaction, user: &str, delta: i64) -> Result<u64, StoreError> {
    let mut t = txn.open_table(UNREAD_COUNT)?;
    let cur = t.get(user)?.map(|v| v.value()).unwrap_or(0) as i64;
    let next = (cur + delta).max(0) as u64;
    if next == 0 {
        t.remove(user)?;
    } else {
        t.insert(user, next)?;
    }
    Ok(next)
}

fn unread_count_w(txn: &WriteTransaction, user: &str) -> Result<u64, StoreError> {
    Ok(txn.open_table(UNREAD_COUNT)?.get(user)?.map(|v| v.value()).unwrap_or(0))
}

/// Inserts new notifications; returns each one's user's unread count after the insert.
/// Refuses (writing nothing) when an id is stored already or given twice.
pub(super) fn insert(txn: &WriteTransaction, items: &[NewNotification]) -> Result<Vec<u64>, NotifyError> {
    {
        let items_t = txn.open_table(ITEMS).map_err(StoreError::from)?;
        let mut fresh = HashSet::with_capacity(items.len());
        for it in items {
            let id = it.notification.id.as_str();
            if !fresh.insert(id) || items_t.get(id).map_err(StoreError::from)?.is_some() {
                return Err(NotifyError::Conflict(format!("notification '{id}' already exists")));
            }
        }
    }
    let mut seq = txn.open_table(META).map_err(StoreError::from)?.get("seq").map_err(StoreError::from)?.map(|v| v.value()).unwrap_or(0);
    let mut encoded = Vec::with_capacity(items.len());
    for it in items {
        seq += 1;
        let rec = Record { seq, n: it.notification.clone() };
        let email = it.email.as_ref().map(codec::encode).transpose()?;
        let outbox = if it.outbox.is_empty() { None } else { Some(codec::encode(&it.outbox)?) };
        encoded.push((seq, rec.encode()?, email, outbox));
    }
    write_new(txn, items, encoded, seq).map_err(NotifyError::from)
}

type Encoded = (u64, Vec<u8>, Option<Vec<u8>>, Option<Vec<u8>>);

fn write_new(txn: &WriteTransaction, items: &[NewNotification], encoded: Vec<Encoded>, last_seq: u64) -> Result<Vec<u64>, StoreError> {
    txn.open_table(META)?.insert("seq", last_seq)?;
    {
        let mut items_t = txn.open_table(ITEMS)?;
        let mut feed = txn.open_table(FEED)?;
        let mut unread = txn.open_table(UNREAD)?;
        let mut age = txn.open_table(UNREAD_AGE)?;
        let mut emails = txn.open_table(EMAILS)?;
        let mut outbox_t = txn.open_table(OUTBOX)?;
        for (it, (seq, bytes, email, outbox)) in items.iter().zip(encoded) {
            let n = &it.notification;
            items_t.insert(n.id.as_str(), bytes.as_slice())?;
            age.insert((ms(n.created_at), seq), n.id.as_str())?;
            if let Some(e) = email {
                emails.insert(n.id.as_str(), e.as_slice())?;
            }
            if let Some(o) = outbox {
                outbox_t.insert(n.id.as_str(), o.as_slice())?;
            }
            if n.in_feed() {
                feed.insert((n.user_id.as_str(), seq), n.id.as_str())?;
                unread.insert((n.user_id.as_str(), seq), n.id.as_str())?;
            }
        }
    }
    for it in items.iter().filter(|it| it.notification.in_feed()) {
        adjust_unread(txn, &it.notification.user_id, 1)?;
    }
    // Each count is the user's count after the whole insert, as a reader sees it.
    let counts = items.iter().map(|it| unread_count_w(txn, &it.notification.user_id)).collect::<Result<Vec<_>, _>>()?;
    Ok(counts)
}

/// Reads one notification, with its email when asked.
pub(super) fn get(txn: &ReadTransaction, id: &str, with_email: bool) -> Result<Option<(Notification, Option<RenderedEmail>)>, StoreError> {
    let Some(t) = open_read(txn, ITEMS)? else { return Ok(None) };
    let Some(rec) = load(&t, id)? else { return Ok(None) };
    let email = match (with_email, open_read(txn, EMAILS)?) {
        (true, Some(e)) => e.get(id)?.map(|v| codec::decode(v.value())).transpose()?,
        _ => None,
    };
    Ok(Some((rec.n, email)))
}

/// A user's unread count.
pub(super) fn unread_count(txn: &ReadTransaction, user: &str) -> Result<u64, StoreError> {
    let Some(t) = open_read(txn, UNREAD_COUNT)? else { return Ok(0) };
    Ok(t.get(user)?.map(|v| v.value()).unwrap_or(0))
}

/// One page of a user's feed, newest first.
pub(super) fn list(txn: &ReadTransaction, user: &str, q: &ListQuery) -> Result<FeedPage, StoreError> {
    let index = if q.unread_only { UNREAD } else { FEED };
    let (Some(idx), Some(items)) = (open_read(txn, index)?, open_read(txn, ITEMS)?) else {
        return Ok(FeedPage { items: Vec::new(), next_cursor: None });
    };
    let upper = q.cursor.unwrap_or(u64::MAX);
    let mut out = Vec::with_capacity(q.limit.min(256));
    let mut last_seq = None;
    let mut more = false;
    for entry in idx.range((user, 0u64)..(user, upper))?.rev() {
        let (k, v) = entry?;
        if out.len() == q.limit {
            more = true;
            break;
        }
        if let Some(r) = load(&items, v.value())? {
            out.push(r.n);
        }
        last_seq = Some(k.value().1);
    }
    Ok(FeedPage { items: out, next_cursor: if more { last_seq } else { None } })
}

fn set_read(txn: &WriteTransaction, rec: &mut Record, now: DateTime<Utc>) -> Result<(), StoreError> {
    let n = &mut rec.n;
    n.read = true;
    n.read_at = Some(now);
    let bytes = rec.encode()?;
    let n = &rec.n;
    txn.open_table(ITEMS)?.insert(n.id.as_str(), bytes.as_slice())?;
    txn.open_table(UNREAD)?.remove((n.user_id.as_str(), rec.seq))?;
    txn.open_table(UNREAD_AGE)?.remove((ms(n.created_at), rec.seq))?;
    txn.open_table(READ_AGE)?.insert((ms(now), rec.seq), n.id.as_str())?;
    if n.in_feed() {
        adjust_unread(txn, &n.user_id, -1)?;
    }
    Ok(())
}

/// Marks one notification read. `None` when it does not exist; an already-read one is
/// reported with no change.
pub(super) fn mark_read(txn: &WriteTransaction, id: &str, now: DateTime<Utc>) -> Result<Option<(Notification, ReadChange)>, StoreError> {
    let Some(mut rec) = load(&txn.open_table(ITEMS)?, id)? else { return Ok(None) };
    let mut change = ReadChange { ids: Vec::new(), changed: Vec::new(), unread_count: 0 };
    if !rec.n.read {
        set_read(txn, &mut rec, now)?;
        change.ids.push(rec.n.id.clone());
        change.changed.push(rec.n.clone());
    }
    change.unread_count = unread_count_w(txn, &rec.n.user_id)?;
    Ok(Some((rec.n, change)))
}

/// Marks every unread feed notification of `user` read.
pub(super) fn mark_all_read(txn: &WriteTransaction, user: &str, now: DateTime<Utc>) -> Result<ReadChange, StoreError> {
    let ids: Vec<String> = {
        let t = txn.open_table(UNREAD)?;
        let mut v = Vec::new();
        for e in t.range((user, 0u64)..=(user, u64::MAX))? {
            v.push(e?.1.value().to_string());
        }
        v
    };
    let mut change = ReadChange { ids: Vec::new(), changed: Vec::new(), unread_count: 0 };
    for id in ids {
        let rec = load(&txn.open_table(ITEMS)?, &id)?;
        if let Some(mut rec) = rec
            && !rec.n.read
        {
            set_read(txn, &mut rec, now)?;
            change.ids.push(id);
            change.changed.push(rec.n);
        }
    }
    change.unread_count = unread_count_w(txn, user)?;
    Ok(change)
}

/// Removes a notification and everything indexed about it; returns it and its user's
/// unread count afterwards.
pub(super) fn delete(txn: &WriteTransaction, id: &str) -> Result<Option<(Notification, u64)>, StoreError> {
    let Some(rec) = load(&txn.open_table(ITEMS)?, id)? else { return Ok(None) };
    let n = &rec.n;
    txn.open_table(ITEMS)?.remove(id)?;
    txn.open_table(FEED)?.remove((n.user_id.as_str(), rec.seq))?;
    txn.open_table(EMAILS)?.remove(id)?;
    txn.open_table(OUTBOX)?.remove(id)?;
    match n.read_at {
        Some(at) => {
            txn.open_table(READ_AGE)?.remove((ms(at), rec.seq))?;
        }
        None => {
            txn.open_table(UNREAD_AGE)?.remove((ms(n.created_at), rec.seq))?;
            if txn.open_table(UNREAD)?.remove((n.user_id.as_str(), rec.seq))?.is_some() {
                adjust_unread(txn, &n.user_id, -1)?;
            }
        }
    }
    let count = unread_count_w(txn, &n.user_id)?;
    Ok(Some((rec.n, count)))
}

/// Records a channel's delivery state while it is pending (see the trait).
pub(super) fn record_delivery(txn: &WriteTransaction, id: &str, channel: &str, next: Delivery) -> Result<Option<Notification>, StoreError> {
    let Some(mut rec) = load(&txn.open_table(ITEMS)?, id)? else { return Ok(None) };
    let Some(d) = rec.n.deliveries.get_mut(channel) else { return Ok(None) };
    if d.state != DeliveryState::Pending {
        return Ok(None);
    }
    *d = Delivery { attempts: next.attempts.max(d.attempts), ..next };
    let bytes = rec.encode()?;
    txn.open_table(ITEMS)?.insert(id, bytes.as_slice())?;
    Ok(Some(rec.n))
}

/// Every outbox entry.
pub(super) fn outbox(txn: &ReadTransaction) -> Result<Vec<OutboxEntry>, StoreError> {
    let Some(t) = open_read(txn, OUTBOX)? else { return Ok(Vec::new()) };
    let mut v = Vec::new();
    for e in t.iter()? {
        let (k, val) = e?;
        v.push(OutboxEntry { notification_id: k.value().to_string(), channels: codec::decode(val.value())? });
    }
    Ok(v)
}

/// Clears outbox entries once their jobs are enqueued.
pub(super) fn settle_outbox(txn: &WriteTransaction, ids: &[String]) -> Result<(), StoreError> {
    let mut t = txn.open_table(OUTBOX)?;
    for id in ids {
        t.remove(id.as_str())?;
    }
    Ok(())
}

/// Removes up to `limit` notifications past retention: unread ones created before
/// `unread_before`, read ones read before `read_before`. Returns how many went.
pub(super) fn delete_expired(
    txn: &WriteTransaction,
    unread_before: DateTime<Utc>,
    read_before: DateTime<Utc>,
    limit: usize,
) -> Result<usize, StoreError> {
    let mut ids = Vec::new();
    for (def, before) in [(UNREAD_AGE, unread_before), (READ_AGE, read_before)] {
        let t = txn.open_table(def)?;
        for e in t.range((i64::MIN, 0u64)..(ms(before), 0u64))? {
            if ids.len() >= limit {
                break;
            }
            ids.push(e?.1.value().to_string());
        }
    }
    for id in &ids {
        delete(txn, id)?;
    }
    Ok(ids.len())
}

/// Users' preferences (defaults when never set), in the order asked.
pub(super) fn preferences(txn: &ReadTransaction, users: &[String]) -> Result<Vec<Preferences>, StoreError> {
    let t = open_read(txn, PREFS)?;
    let mut out = Vec::with_capacity(users.len());
    for user in users {
        let stored = match &t {
            Some(t) => t.get(user.as_str())?.map(|v| codec::decode(v.value())).transpose()?,
            None => None,
        };
        out.push(stored.unwrap_or_else(|| Preferences { user_id: user.clone(), ..Default::default() }));
    }
    Ok(out)
}

/// Replaces a user's preferences.
pub(super) fn put_preferences(txn: &WriteTransaction, p: &Preferences) -> Result<(), StoreError> {
    let bytes = codec::encode(p)?;
    txn.open_table(PREFS)?.insert(p.user_id.as_str(), bytes.as_slice())?;
    Ok(())
}
