//! Notifications (seed "2. Notification Module", issue #5): a persisted in-app feed pushed
//! over WebSocket, email over SMTP, a signed webhook, templates and user preferences.
//!
//! - **Send** ([`Notifications::send`]) validates, routes through the user's preferences
//!   (`send.rs`), renders the email at once (so a bad template is a 400, `template.rs`),
//!   and stores the notification durably before answering. The in-app channel is then
//!   delivered by publishing `notification.created` (with `user_id`) on the event bus,
//!   which every WebSocket of that user receives.
//! - **Queued channels** (email, webhook, custom) are delivered by jobs (`delivery.rs`):
//!   the API never waits for SMTP. The notification and an outbox entry are written in one
//!   transaction; the jobs are then enqueued with deterministic ids, and the outbox is
//!   replayed at start, so a crash between the two never loses a delivery. Each channel's
//!   state is `pending | delivered | failed` with the last error.
//! - **Links** (`links.rs`): `action_url`, link-like `data` keys and every value a
//!   template renders into an HTML link must be `http`, `https`, `mailto` or relative.
//! - **Feed** operations (`feed.rs`): list newest first with a cursor, unread count, read,
//!   read-all, delete; read-state changes are published as `notification.read`.
//! - **Retention** (`retention.rs`): read notifications go after `retention.read` seconds,
//!   unread after `retention.unread`, measured on the service's clock.
//! - **Extensibility**: [`NotificationChannel`] for custom channels (push),
//!   [`NotifyHooks`] for `on_send`, `on_deliver`, `on_read`.

pub mod channel;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
mod delivery;
pub mod email;
pub mod embedded;
pub mod error;
mod feed;
pub mod hooks;
pub mod links;
pub mod metrics;
pub mod model;
pub mod redis;
mod retention;
mod send;
pub mod store;
pub mod template;
pub mod webhook;

pub use channel::{DeliveryError, DeliveryInput, DeliveryMode, NotificationChannel};
pub use embedded::EmbeddedNotificationStore;
pub use error::NotifyError;
pub use hooks::NotifyHooks;
pub use model::{
    BatchSendRequest, Delivery, DeliveryState, FeedPage, ListQuery, Notification, NotificationKind, Preferences, PreferencesInput,
    SendOutcome, SendRequest,
};
pub(crate) use send::MAX_USER_ID;
pub use send::check_user_id;
pub use store::{NotificationStore, RenderedEmail};

use crate::{clock::SharedClock, events::EventBus, jobs::JobQueue, store::Store};
use channel::{ChannelRegistry, InAppChannel};
use config::NotificationConfig;
use hooks::HookSet;
use std::path::Path;
use std::sync::Arc;
use template::Templates;

/// Event topic of a new in-app notification; `data` is `{notification, unread_count}`.
pub const TOPIC_CREATED: &str = "notification.created";
/// Event topic of a read-state change; `data` is `{ids, read_at, unread_count}`.
pub const TOPIC_READ: &str = "notification.read";
/// Event topic of a deletion; `data` is `{ids, unread_count}`.
pub const TOPIC_DELETED: &str = "notification.deleted";
/// Event topic of a channel reaching a final delivery state; `data` is
/// `{id, channel, delivery}`.
pub const TOPIC_DELIVERY: &str = "notification.delivery";

pub(crate) struct Inner {
    store: Arc<dyn NotificationStore>,
    events: EventBus,
    clock: SharedClock,
    jobs: JobQueue,
    config: NotificationConfig,
    channels: ChannelRegistry,
    hooks: HookSet,
    templates: Templates,
}

/// The notification service. Cheap to clone; every clone is the same service.
#[derive(Clone)]
pub struct Notifications {
    inner: Arc<Inner>,
}

impl Notifications {
    /// Builds the service on the embedded store (hearth's redb database): registers the
    /// enabled built-in channels and the delivery job handlers on `jobs` (which must not be
    /// started yet for the handlers to be used).
    pub fn new(store: Store, events: EventBus, clock: SharedClock, jobs: JobQueue, config: NotificationConfig) -> Self {
        Self::with_store(Arc::new(EmbeddedNotificationStore::new(store)), events, clock, jobs, config)
    }

    /// As [`Notifications::new`], on any [`NotificationStore`] (e.g. one shared by several
    /// nodes).
    pub fn with_store(
        store: Arc<dyn NotificationStore>,
        events: EventBus,
        clock: SharedClock,
        jobs: JobQueue,
        config: NotificationConfig,
    ) -> Self {
        metrics::describe();
        let channels = ChannelRegistry::default();
        let c = &config.channels;
        if c.in_app.enabled {
            channels.register(Arc::new(InAppChannel));
        }
        if c.email.enabled {
            channels.register(Arc::new(email::EmailChannel::new(&c.email)));
        }
        if c.webhook.enabled {
            channels.register(Arc::new(webhook::WebhookChannel::new(&c.webhook)));
        }
        let templates = Templates::new(Path::new(&config.templates.dir));
        let inner = Arc::new(Inner { store, events, clock, jobs, config, channels, hooks: HookSet::default(), templates });
        let svc = Notifications { inner };
        delivery::register_handlers(&svc);
        svc
    }

    /// Starts the retention sweeper and replays the delivery outbox.
    pub fn start(&self, bg: &crate::runtime::Background) {
        retention::start(self, bg);
        delivery::start(self, bg);
    }

    /// Adds (or replaces) a channel, e.g. a push provider named `push`. It becomes usable
    /// in `channels` lists and preferences at once; deliveries run on the `notify.deliver`
    /// job.
    pub fn register_channel(&self, channel: Arc<dyn NotificationChannel>) {
        self.inner.channels.register(channel);
    }

    /// Names of the usable channels.
    pub fn channel_names(&self) -> Vec<String> {
        self.inner.channels.names()
    }

    /// Registers `on_send` / `on_deliver` / `on_read` hooks.
    pub fn register_hooks(&self, hooks: Arc<dyn NotifyHooks>) {
        self.inner.hooks.register(hooks);
    }

    /// The module's configuration.
    pub fn config(&self) -> &NotificationConfig {
        &self.inner.config
    }
}
