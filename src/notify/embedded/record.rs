//! The stored form of a notification in the embedded store (postcard via
//! [`crate::store::codec`]; `data` kept as JSON text, times as milliseconds).

use crate::notify::model::{Delivery, DeliveryState, Notification, NotificationKind};
use crate::store::{StoreError, codec};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(v).unwrap_or_default()
}

/// A notification together with its sequence number (the feed's sort key).
#[derive(Debug, Clone)]
pub(crate) struct Record {
    /// Position in the global send order.
    pub seq: u64,
    /// The notification.
    pub n: Notification,
}

impl Record {
    pub(crate) fn encode(&self) -> Result<Vec<u8>, StoreError> {
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

    pub(crate) fn decode(bytes: &[u8]) -> Result<Record, StoreError> {
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
