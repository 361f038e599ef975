//! The in-app feed and preferences: list, count, read, read-all, delete, get/put
//! preferences. Every read-state change is durable before it is published.

use super::error::NotifyError;
use super::model::{FeedPage, ListQuery, Notification, NotificationKind, Preferences, PreferencesInput};
use super::send::check_user_id;
use super::store::ReadChange;
use super::{Notifications, TOPIC_DELETED, TOPIC_READ, email, metrics};

/// Largest page of a feed listing.
pub const MAX_LIMIT: usize = 200;

impl Notifications {
    /// One notification (any channel), or `NotFound`.
    pub async fn get(&self, id: &str) -> Result<Notification, NotifyError> {
        self.inner.store.get(id).await?.ok_or_else(|| NotifyError::NotFound(id.to_string()))
    }

    /// A page of `user_id`'s in-app feed, newest first.
    pub async fn list(&self, user_id: &str, mut q: ListQuery) -> Result<FeedPage, NotifyError> {
        check_user_id("user_id", user_id)?;
        if q.limit == 0 || q.limit > MAX_LIMIT {
            return Err(NotifyError::invalid("limit", format!("must be 1 to {MAX_LIMIT}")));
        }
        q.limit = q.limit.min(MAX_LIMIT);
        self.inner.store.list(user_id, &q).await
    }

    /// Number of unread in-app notifications of `user_id`.
    pub async fn unread_count(&self, user_id: &str) -> Result<u64, NotifyError> {
        check_user_id("user_id", user_id)?;
        self.inner.store.unread_count(user_id).await
    }

    /// Marks one notification read (idempotent). Returns it as stored afterwards.
    pub async fn mark_read(&self, id: &str) -> Result<Notification, NotifyError> {
        let now = self.inner.clock.now();
        let (n, change) = self.inner.store.mark_read(id, now).await?.ok_or_else(|| NotifyError::NotFound(id.to_string()))?;
        self.publish_read(&n.user_id, change);
        Ok(n)
    }

    /// Marks every unread notification of `user_id` read; returns how many changed.
    pub async fn mark_all_read(&self, user_id: &str) -> Result<usize, NotifyError> {
        check_user_id("user_id", user_id)?;
        let now = self.inner.clock.now();
        let change = self.inner.store.mark_all_read(user_id, now).await?;
        let n = change.ids.len();
        self.publish_read(user_id, change);
        Ok(n)
    }

    fn publish_read(&self, user_id: &str, change: ReadChange) {
        if change.ids.is_empty() {
            return;
        }
        let read_at = change.changed.first().and_then(|n| n.read_at);
        metrics::read(change.ids.len());
        self.inner.events.emit(
            TOPIC_READ,
            user_id,
            Some(user_id),
            serde_json::json!({"ids": change.ids, "read_at": read_at, "unread_count": change.unread_count}),
        );
        for n in &change.changed {
            self.inner.hooks.read(n);
        }
    }

    /// Deletes a notification; returns it as it was.
    pub async fn delete(&self, id: &str) -> Result<Notification, NotifyError> {
        let (n, unread) = self.inner.store.delete(id).await?.ok_or_else(|| NotifyError::NotFound(id.to_string()))?;
        if n.in_feed() {
            self.inner.events.emit(TOPIC_DELETED, &n.user_id, Some(&n.user_id), serde_json::json!({"ids": [n.id], "unread_count": unread}));
        }
        Ok(n)
    }

    /// `user_id`'s preferences (defaults when never set).
    pub async fn preferences(&self, user_id: &str) -> Result<Preferences, NotifyError> {
        check_user_id("user_id", user_id)?;
        let mut found = self.inner.store.preferences(&[user_id.to_string()]).await?;
        found.pop().ok_or_else(|| NotifyError::Unavailable("the notification store answered no preferences".into()))
    }

    /// Replaces `user_id`'s preferences after validating the address, the kinds and the
    /// channel names.
    pub async fn set_preferences(&self, user_id: &str, input: PreferencesInput) -> Result<Preferences, NotifyError> {
        check_user_id("user_id", user_id)?;
        let email = match input.email.map(|e| e.trim().to_string()) {
            Some(e) if e.is_empty() => None,
            Some(e) if e.len() > 254 || !email::valid_address(&e) => {
                return Err(NotifyError::invalid("email", format!("'{e}' is not a valid email address")));
            }
            other => other,
        };
        for (kind, list) in &input.channels {
            if NotificationKind::parse(kind).is_none() {
                return Err(NotifyError::invalid(format!("channels.{kind}"), "unknown notification type (info, success, warning, error)"));
            }
            for (i, c) in list.iter().enumerate() {
                if self.inner.channels.get(c).is_none() {
                    return Err(NotifyError::invalid(
                        format!("channels.{kind}[{i}]"),
                        format!("unknown or disabled channel '{c}' (available: {})", self.inner.channels.names().join(", ")),
                    ));
                }
            }
        }
        let mut muted = input.muted_types;
        muted.sort();
        muted.dedup();
        let prefs = Preferences { user_id: user_id.to_string(), email, channels: input.channels, muted_types: muted };
        self.inner.store.put_preferences(&prefs).await?;
        Ok(prefs)
    }
}
