//! Values, hits and statistics of the cache.

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::Serialize;

use std::sync::Arc;

/// A cached value: opaque bytes plus the content type they were stored with.
///
/// A handle to one shared allocation: cloning it (as every cache hit does) bumps one
/// reference count and never copies the payload. A value handed out by the cache may
/// also carry its entry's expiry and tags (see [`CacheValue::stored`]); equality only
/// looks at the bytes and the content type.
#[derive(Clone)]
pub struct CacheValue(Arc<Payload>);

struct Payload {
    data: Bytes,
    content_type: Option<Arc<str>>,
    stored: Option<Stored>,
}

/// What the cache knows about the entry a value was stored as.
struct Stored {
    /// When the entry expires, milliseconds since the Unix epoch.
    expires_ms: i64,
    tags: Option<Arc<[String]>>,
}

impl CacheValue {
    /// A value without a content type.
    pub fn new(data: impl Into<Bytes>) -> Self {
        CacheValue(Arc::new(Payload { data: data.into(), content_type: None, stored: None }))
    }

    /// A value with a content type.
    pub fn with_content_type(data: impl Into<Bytes>, content_type: &str) -> Self {
        CacheValue(Arc::new(Payload { data: data.into(), content_type: Some(Arc::from(content_type)), stored: None }))
    }

    /// `v` serialized as JSON, with content type `application/json`.
    pub fn json<T: Serialize + ?Sized>(v: &T) -> Result<Self, super::CacheError> {
        let data = serde_json::to_vec(v).map_err(|e| super::CacheError::invalid("value", format!("cannot serialize: {e}")))?;
        Ok(CacheValue::with_content_type(data, "application/json"))
    }

    /// Decodes the payload as JSON.
    pub fn to_json<T: serde::de::DeserializeOwned>(&self) -> Result<T, super::CacheError> {
        serde_json::from_slice(&self.0.data).map_err(|e| super::CacheError::Decode(e.to_string()))
    }

    /// The payload.
    pub fn data(&self) -> &Bytes {
        &self.0.data
    }

    /// Length of the payload in bytes.
    pub fn len(&self) -> usize {
        self.0.data.len()
    }

    /// Whether the payload is empty.
    pub fn is_empty(&self) -> bool {
        self.0.data.is_empty()
    }

    /// The content type, if any.
    pub fn content_type(&self) -> Option<&str> {
        self.0.content_type.as_deref()
    }

    /// A copy (sharing the bytes) that records the entry it is stored as: expiry and tags.
    pub(crate) fn stored(&self, expires_ms: i64, tags: Option<Arc<[String]>>) -> CacheValue {
        CacheValue(Arc::new(Payload {
            data: self.0.data.clone(),
            content_type: self.0.content_type.clone(),
            stored: Some(Stored { expires_ms, tags }),
        }))
    }

    /// Expiry of the entry this value was stored as (None for a value not from a tier).
    pub(crate) fn entry_expires_ms(&self) -> Option<i64> {
        self.0.stored.as_ref().map(|s| s.expires_ms)
    }

    /// Tags of the entry this value was stored as.
    pub(crate) fn tags(&self) -> &[String] {
        self.0.stored.as_ref().and_then(|s| s.tags.as_deref()).unwrap_or(&[])
    }
}

impl PartialEq for CacheValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.data == other.0.data && self.0.content_type == other.0.content_type
    }
}

impl Eq for CacheValue {}

impl std::fmt::Debug for CacheValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheValue").field("data", &self.0.data).field("content_type", &self.0.content_type).finish()
    }
}

/// The tier that answered a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Tier {
    /// In memory.
    L1,
    /// On disk (or the configured L2 backend).
    L2,
}

impl Tier {
    /// `"l1"` or `"l2"` (metric label, header value).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::L1 => "l1",
            Tier::L2 => "l2",
        }
    }
}

/// A successful lookup with its metadata.
#[derive(Debug, Clone)]
pub struct Hit {
    /// The value.
    pub value: CacheValue,
    /// Which tier answered.
    pub tier: Tier,
    /// When the entry expires (its TTL; an L1 copy may be dropped earlier, after `cache.l1.ttl`).
    pub expires_at: DateTime<Utc>,
}

/// What `set` stored.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SetReceipt {
    /// The key as given (without the L2 prefix).
    pub key: String,
    /// Size of the value in bytes (before compression).
    pub bytes: u64,
    /// TTL applied, seconds (fractions when set from Rust with sub-second TTLs).
    pub ttl: f64,
    /// When the entry expires.
    pub expires_at: DateTime<Utc>,
    /// Tags attached to the entry.
    pub tags: Vec<String>,
}

/// Counters and sizes of one tier.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct TierStats {
    /// Whether the tier is enabled.
    pub enabled: bool,
    /// Lookups this tier answered.
    pub hits: u64,
    /// Lookups this tier could not answer.
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 when there were no lookups.
    pub hit_rate: f64,
    /// Entries currently held (L2: including expired ones not yet swept).
    pub entries: u64,
    /// Bytes currently held (L1: weighted size; L2: stored key + record bytes).
    pub bytes: u64,
    /// Configured capacity in bytes.
    pub capacity_bytes: u64,
    /// Entries removed to respect the capacity since start.
    pub evictions: u64,
}

/// Statistics of the whole cache (seed `get_stats`): overall hits, misses and hit rate,
/// plus the same per tier with entries, bytes and evictions.
#[derive(Debug, Clone, Default, Serialize, PartialEq, utoipa::ToSchema)]
pub struct CacheStats {
    /// Lookups answered by either tier.
    pub hits: u64,
    /// Lookups answered by neither tier.
    pub misses: u64,
    /// `hits / (hits + misses)`, 0 when there were no lookups.
    pub hit_rate: f64,
    /// Entries in the authoritative tier (L2 when enabled, else L1).
    pub entries: u64,
    /// Bytes in the authoritative tier.
    pub bytes: u64,
    /// Evictions of both tiers.
    pub evictions: u64,
    /// Values stored with `set` / `get_or_set` since start.
    pub sets: u64,
    /// Entries removed with `delete`, `invalidate` or `delete_pattern` since start.
    pub deletes: u64,
    /// Expired L2 entries removed by the sweeper since start.
    pub expired: u64,
    /// The in-memory tier.
    pub l1: TierStats,
    /// The on-disk tier.
    pub l2: TierStats,
}

/// `hits / (hits + misses)`, 0 for no lookups.
pub(crate) fn hit_rate(hits: u64, misses: u64) -> f64 {
    let total = hits + misses;
    if total == 0 { 0.0 } else { hits as f64 / total as f64 }
}
