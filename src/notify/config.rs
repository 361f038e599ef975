//! Configuration of notifications (`notification:` in hearth.yaml).

use serde::{Deserialize, Serialize};

/// Settings for notifications (seed "Notification Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationConfig {
    /// Where notifications, read state, preferences and the outbox live: `embedded`
    /// (hearth's database) or `redis` (the cluster's, so every node serves the same feeds).
    pub store: crate::cluster::StoreKind,
    /// Channel settings.
    pub channels: ChannelsConfig,
    /// Persistence and retention.
    pub persistence: PersistenceConfig,
    /// Template settings.
    pub templates: TemplatesConfig,
    /// Maximum message length in bytes.
    pub max_message_bytes: usize,
    /// Maximum title length in bytes.
    pub max_title_bytes: usize,
    /// Most recipients in one batch send.
    pub max_batch: usize,
    /// Channels used when neither the request nor the user's preferences name any.
    pub default_channels: Vec<String>,
}

impl Default for NotificationConfig {
    fn default() -> Self {
        NotificationConfig {
            store: crate::cluster::StoreKind::Embedded,
            channels: ChannelsConfig::default(),
            persistence: PersistenceConfig::default(),
            templates: TemplatesConfig::default(),
            max_message_bytes: 16 * 1024,
            max_title_bytes: 512,
            max_batch: 1000,
            default_channels: vec!["in-app".into()],
        }
    }
}

impl NotificationConfig {
    /// Checks what serde cannot: a known email provider, its key only where it is used,
    /// and no push channel switched on from the file (hearth ships no push provider).
    pub fn validate(&self) -> Result<(), crate::config::error::ConfigError> {
        use crate::config::error::ConfigError;
        let email = &self.channels.email;
        match (email.provider.as_str(), &email.api_key) {
            ("sendgrid", None) if email.smtp_url.is_none() => {
                return Err(ConfigError::invalid(
                    "notification.channels.email.api_key",
                    "provider sendgrid needs its API key (or SENDGRID_API_KEY, or an SMTP_URL)",
                ));
            }
            ("sendgrid", _) => {}
            ("smtp", None) => {}
            ("smtp", Some(_)) => {
                return Err(ConfigError::invalid(
                    "notification.channels.email.api_key",
                    "is used by provider sendgrid only; for smtp put the credentials in smtp_url",
                ));
            }
            (other, _) => {
                return Err(ConfigError::invalid(
                    "notification.channels.email.provider",
                    format!("'{other}' is not supported yet; use smtp (SES, Mailgun: their SMTP relay in SMTP_URL) or sendgrid"),
                ));
            }
        }
        if self.channels.push.enabled {
            return Err(ConfigError::invalid(
                "notification.channels.push.enabled",
                "hearth has no push provider yet; register a NotificationChannel named `push` from Rust (App::builder), or leave push off",
            ));
        }
        Ok(())
    }
}

/// Per-channel settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ChannelsConfig {
    /// In-app feed.
    pub in_app: ToggleConfig,
    /// Email over SMTP.
    pub email: EmailConfig,
    /// Webhook channel.
    pub webhook: WebhookChannelConfig,
    /// Push: a trait only (register a `NotificationChannel` named `push` from Rust). The
    /// seed's section is accepted while `enabled: false`; `true` is refused.
    pub push: PushConfig,
}

/// Push settings (seed shape). hearth ships no push provider: implement
/// `NotificationChannel` with the name `push` and register it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct PushConfig {
    /// Must stay false: hearth has no push provider (a registered `push` channel works
    /// without it).
    pub enabled: bool,
    /// Provider name (the seed's `firebase`); kept while push is off.
    pub provider: Option<String>,
    /// Credentials file; kept while push is off.
    pub credentials: Option<String>,
}

/// A channel that can only be switched on or off.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ToggleConfig {
    /// Whether the channel is available.
    pub enabled: bool,
}

impl Default for ToggleConfig {
    fn default() -> Self {
        ToggleConfig { enabled: true }
    }
}

