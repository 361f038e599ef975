//! The notification-store seam: where notifications, their read and delivery state, the
//! delivery outbox and users' preferences live.
//!
//! The service ([`super::Notifications`]) owns every rule about routing, validation,
//! events and hooks; a store only keeps data and answers queries. The embedded store
//! ([`super::embedded::EmbeddedNotificationStore`], redb) is the default; a cluster store
//! (Redis, in a later issue) implements the same trait and passes the same
//! [`super::conformance`] suite.
//!
//! Invariants every implementation keeps:
//! - **Durable when acknowledged.** A write returns `Ok` only once it survives a crash.
//! - **One insert is atomic.** [`NotificationStore::insert`] writes every notification of
//!   the call, its rendered email and its outbox entry as one unit: a reader sees all of
//!   it or none of it, and an error leaves nothing behind. An insert naming an id that is
//!   already stored (or twice) is refused with [`NotifyError::Conflict`] as a whole.
//! - **The feed is per user and in insert order.** A user's feed holds the notifications
//!   routed to `in-app` ([`Notification::in_feed`]), newest (last inserted) first; cursors
//!   are opaque numbers the store hands out, and paging with them never repeats or skips a
//!   notification that stayed in the feed.
//! - **Unread counts are exact.** A user's unread count is the number of unread feed
//!   notifications, after every insert, read, read-all, delete and retention sweep.
//!   Notifications outside the feed are stored (for their delivery state) but never
//!   counted or listed.
//! - **Users are isolated.** No operation on one user's feed, count or preferences reads
//!   or changes another's, whatever characters the user ids contain.
//! - **The outbox outlives restarts.** An outbox entry stays until it is settled.
//! - **Time comes from the caller** (`now`, `*_before`): a store never reads a clock.
//! - **Unreachable is an error, not a panic:** a store that cannot reach its backend
//!   returns [`NotifyError::Unavailable`] (HTTP 503).

use super::error::NotifyError;
use super::model::{Delivery, FeedPage, ListQuery, Notification, Preferences};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

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

/// One notification to insert, with what is stored beside it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewNotification {
    /// The notification; its id must be fresh.
    pub notification: Notification,
    /// The rendered email, when the email channel is used.
    pub email: Option<RenderedEmail>,
    /// Channels whose delivery job must still be enqueued; empty means no outbox entry.
    pub outbox: Vec<String>,
}

/// A notification whose delivery jobs may not have been enqueued yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// The notification.
    pub notification_id: String,
    /// Its queued channels.
    pub channels: Vec<String>,
}

/// The result of marking notifications read.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadChange {
    /// Ids whose state changed (already-read ones are not included).
    pub ids: Vec<String>,
    /// The notifications that changed, as stored afterwards.
    pub changed: Vec<Notification>,
    /// The user's unread count afterwards.
    pub unread_count: u64,
}

/// Durable storage of notifications, their state, the outbox and preferences.
///
/// Called once per request (or per batch), so it is an `async_trait` object:
/// `Arc<dyn NotificationStore>`.
#[async_trait]
pub trait NotificationStore: Send + Sync + 'static {
    /// Inserts the notifications with their emails and outbox entries in one atomic,
    /// durable write. Returns, per item and in order, its user's unread count right after
    /// the insert (including the notifications of this call). Refuses the whole call with
    /// [`NotifyError::Conflict`] when an id is already stored or given twice.
    async fn insert(&self, items: Vec<NewNotification>) -> Result<Vec<u64>, NotifyError>;

    /// One notification (feed or not), if stored.
    async fn get(&self, id: &str) -> Result<Option<Notification>, NotifyError>;

    /// One notification together with its rendered email, read consistently (the delivery
    /// job needs both).
    async fn get_with_email(&self, id: &str) -> Result<Option<(Notification, Option<RenderedEmail>)>, NotifyError>;

    /// One page of `user_id`'s feed, newest first: at most `query.limit` notifications
    /// older than `query.cursor` (all when `None`), unread ones only if asked. `next_cursor`
    /// is set exactly when more notifications follow the page.
    async fn list(&self, user_id: &str, query: &ListQuery) -> Result<FeedPage, NotifyError>;

    /// The number of unread feed notifications of `user_id` (0 for an unknown user).
    async fn unread_count(&self, user_id: &str) -> Result<u64, NotifyError>;

    /// Marks one notification read at `now`. `None` when it does not exist; an already-read
    /// one is returned unchanged with an empty change.
    async fn mark_read(&self, id: &str, now: DateTime<Utc>) -> Result<Option<(Notification, ReadChange)>, NotifyError>;

    /// Marks every unread feed notification of `user_id` read at `now`, in one write.
    async fn mark_all_read(&self, user_id: &str, now: DateTime<Utc>) -> Result<ReadChange, NotifyError>;

    /// Removes a notification with its email and outbox entry. Returns it as it was and
    /// its user's unread count afterwards; `None` when it does not exist.
    async fn delete(&self, id: &str) -> Result<Option<(Notification, u64)>, NotifyError>;

    /// Records one channel's delivery state, only while that channel is still `pending`
    /// (a final state is never overwritten); the stored attempt count never goes down.
    /// Returns the notification as stored afterwards, or `None` when nothing changed: the
    /// notification is gone, the channel is not routed, or it is no longer pending.
    async fn record_delivery(&self, id: &str, channel: &str, delivery: Delivery) -> Result<Option<Notification>, NotifyError>;

    /// The preferences of each user, in the order asked; a user who never set any gets
    /// the defaults ([`Preferences::default`] with `user_id` filled in).
    async fn preferences(&self, user_ids: &[String]) -> Result<Vec<Preferences>, NotifyError>;

    /// Replaces the preferences of `prefs.user_id`.
    async fn put_preferences(&self, prefs: &Preferences) -> Result<(), NotifyError>;

    /// Every outbox entry (what to enqueue again at start), in no particular order.
    async fn outbox(&self) -> Result<Vec<OutboxEntry>, NotifyError>;

    /// Removes the outbox entries of these notifications (their jobs are enqueued).
    /// Unknown ids are ignored.
    async fn settle_outbox(&self, notification_ids: &[String]) -> Result<(), NotifyError>;

    /// Retention: removes (as [`NotificationStore::delete`] does) up to `limit`
    /// notifications that are unread and were created before `unread_before`, or were
    /// read before `read_before`. Returns how many went; fewer than `limit` means none is
    /// left.
    async fn delete_expired(&self, unread_before: DateTime<Utc>, read_before: DateTime<Utc>, limit: usize) -> Result<usize, NotifyError>;
}
