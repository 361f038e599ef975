//! The embedded notification store: hearth's redb database, written through the
//! group-commit writer (every write is acknowledged once durable; reads run on the
//! blocking pool). `tables.rs` holds the layout and the transactional operations,
//! `record.rs` the stored form of a notification.

pub(crate) mod record;
mod tables;

use super::error::NotifyError;
use super::model::{Delivery, FeedPage, ListQuery, Notification, Preferences};
use super::store::{NewNotification, NotificationStore, OutboxEntry, ReadChange, RenderedEmail};
use crate::store::Store;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// Notifications in redb (the default [`NotificationStore`]).
#[derive(Clone)]
pub struct EmbeddedNotificationStore {
    store: Store,
}

impl EmbeddedNotificationStore {
    /// A store over hearth's database.
    pub fn new(store: Store) -> Self {
        EmbeddedNotificationStore { store }
    }
}

#[async_trait]
impl NotificationStore for EmbeddedNotificationStore {
    async fn insert(&self, items: Vec<NewNotification>) -> Result<Vec<u64>, NotifyError> {
        self.store.write(move |txn| tables::insert(txn, &items)).await
    }

    async fn get(&self, id: &str) -> Result<Option<Notification>, NotifyError> {
        let id = id.to_string();
        Ok(self.store.read(move |txn| tables::get(txn, &id, false)).await?.map(|(n, _)| n))
    }

    async fn get_with_email(&self, id: &str) -> Result<Option<(Notification, Option<RenderedEmail>)>, NotifyError> {
        let id = id.to_string();
        Ok(self.store.read(move |txn| tables::get(txn, &id, true)).await?)
    }

    async fn list(&self, user_id: &str, query: &ListQuery) -> Result<FeedPage, NotifyError> {
        let (user, q) = (user_id.to_string(), query.clone());
        Ok(self.store.read(move |txn| tables::list(txn, &user, &q)).await?)
    }

    async fn unread_count(&self, user_id: &str) -> Result<u64, NotifyError> {
        let user = user_id.to_string();
        Ok(self.store.read(move |txn| tables::unread_count(txn, &user)).await?)
    }

    async fn mark_read(&self, id: &str, now: DateTime<Utc>) -> Result<Option<(Notification, ReadChange)>, NotifyError> {
        let id = id.to_string();
        Ok(self.store.write(move |txn| tables::mark_read(txn, &id, now)).await?)
    }

    async fn mark_all_read(&self, user_id: &str, now: DateTime<Utc>) -> Result<ReadChange, NotifyError> {
        let user = user_id.to_string();
        Ok(self.store.write(move |txn| tables::mark_all_read(txn, &user, now)).await?)
    }

    async fn delete(&self, id: &str) -> Result<Option<(Notification, u64)>, NotifyError> {
        let id = id.to_string();
        Ok(self.store.write(move |txn| tables::delete(txn, &id)).await?)
    }

    async fn record_delivery(&self, id: &str, channel: &str, delivery: Delivery) -> Result<Option<Notification>, NotifyError> {
        let (id, channel) = (id.to_string(), channel.to_string());
        Ok(self.store.write(move |txn| tables::record_delivery(txn, &id, &channel, delivery)).await?)
    }

    async fn preferences(&self, user_ids: &[String]) -> Result<Vec<Preferences>, NotifyError> {
        let users = user_ids.to_vec();
        Ok(self.store.read(move |txn| tables::preferences(txn, &users)).await?)
    }

    async fn put_preferences(&self, prefs: &Preferences) -> Result<(), NotifyError> {
        let p = prefs.clone();
        Ok(self.store.write(move |txn| tables::put_preferences(txn, &p)).await?)
    }

    async fn outbox(&self) -> Result<Vec<OutboxEntry>, NotifyError> {
        Ok(self.store.read(tables::outbox).await?)
    }

    async fn settle_outbox(&self, notification_ids: &[String]) -> Result<(), NotifyError> {
        let ids = notification_ids.to_vec();
        Ok(self.store.write(move |txn| tables::settle_outbox(txn, &ids)).await?)
    }

    async fn delete_expired(&self, unread_before: DateTime<Utc>, read_before: DateTime<Utc>, limit: usize) -> Result<usize, NotifyError> {
        Ok(self.store.write(move |txn| tables::delete_expired(txn, unread_before, read_before, limit)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::TempDb;
    use crate::notify::conformance;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_store_passes_the_conformance_suite() {
        conformance::run(TempDb::on_store(EmbeddedNotificationStore::new)).await;
    }
}
