//! Sending: validation, routing through preferences, email rendering, the durable write,
//! and the hand-off to in-app push and queued channels.

use super::channel::DeliveryMode;
use super::error::NotifyError;
use super::model::{BatchSendRequest, Delivery, DeliveryState, Notification, NotificationKind, Preferences, SendOutcome, SendRequest};
use super::store::{NewNotification, OutboxEntry, RenderedEmail};
use super::{Notifications, TOPIC_CREATED, metrics};
use std::collections::{BTreeMap, HashSet};

/// Largest action URL, label and user id accepted.
const MAX_URL: usize = 2048;
const MAX_LABEL: usize = 256;
/// Largest user id accepted (bytes).
pub(crate) const MAX_USER_ID: usize = 256;

/// A notification ready to be stored.
struct Prepared {
    n: Notification,
    email: Option<RenderedEmail>,
    queued: Vec<String>,
}

/// Checks a user id: 1 to 256 bytes, no control characters.
pub fn check_user_id(field: &str, user_id: &str) -> Result<(), NotifyError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID || user_id.chars().any(char::is_control) {
        return Err(NotifyError::invalid(field, format!("must be 1 to {MAX_USER_ID} bytes without control characters")));
    }
    Ok(())
}

/// The channels a notification goes to: the request's (or the user's preference for this
/// kind, else the defaults), narrowed to the user's preference for this kind when one is
/// set, and nothing at all when the kind is muted. Order kept, duplicates dropped.
pub(crate) fn route(requested: &[String], kind: NotificationKind, prefs: &Preferences, defaults: &[String]) -> Vec<String> {
    if prefs.muted_types.contains(&kind) {
        return Vec::new();
    }
    let preferred = prefs.channels.get(kind.as_str());
    let base: &[String] = if !requested.is_empty() {
        requested
    } else if let Some(p) = preferred {
        p
    } else {
        defaults
    };
    let mut seen = HashSet::new();
    base.iter().filter(|c| preferred.is_none_or(|p| p.contains(c))).filter(|c| seen.insert(c.as_str())).cloned().collect()
}

impl Notifications {
    /// Sends one notification and returns its id once it is durable. Queued channels
    /// (email, webhook) are delivered afterwards by jobs; see [`Notifications::get`] for
    /// their state.
    pub async fn send(&self, req: SendRequest) -> Result<String, NotifyError> {
        self.send_detailed(req).await.map(|o| o.notification_id)
    }

    /// As [`Notifications::send`], also returning the channels chosen by routing.
    pub async fn send_detailed(&self, req: SendRequest) -> Result<SendOutcome, NotifyError> {
        self.check_common(&req.title, &req.message, &req.channels, &req.action_url, &req.action_label, &req.data)?;
        check_user_id("user_id", &req.user_id)?;
        let prefs = self.preferences(&req.user_id).await?;
        let p = self.prepare(&req, &prefs)?;
        let mut out = self.commit(vec![p]).await?;
        Ok(out.remove(0))
    }

    /// Sends one notification to each of `user_ids`, atomically: either every recipient
    /// is validated and stored in one transaction, or none is. Outcomes follow `user_ids`.
    pub async fn send_batch(&self, req: BatchSendRequest) -> Result<Vec<SendOutcome>, NotifyError> {
        self.check_common(&req.title, &req.message, &req.channels, &req.action_url, &req.action_label, &req.data)?;
        let max = self.inner.config.max_batch;
        if req.user_ids.is_empty() || req.user_ids.len() > max {
            return Err(NotifyError::invalid("user_ids", format!("must list 1 to {max} users")));
        }
        let mut seen = HashSet::new();
        for (i, u) in req.user_ids.iter().enumerate() {
            check_user_id(&format!("user_ids[{i}]"), u)?;
            if !seen.insert(u.as_str()) {
                return Err(NotifyError::invalid(format!("user_ids[{i}]"), format!("duplicate user '{u}'")));
            }
        }
        let all_prefs = self.inner.store.preferences(&req.user_ids).await?;
        let mut prepared = Vec::with_capacity(all_prefs.len());
        for (i, prefs) in all_prefs.iter().enumerate() {
            let single = req.for_user(&prefs.user_id);
            let p = self.prepare(&single, prefs).map_err(|e| match e {
                NotifyError::Invalid { field, message } if field == "channels" => {
                    NotifyError::Invalid { field: format!("user_ids[{i}]"), message }
                }
                other => other,
            })?;
            prepared.push(p);
        }
        self.commit(prepared).await
    }