/// Email channel settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmailConfig {
    /// Whether the channel is available.
    pub enabled: bool,
    /// `smtp://user:pass@host:587` (STARTTLS required), `smtps://` (implicit TLS),
    /// `?tls=opportunistic` (STARTTLS when offered) or `?tls=none` (plain, local relays and
    /// tests only); `?timeout=SECONDS`. Env: `SMTP_URL`. See `notify::email`.
    pub smtp_url: Option<String>,
    /// The From address. Env: `EMAIL_FROM`.
    pub from: String,
    /// `smtp` (use `smtp_url`) or `sendgrid` (SendGrid's SMTP relay with `api_key`).
    pub provider: String,
    /// API key for `provider: sendgrid` (sent as the SMTP password).
    pub api_key: Option<String>,
    /// Attempts per email before the delivery is recorded as failed.
    pub max_attempts: u32,
    /// Base of the exponential retry delay in milliseconds (jittered, capped at 1 hour).
    pub retry_base_ms: u64,
}

impl Default for EmailConfig {
    fn default() -> Self {
        EmailConfig {
            enabled: true,
            smtp_url: None,
            from: "hearth@localhost".into(),
            provider: "smtp".into(),
            api_key: None,
            max_attempts: 5,
            retry_base_ms: 2000,
        }
    }
}

/// Webhook channel settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookChannelConfig {
    /// Whether the channel is available.
    pub enabled: bool,
    /// Where notification webhooks are POSTed.
    pub url: Option<String>,
    /// HMAC-SHA256 secret for the `X-Hearth-Signature` header.
    pub secret: Option<String>,
    /// Attempts per notification before the delivery is recorded as failed.
    pub max_attempts: u32,
    /// Request timeout in seconds.
    pub timeout_seconds: u64,
    /// Base of the exponential retry delay in milliseconds (jittered, capped at 1 hour).
    pub retry_base_ms: u64,
}

impl Default for WebhookChannelConfig {
    fn default() -> Self {
        WebhookChannelConfig { enabled: false, url: None, secret: None, max_attempts: 5, timeout_seconds: 10, retry_base_ms: 2000 }
    }
}

/// Persistence and retention of in-app notifications.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct PersistenceConfig {
    /// Whether notifications are stored (in-app needs it).
    pub enabled: bool,
    /// Retention in seconds.
    pub retention: RetentionConfig,
    /// Seconds between retention sweeps.
    pub sweep_interval_seconds: u64,
}

impl Default for PersistenceConfig {
    fn default() -> Self {
        PersistenceConfig { enabled: true, retention: RetentionConfig::default(), sweep_interval_seconds: 3600 }
    }
}

/// Retention of read and unread notifications, in seconds (seed values).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct RetentionConfig {
    /// Read notifications: 30 days.
    pub read: u64,
    /// Unread notifications: 90 days.
    pub unread: u64,
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig { read: 2_592_000, unread: 7_776_000 }
    }
}

/// Where notification templates live.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct TemplatesConfig {
    /// Directory of `<name>/subject.txt, body.txt, body.html`.
    pub dir: String,
}

impl Default for TemplatesConfig {
    fn default() -> Self {
        TemplatesConfig { dir: "./templates/notifications".into() }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn the_store_is_embedded_unless_named_otherwise_and_unknown_backends_are_refused() {
        use crate::cluster::StoreKind;
        assert_eq!(Config::from_yaml("").unwrap().notification.store, StoreKind::Embedded);
        assert_eq!(Config::from_yaml("notification: {store: embedded}").unwrap().notification.store, StoreKind::Embedded);
        let c = Config::from_yaml("notification: {store: redis}\nredis: {url: 'redis://127.0.0.1:6399'}").unwrap();
        assert_eq!(c.notification.store, StoreKind::Redis);
        let err = Config::from_yaml("notification: {store: redis}").unwrap_err().to_string();
        assert!(err.contains("notification.store") && err.contains("REDIS_URL"), "{err}");
        let err = Config::from_yaml("notification: {store: kafka}").unwrap_err().to_string();
        assert!(err.contains("notification.store") && err.contains("embedded"), "{err}");
    }
}
