//! Tables of the notification module and the transactional operations on them.
//!
//! Layout (all keys ordered so that the common queries are range scans):
//! - `notify_items`: id -> notification (postcard via [`codec`]);
//! - `notify_feed`: (user, seq) -> id, every in-app notification of a user;
//! - `notify_unread`: (user, seq) -> id, the unread subset; `notify_unread_count`: user -> n;
//! - `notify_unread_age`: (created ms, seq) -> id for unread notifications and
//!   `notify_read_age`: (read ms, seq) -> id for read ones, which the retention sweeper scans;
//! - `notify_email`: id -> the rendered email (kept until the notification is removed);
//! - `notify_outbox`: id -> channels whose delivery job is not yet enqueued;
//! - `notify_prefs`: user -> preferences; `notify_meta`: `seq` -> last sequence number.
//!
//! Invariant: every function here that mutates validates first and then writes, so an
//! `Err` leaves the transaction untouched (the group-commit writer's rule).

use super::model::{Delivery, DeliveryState, FeedPage, ListQuery, Notification, NotificationKind, Preferences};
use crate::store::{StoreError, codec, open_read};
use chrono::{DateTime, Utc};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// A rendered email, stored at send time so that delivery never fails on a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenderedEmail {
    /// Recipient address.
    pub to: String,
    /// Subject line.
    pub subject: String,
    /// Plain-text part.
    pub text: String,
    /// HTML part (templates only).
    pub html: Option<String>,
}

/// The stored form of a notification (postcard: `data` kept as JSON text).
#[derive(Serialize, Deserialize)]
struct Stored {
    id: String,
    seq: u64,
    kind: NotificationKind,
    title: String,
    message: String,
    user_id: String,
    channels: Vec<String>,
    action_url: Option<String>,
    action_label: Option<String>,
    template: Option<String>,
    data_json: Option<String>,
    read_at_ms: Option<i64>,
    created_at_ms: i64,
    deliveries: Vec<(String, StoredDelivery)>,
}

#[derive(Serialize, Deserialize)]
struct StoredDelivery {
    state: DeliveryState,
    attempts: u32,
    error: Option<String>,
    updated_at_ms: i64,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// A notification together with its sequence number (the feed's sort key).
#[derive(Debug, Clone)]
pub struct Record {
    /// Position in the global send order.
    pub seq: u64,
    /// The notification.
    pub n: Notification,
}

impl Record {
    fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let n = &self.n;
        let s = Stored {
            id: n.id.clone(),
            seq: self.seq,
            kind: n.kind,
            title: n.title.clone(),
            message: n.message.clone(),
            user_id: n.user_id.clone(),
            channels: n.channels.clone(),
            action_url: n.action_url.clone(),
            action_label: n.action_label.clone(),
            template: n.template.clone(),
            data_json: n.data.as_ref().map(|d| d.to_string()),
            read_at_ms: n.read_at.map(ms),
            created_at_ms: ms(n.created_at),
            deliveries: n
                .deliveries
                .iter()
                .map(|(c, d)| {
                    (
                        c.clone(),
                        StoredDelivery { state: d.state, attempts: d.attempts, error: d.error.clone(), updated_at_ms: ms(d.updated_at) },
                    )
                })
                .collect(),
        };
        codec::encode(&s)
    }

    fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
        let s: Stored = codec::decode(bytes)?;
        let data = match s.data_json {
            Some(t) => Some(serde_json::from_str(&t).map_err(|e| StoreError::Corrupt(format!("notification data: {e}")))?),
            None => None,
        };
        let deliveries: BTreeMap<String, Delivery> = s
            .deliveries
            .into_iter()
            .map(|(c, d)| (c, Delivery { state: d.state, attempts: d.attempts, error: d.error, updated_at: from_ms(d.updated_at_ms) }))
            .collect();
        Ok(Record {
            seq: s.seq,
            n: Notification {
                id: s.id,
                kind: s.kind,
                title: s.title,
                message: s.message,
                user_id: s.user_id,
                channels: s.channels,
                action_url: s.action_url,
                action_label: s.action_label,
                template: s.template,
                data,
                read: s.read_at_ms.is_some(),
                read_at: s.read_at_ms.map(from_ms),
                created_at: from_ms(s.created_at_ms),
                deliveries,
            },
        })
    }
}

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

/// What to insert for one new notification.
pub struct NewItem<'a> {
    /// The notification (its `seq` is assigned here).
    pub n: &'a Notification,
    /// The rendered email, when the email channel is used.
    pub email: Option<&'a RenderedEmail>,
    /// Channels whose delivery job must still be enqueued.
    pub outbox: &'a [String],
}