    /// Field checks shared by single and batch sends.
    fn check_common(
        &self,
        title: &str,
        message: &str,
        channels: &[String],
        action_url: &Option<String>,
        action_label: &Option<String>,
        data: &Option<serde_json::Value>,
    ) -> Result<(), NotifyError> {
        let cfg = &self.inner.config;
        if title.trim().is_empty() {
            return Err(NotifyError::invalid("title", "must not be empty"));
        }
        if title.len() > cfg.max_title_bytes {
            return Err(NotifyError::invalid("title", format!("is {} bytes, more than the limit of {}", title.len(), cfg.max_title_bytes)));
        }
        if message.len() > cfg.max_message_bytes {
            return Err(NotifyError::invalid(
                "message",
                format!("is {} bytes, more than the limit of {} (notification.max_message_bytes)", message.len(), cfg.max_message_bytes),
            ));
        }
        for (i, c) in channels.iter().enumerate() {
            if self.inner.channels.get(c).is_none() {
                return Err(NotifyError::invalid(
                    format!("channels[{i}]"),
                    format!("unknown or disabled channel '{c}' (available: {})", self.inner.channels.names().join(", ")),
                ));
            }
        }
        if let Some(u) = action_url
            && (u.is_empty() || u.len() > MAX_URL || u.chars().any(char::is_control))
        {
            return Err(NotifyError::invalid("action_url", format!("must be 1 to {MAX_URL} bytes without control characters")));
        }
        if let Some(u) = action_url {
            super::links::check_link("action_url", u)?;
        }
        if let Some(l) = action_label
            && l.len() > MAX_LABEL
        {
            return Err(NotifyError::invalid("action_label", format!("must be at most {MAX_LABEL} bytes")));
        }
        match data {
            None | Some(serde_json::Value::Null) | Some(serde_json::Value::Object(_)) => {}
            Some(_) => return Err(NotifyError::invalid("data", "must be a JSON object")),
        }
        if let Some(d) = data {
            super::links::check_data(d)?;
            let size = d.to_string().len();
            let limit = cfg.max_message_bytes.saturating_mul(4);
            if size > limit {
                return Err(NotifyError::invalid("data", format!("is {size} bytes of JSON, more than the limit of {limit}")));
            }
        }
        Ok(())
    }

    /// Routes, checks channels against the user, renders the email: everything that can
    /// fail, before anything is written.
    fn prepare(&self, req: &SendRequest, prefs: &Preferences) -> Result<Prepared, NotifyError> {
        let inner = &self.inner;
        let defaults: Vec<String> = inner.config.default_channels.iter().filter(|c| inner.channels.get(c).is_some()).cloned().collect();
        let channels = route(&req.channels, req.kind, prefs, &defaults);
        let now = inner.clock.now();
        let mut deliveries = BTreeMap::new();
        let mut queued = Vec::new();
        for c in &channels {
            let ch = inner.channels.get(c).ok_or_else(|| NotifyError::invalid("channels", format!("unknown or disabled channel '{c}'")))?;
            ch.check(prefs)?;
            let (state, attempts) = match ch.mode() {
                DeliveryMode::Inline => (DeliveryState::Delivered, 1),
                DeliveryMode::Queued { .. } => {
                    queued.push(c.clone());
                    (DeliveryState::Pending, 0)
                }
            };
            deliveries.insert(c.clone(), Delivery { state, attempts, error: None, updated_at: now });
        }
        let wants_email = channels.iter().any(|c| c == super::model::EMAIL);
        let email = if wants_email || req.template.is_some() {
            let parts = inner.templates.render(req)?;
            prefs.email.clone().filter(|_| wants_email).map(|to| RenderedEmail {
                to,
                subject: parts.subject,
                text: parts.text,
                html: parts.html,
            })
        } else {
            None
        };
        let n = Notification {
            id: uuid::Uuid::now_v7().to_string(),
            kind: req.kind,
            title: req.title.clone(),
            message: req.message.clone(),
            user_id: req.user_id.clone(),
            channels,
            action_url: req.action_url.clone(),
            action_label: req.action_label.clone(),
            template: req.template.clone(),
            data: req.data.clone().filter(|d| !d.is_null()),
            read: false,
            read_at: None,
            created_at: now,
            deliveries,
        };
        Ok(Prepared { n, email, queued })
    }

