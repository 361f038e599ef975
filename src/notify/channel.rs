//! The [`NotificationChannel`] trait and the registry of channels a notification can be
//! routed to.
//!
//! Built in: `in-app` (inline: the feed write plus the event-bus push), `email` and
//! `webhook` (queued: delivered by a job with retries). Push providers and other custom
//! channels implement the trait and are added with `Notifications::register_channel`;
//! they are delivered by the generic `notify.deliver` job.

use super::error::NotifyError;
use super::model::{Notification, Preferences};
use super::store::RenderedEmail;
use async_trait::async_trait;
use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

/// How a channel delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryMode {
    /// Delivered as part of the send itself (the in-app feed).
    Inline,
    /// Delivered by a job after the send is acknowledged; failures retry with backoff up to
    /// `max_attempts`, then the notification records the failure for this channel.
    Queued {
        /// Attempts before giving up.
        max_attempts: u32,
        /// Base of the exponential retry delay, milliseconds (jittered, capped at 1 h).
        retry_base_ms: u64,
    },
}

/// Why one delivery attempt failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (connection refused, timeout, 4xx SMTP reply, 5xx HTTP status).
    #[error("{0}")]
    Retry(String),
    /// Will never succeed (bad address, 5xx SMTP reply, channel misconfigured).
    #[error("{0}")]
    Fatal(String),
}

/// Everything a channel needs to deliver one notification.
pub struct DeliveryInput<'a> {
    /// The notification as stored.
    pub notification: &'a Notification,
    /// The email rendered at send time, for the email channel.
    pub email: Option<&'a RenderedEmail>,
    /// The attempt number, from 1.
    pub attempt: u32,
}

/// A way of reaching a user (seed "Custom Channels: implement NotificationChannel").
#[async_trait]
pub trait NotificationChannel: Send + Sync + 'static {
    /// The name used in `channels` lists and preferences (e.g. `push`).
    fn name(&self) -> &str;

    /// Inline or queued; custom channels are queued.
    fn mode(&self) -> DeliveryMode {
        DeliveryMode::Queued { max_attempts: 5, retry_base_ms: 1000 }
    }

    /// Checks at send time that this channel can reach the user (e.g. the email channel
    /// needs an address); an error fails the send with 400 before anything is stored.
    fn check(&self, _request_user: &Preferences) -> Result<(), NotifyError> {
        Ok(())
    }

    /// Delivers one notification. Called from a job for queued channels (at least once:
    /// implementations should tolerate a repeat after a crash).
    async fn deliver(&self, input: DeliveryInput<'_>) -> Result<(), DeliveryError>;
}

/// The channels known to the service, by name. Cheap to clone; shared.
#[derive(Clone, Default)]
pub struct ChannelRegistry {
    inner: Arc<RwLock<BTreeMap<String, Arc<dyn NotificationChannel>>>>,
}

impl ChannelRegistry {
    /// Adds or replaces a channel.
    pub fn register(&self, channel: Arc<dyn NotificationChannel>) {
        self.inner.write().insert(channel.name().to_string(), channel);
    }

    /// The channel called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<dyn NotificationChannel>> {
        self.inner.read().get(name).cloned()
    }

    /// Names of every registered channel, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.read().keys().cloned().collect()
    }
}

/// The in-app channel: delivery is the durable feed write plus the `notification.created`
/// event, both done by the send itself, so `deliver` has nothing left to do.
pub struct InAppChannel;

#[async_trait]
impl NotificationChannel for InAppChannel {
    fn name(&self) -> &str {
        super::model::IN_APP
    }

    fn mode(&self) -> DeliveryMode {
        DeliveryMode::Inline
    }

    async fn deliver(&self, _input: DeliveryInput<'_>) -> Result<(), DeliveryError> {
        Ok(())
    }
}