/// Inserts new notifications; returns each one's sequence number and its user's unread count
/// after the insert. Ids must be fresh (UUID v7), so nothing can collide.
pub fn insert(txn: &WriteTransaction, items: &[NewItem<'_>]) -> Result<Vec<(u64, u64)>, StoreError> {
    let mut out = Vec::with_capacity(items.len());
    let mut encoded = Vec::with_capacity(items.len());
    let mut seq = {
        let meta = txn.open_table(META)?;
        meta.get("seq")?.map(|v| v.value()).unwrap_or(0)
    };
    for it in items {
        seq += 1;
        let rec = Record { seq, n: it.n.clone() };
        let email = it.email.map(codec::encode).transpose()?;
        let outbox = if it.outbox.is_empty() { None } else { Some(codec::encode(&it.outbox.to_vec())?) };
        encoded.push((seq, rec.encode()?, email, outbox));
    }
    txn.open_table(META)?.insert("seq", seq)?;
    {
        let mut items_t = txn.open_table(ITEMS)?;
        let mut feed = txn.open_table(FEED)?;
        let mut unread = txn.open_table(UNREAD)?;
        let mut age = txn.open_table(UNREAD_AGE)?;
        let mut emails = txn.open_table(EMAILS)?;
        let mut outbox_t = txn.open_table(OUTBOX)?;
        for (it, (seq, bytes, email, outbox)) in items.iter().zip(encoded) {
            let n = it.n;
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
            out.push((seq, 0));
        }
    }
    for (i, it) in items.iter().enumerate() {
        out[i].1 = if it.n.in_feed() { adjust_unread(txn, &it.n.user_id, 1)? } else { unread_count_w(txn, &it.n.user_id)? };
    }
    Ok(out)
}

fn unread_count_w(txn: &WriteTransaction, user: &str) -> Result<u64, StoreError> {
    Ok(txn.open_table(UNREAD_COUNT)?.get(user)?.map(|v| v.value()).unwrap_or(0))
}

/// Reads one notification.
pub fn get(txn: &ReadTransaction, id: &str) -> Result<Option<Notification>, StoreError> {
    let Some(t) = open_read(txn, ITEMS)? else { return Ok(None) };
    Ok(load(&t, id)?.map(|r| r.n))
}

/// A user's unread count.
pub fn unread_count(txn: &ReadTransaction, user: &str) -> Result<u64, StoreError> {
    let Some(t) = open_read(txn, UNREAD_COUNT)? else { return Ok(0) };
    Ok(t.get(user)?.map(|v| v.value()).unwrap_or(0))
}

/// One page of a user's feed, newest first.
pub fn list(txn: &ReadTransaction, user: &str, q: &ListQuery) -> Result<FeedPage, StoreError> {
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

/// The result of marking notifications read.
#[derive(Debug, Clone)]
pub struct ReadChange {
    /// Ids whose state changed (already-read ones are not included).
    pub ids: Vec<String>,
    /// The notifications that changed.
    pub changed: Vec<Notification>,
    /// The user's unread count afterwards.
    pub unread_count: u64,
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
pub fn mark_read(txn: &WriteTransaction, id: &str, now: DateTime<Utc>) -> Result<Option<(Notification, ReadChange)>, StoreError> {
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
pub fn mark_all_read(txn: &WriteTransaction, user: &str, now: DateTime<Utc>) -> Result<ReadChange, StoreError> {
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
pub fn delete(txn: &WriteTransaction, id: &str) -> Result<Option<(Notification, u64)>, StoreError> {
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

/// Applies `f` to one channel's delivery state. Returns the updated notification, or `None`
/// when the notification is gone (deleted or swept) or `f` declines the change.
pub fn update_delivery(
    txn: &WriteTransaction,
    id: &str,
    channel: &str,
    f: impl FnOnce(&mut Delivery) -> bool,
) -> Result<Option<Notification>, StoreError> {
    let Some(mut rec) = load(&txn.open_table(ITEMS)?, id)? else { return Ok(None) };
    let Some(d) = rec.n.deliveries.get_mut(channel) else { return Ok(None) };
    if !f(d) {
        return Ok(None);
    }
    let bytes = rec.encode()?;
    txn.open_table(ITEMS)?.insert(id, bytes.as_slice())?;
    Ok(Some(rec.n))
}

/// The rendered email of a notification.
pub fn email_of(txn: &ReadTransaction, id: &str) -> Result<Option<RenderedEmail>, StoreError> {
    let Some(t) = open_read(txn, EMAILS)? else { return Ok(None) };
    t.get(id)?.map(|v| codec::decode(v.value())).transpose()
}

/// Every outbox entry: notifications whose delivery jobs may not have been enqueued.
pub fn outbox(txn: &ReadTransaction) -> Result<Vec<(String, Vec<String>)>, StoreError> {
    let Some(t) = open_read(txn, OUTBOX)? else { return Ok(Vec::new()) };
    let mut v = Vec::new();
    for e in t.iter()? {
        let (k, val) = e?;
        v.push((k.value().to_string(), codec::decode(val.value())?));
    }
    Ok(v)
}

/// Clears outbox entries once their jobs are enqueued.
pub fn clear_outbox(txn: &WriteTransaction, ids: &[String]) -> Result<(), StoreError> {
    let mut t = txn.open_table(OUTBOX)?;
    for id in ids {
        t.remove(id.as_str())?;
    }
    Ok(())
}

/// Ids of notifications past retention: unread ones created before `unread_before`, read
/// ones read before `read_before`; at most `limit`.
pub fn expired(
    txn: &ReadTransaction,
    unread_before: DateTime<Utc>,
    read_before: DateTime<Utc>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let mut v = Vec::new();
    for (def, before) in [(UNREAD_AGE, unread_before), (READ_AGE, read_before)] {
        let Some(t) = open_read(txn, def)? else { continue };
        for e in t.range((i64::MIN, 0u64)..(ms(before), 0u64))? {
            if v.len() >= limit {
                return Ok(v);
            }
            v.push(e?.1.value().to_string());
        }
    }
    Ok(v)
}

/// A user's preferences (defaults when never set).
pub fn prefs(txn: &ReadTransaction, user: &str) -> Result<Preferences, StoreError> {
    let Some(t) = open_read(txn, PREFS)? else { return Ok(Preferences { user_id: user.to_string(), ..Default::default() }) };
    match t.get(user)? {
        Some(v) => codec::decode(v.value()),
        None => Ok(Preferences { user_id: user.to_string(), ..Default::default() }),
    }
}

/// Replaces a user's preferences.
pub fn put_prefs(txn: &WriteTransaction, p: &Preferences) -> Result<(), StoreError> {
    let bytes = codec::encode(p)?;
    txn.open_table(PREFS)?.insert(p.user_id.as_str(), bytes.as_slice())?;
    Ok(())
}