    /// Stores the notifications in one transaction, then pushes, enqueues and runs hooks.
    async fn commit(&self, prepared: Vec<Prepared>) -> Result<Vec<SendOutcome>, NotifyError> {
        let inner = &self.inner;
        let persist = inner.config.persistence.enabled;
        // Without persistence, a notification that only goes in-app is pushed, not kept.
        let (to_store, transient): (Vec<Prepared>, Vec<Prepared>) = prepared.into_iter().partition(|p| persist || !p.queued.is_empty());
        let counts = if to_store.is_empty() {
            Vec::new()
        } else {
            let items = to_store
                .iter()
                .map(|p| NewNotification { notification: p.n.clone(), email: p.email.clone(), outbox: p.queued.clone() })
                .collect();
            inner.store.insert(items).await?
        };
        let mut outcomes = Vec::with_capacity(to_store.len() + transient.len());
        let mut outbox = Vec::new();
        for (p, unread) in to_store.iter().zip(counts.iter().copied()) {
            self.after_store(&p.n, Some(unread));
            if !p.queued.is_empty() {
                outbox.push(OutboxEntry { notification_id: p.n.id.clone(), channels: p.queued.clone() });
            }
            outcomes.push(SendOutcome { notification_id: p.n.id.clone(), channels: p.n.channels.clone() });
        }
        for p in &transient {
            self.after_store(&p.n, None);
            outcomes.push(SendOutcome { notification_id: p.n.id.clone(), channels: p.n.channels.clone() });
        }
        if !outbox.is_empty() {
            self.enqueue_deliveries(outbox).await;
        }
        Ok(outcomes)
    }

    /// Publishes, counts and runs hooks for one accepted notification.
    fn after_store(&self, n: &Notification, unread: Option<u64>) {
        let inner = &self.inner;
        metrics::sent(n);
        if n.in_feed() {
            inner.events.emit(TOPIC_CREATED, &n.id, Some(&n.user_id), serde_json::json!({"notification": n, "unread_count": unread}));
        }
        inner.hooks.send(n);
        for (c, d) in &n.deliveries {
            if d.state == DeliveryState::Delivered {
                metrics::delivered(c, 0.0);
                inner.hooks.deliver(n, c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(channels: &[(&str, &[&str])], muted: &[NotificationKind]) -> Preferences {
        Preferences {
            user_id: "u".into(),
            email: None,
            channels: channels.iter().map(|(k, v)| (k.to_string(), v.iter().map(|s| s.to_string()).collect())).collect(),
            muted_types: muted.to_vec(),
        }
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn routing_follows_request_preferences_and_defaults() {
        let none = prefs(&[], &[]);
        let defaults = s(&["in-app"]);
        assert_eq!(route(&[], NotificationKind::Info, &none, &defaults), s(&["in-app"]));
        assert_eq!(route(&s(&["email", "in-app", "email"]), NotificationKind::Info, &none, &defaults), s(&["email", "in-app"]));
        let p = prefs(&[("error", &["in-app", "email"]), ("info", &["in-app"])], &[NotificationKind::Warning]);
        assert_eq!(route(&[], NotificationKind::Error, &p, &defaults), s(&["in-app", "email"]));
        assert_eq!(route(&s(&["email", "webhook"]), NotificationKind::Info, &p, &defaults), Vec::<String>::new());
        assert_eq!(route(&s(&["email", "in-app"]), NotificationKind::Info, &p, &defaults), s(&["in-app"]));
        assert_eq!(route(&s(&["in-app"]), NotificationKind::Warning, &p, &defaults), Vec::<String>::new());
        assert_eq!(route(&s(&["webhook"]), NotificationKind::Success, &p, &defaults), s(&["webhook"]));
    }
}
