//! The public data types of notifications: what callers send, what the feed returns, and a
//! user's preferences. These are also the JSON shapes of the REST API.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// The built-in in-app channel (persisted feed pushed over WebSocket).
pub const IN_APP: &str = "in-app";
/// The built-in email channel (SMTP, sent by a job).
pub const EMAIL: &str = "email";
/// The built-in webhook channel (signed POST, sent by a job).
pub const WEBHOOK: &str = "webhook";

/// The kind (`type` in JSON) of a notification; decides its styling in clients and its
/// routing through user preferences.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum NotificationKind {
    /// Neutral information.
    Info,
    /// Something finished well.
    Success,
    /// Attention needed.
    Warning,
    /// Something failed.
    Error,
}

impl NotificationKind {
    /// Every kind, in declaration order.
    pub const ALL: [NotificationKind; 4] =
        [NotificationKind::Info, NotificationKind::Success, NotificationKind::Warning, NotificationKind::Error];

    /// The JSON name (`info`, `success`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            NotificationKind::Info => "info",
            NotificationKind::Success => "success",
            NotificationKind::Warning => "warning",
            NotificationKind::Error => "error",
        }
    }

    /// Parses a JSON name.
    pub fn parse(s: &str) -> Option<NotificationKind> {
        NotificationKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// What to send. `channels` empty means "route by the user's preferences for this kind,
/// else the configured default channels".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    /// The kind of notification.
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// Short headline; required, non-blank.
    pub title: String,
    /// Body text (limit `notification.max_message_bytes`).
    #[serde(default)]
    pub message: String,
    /// The recipient.
    pub user_id: String,
    /// Channels to use (`in-app`, `email`, `webhook` or a registered custom channel).
    #[serde(default)]
    pub channels: Vec<String>,
    /// Link the notification points to.
    #[serde(default)]
    pub action_url: Option<String>,
    /// Label of the link.
    #[serde(default)]
    pub action_label: Option<String>,
    /// Name of an email template under `templates/notifications/<name>/`.
    #[serde(default)]
    pub template: Option<String>,
    /// Variables for the template (a JSON object); also kept on the notification.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

impl SendRequest {
    /// A request with the required fields; channels, action and template left unset.
    pub fn new(kind: NotificationKind, title: impl Into<String>, message: impl Into<String>, user_id: impl Into<String>) -> Self {
        SendRequest {
            kind,
            title: title.into(),
            message: message.into(),
            user_id: user_id.into(),
            channels: Vec::new(),
            action_url: None,
            action_label: None,
            template: None,
            data: None,
        }
    }

    /// Sets the channels explicitly.
    pub fn channels<I, S>(mut self, channels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.channels = channels.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the action link and its label.
    pub fn action(mut self, url: impl Into<String>, label: impl Into<String>) -> Self {
        self.action_url = Some(url.into());
        self.action_label = Some(label.into());
        self
    }

    /// Uses an email template rendered with `data`.
    pub fn template(mut self, name: impl Into<String>, data: serde_json::Value) -> Self {
        self.template = Some(name.into());
        self.data = Some(data);
        self
    }
}

/// One notification sent to many users: the fields of [`SendRequest`] with `user_ids`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchSendRequest {
    /// The kind of notification.
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// Short headline; required, non-blank.
    pub title: String,
    /// Body text.
    #[serde(default)]
    pub message: String,
    /// The recipients (1 to `notification.max_batch`, no duplicates).
    pub user_ids: Vec<String>,
    /// Channels to use; empty routes by each user's preferences.
    #[serde(default)]
    pub channels: Vec<String>,
    /// Link the notification points to.
    #[serde(default)]
    pub action_url: Option<String>,
    /// Label of the link.
    #[serde(default)]
    pub action_label: Option<String>,
    /// Email template name.
    #[serde(default)]
    pub template: Option<String>,
    /// Template variables.
    #[serde(default)]
    pub data: Option<serde_json::Value>,
}

impl BatchSendRequest {
    /// The single-user request for `user_id`.
    pub fn for_user(&self, user_id: &str) -> SendRequest {
        SendRequest {
            kind: self.kind,
            title: self.title.clone(),
            message: self.message.clone(),
            user_id: user_id.to_string(),
            channels: self.channels.clone(),
            action_url: self.action_url.clone(),
            action_label: self.action_label.clone(),
            template: self.template.clone(),
            data: self.data.clone(),
        }
    }
}

/// Where one channel's delivery of a notification stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum DeliveryState {
    /// Queued or being retried.
    Pending,
    /// Handed to the channel successfully.
    Delivered,
    /// Given up after the last attempt (or a permanent error); `error` says why.
    Failed,
}

/// Delivery state of one channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Delivery {
    /// Current state.
    pub state: DeliveryState,
    /// Attempts made so far.
    pub attempts: u32,
    /// The last error, if any (kept after a later success for diagnosis only when failed).
    pub error: Option<String>,
    /// When the state last changed.
    pub updated_at: DateTime<Utc>,
}

/// A notification as stored and returned by the API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// Unique id (UUID v7).
    pub id: String,
    /// The kind.
    #[serde(rename = "type")]
    pub kind: NotificationKind,
    /// Headline.
    pub title: String,
    /// Body text.
    pub message: String,
    /// Recipient.
    pub user_id: String,
    /// Channels it was routed to (after preferences); empty when the kind is muted.
    pub channels: Vec<String>,
    /// Action link.
    pub action_url: Option<String>,
    /// Action label.
    pub action_label: Option<String>,
    /// Template used for email, if any.
    pub template: Option<String>,
    /// Template variables / application data.
    pub data: Option<serde_json::Value>,
    /// True once read.
    pub read: bool,
    /// When it was read.
    pub read_at: Option<DateTime<Utc>>,
    /// When it was sent.
    pub created_at: DateTime<Utc>,
    /// Delivery state per channel.
    pub deliveries: BTreeMap<String, Delivery>,
}

impl Notification {
    /// True when the in-app feed shows it.
    pub fn in_feed(&self) -> bool {
        self.channels.iter().any(|c| c == IN_APP)
    }
}

/// A user's contact address and routing preferences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
pub struct Preferences {
    /// The user.
    pub user_id: String,
    /// Email address for the email channel.
    pub email: Option<String>,
    /// Channels to use per kind (`{"error": ["in-app", "email"]}`); a kind listed here only
    /// ever goes to these channels, even when a sender asks for more.
    pub channels: BTreeMap<String, Vec<String>>,
    /// Kinds the user does not want at all.
    pub muted_types: Vec<NotificationKind>,
}

/// Body of `PUT /api/notifications/preferences/{user_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct PreferencesInput {
    /// Email address (validated).
    #[serde(default)]
    pub email: Option<String>,
    /// Channels per kind.
    #[serde(default)]
    pub channels: BTreeMap<String, Vec<String>>,
    /// Muted kinds.
    #[serde(default)]
    pub muted_types: Vec<NotificationKind>,
}

/// The outcome of a send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SendOutcome {
    /// The new notification's id.
    pub notification_id: String,
    /// Channels it was routed to.
    pub channels: Vec<String>,
}

/// Options of a feed listing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ListQuery {
    /// Only unread notifications.
    pub unread_only: bool,
    /// Page size.
    pub limit: usize,
    /// Continue after this cursor (from the previous page).
    pub cursor: Option<u64>,
}

/// One page of a user's feed, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// The notifications.
    pub items: Vec<Notification>,
    /// Cursor of the next page, when there may be one.
    pub next_cursor: Option<u64>,
}
