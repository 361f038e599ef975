//! The versioned value codec for everything hearth stores in redb.
//!
//! A stored value is one format-version byte followed by the postcard encoding of the
//! value. postcard is compact and fast but not self-describing, which has two
//! consequences every stored type must respect:
//! - no `#[serde(skip_serializing_if)]`, `flatten`, `untagged` or anything else that
//!   needs `deserialize_any`;
//! - arbitrary JSON (`serde_json::Value`) is stored as JSON text: annotate such fields
//!   with `#[serde(with = "crate::store::codec::json")]` (or `json_opt` for `Option`).
//! - timestamps of hot records may use [`time`] / [`time_opt`]: integers in redb, RFC 3339
//!   in JSON.
//!
//! Bumping [`FORMAT_VERSION`] is how a future release signals an incompatible layout; a
//! value with an unknown version is reported as corruption rather than misread.

use super::StoreError;
use serde::{Serialize, de::DeserializeOwned};

/// The current on-disk format version of encoded values.
pub const FORMAT_VERSION: u8 = 1;

/// Encodes `value` as `[FORMAT_VERSION] ++ postcard(value)`.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, StoreError> {
    let mut out = vec![FORMAT_VERSION];
    postcard::to_io(value, &mut out).map_err(|e| StoreError::Codec(e.to_string()))?;
    Ok(out)
}

/// Decodes a value written by [`encode`].
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, StoreError> {
    match bytes.split_first() {
        Some((&FORMAT_VERSION, rest)) => postcard::from_bytes(rest).map_err(|e| StoreError::Corrupt(format!("undecodable value: {e}"))),
        Some((v, _)) => Err(StoreError::Corrupt(format!("unknown value format version {v}"))),
        None => Err(StoreError::Corrupt("empty value".into())),
    }
}

/// `#[serde(with = "crate::store::codec::json")]`: a `serde_json::Value` stored as JSON
/// text in binary formats (postcard) and written as a plain JSON value in human-readable
/// ones, so one struct can be both the stored record and the API shape.
pub mod json {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    /// Serialises as a JSON value (human-readable) or JSON text (binary).
    pub fn serialize<S: Serializer>(value: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { value.serialize(s) } else { s.serialize_str(&value.to_string()) }
    }

    /// Parses what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
        if d.is_human_readable() {
            return serde_json::Value::deserialize(d);
        }
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "crate::store::codec::json_opt")]`: as [`json`] for `Option<Value>`.
pub mod json_opt {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    /// Serialises as an optional JSON value (human-readable) or optional JSON text (binary).
    pub fn serialize<S: Serializer>(value: &Option<serde_json::Value>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            _ if s.is_human_readable() => value.serialize(s),
            Some(v) => s.serialize_some(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Parses what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
        if d.is_human_readable() {
            return Option::<serde_json::Value>::deserialize(d);
        }
        match Option::<String>::deserialize(d)? {
            Some(text) => serde_json::from_str(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

/// `#[serde(with = "crate::store::codec::json_map")]`: as [`json`] for a JSON object map.
pub mod json_map {
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    /// Serialises as a JSON object (human-readable) or JSON text (binary).
    pub fn serialize<S: Serializer>(value: &serde_json::Map<String, serde_json::Value>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            return value.serialize(s);
        }
        s.serialize_str(&serde_json::to_string(value).map_err(serde::ser::Error::custom)?)
    }

    /// Parses what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
        if d.is_human_readable() {
            return serde_json::Map::deserialize(d);
        }
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "crate::store::codec::time")]`: a UTC timestamp written as RFC 3339 text
/// in human-readable formats (the API) and as `(seconds, nanoseconds)` integers in binary
/// ones (redb) — exact, compact, and several times cheaper than formatting and parsing
/// text on every stored write of a hot record such as a job.
pub mod time {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de::Error};

    /// Serialises as RFC 3339 (human-readable) or `(secs, nanos)` (binary).
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() { t.serialize(s) } else { (t.timestamp(), t.timestamp_subsec_nanos()).serialize(s) }
    }

    /// Parses what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        if d.is_human_readable() {
            return DateTime::<Utc>::deserialize(d);
        }
        let (secs, nanos) = <(i64, u32)>::deserialize(d)?;
        DateTime::from_timestamp(secs, nanos).ok_or_else(|| D::Error::custom("timestamp out of range"))
    }
}

/// `#[serde(with = "crate::store::codec::time_opt")]`: as [`time`] for `Option<DateTime<Utc>>`.
pub mod time_opt {
    use chrono::{DateTime, Utc};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Serialises as an optional [`super::time`] value.
    pub fn serialize<S: Serializer>(t: &Option<DateTime<Utc>>, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct W<'a>(#[serde(with = "super::time")] &'a DateTime<Utc>);
        t.as_ref().map(W).serialize(s)
    }

    /// Parses what [`serialize`] wrote.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<DateTime<Utc>>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::time")] DateTime<Utc>);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Rec {
        id: String,
        n: u64,
        #[serde(with = "super::json")]
        payload: serde_json::Value,
        #[serde(with = "super::json_opt")]
        result: Option<serde_json::Value>,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Times {
        #[serde(with = "super::time")]
        at: chrono::DateTime<chrono::Utc>,
        #[serde(with = "super::time_opt")]
        maybe: Option<chrono::DateTime<chrono::Utc>>,
        #[serde(with = "super::time_opt")]
        none: Option<chrono::DateTime<chrono::Utc>>,
    }

    #[test]
    fn timestamps_are_exact_integers_in_redb_and_rfc3339_in_json() {
        let at = chrono::DateTime::from_timestamp(1_764_000_000, 123_456_789).unwrap();
        let r = Times { at, maybe: Some(at - chrono::Duration::days(400_000)), none: None };
        let bytes = encode(&r).unwrap();
        assert!(bytes.len() < 24, "compact: {} bytes", bytes.len());
        assert_eq!(decode::<Times>(&bytes).unwrap(), r);
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["at"], "2025-11-24T16:00:00.123456789Z");
        assert_eq!(v["none"], serde_json::Value::Null);
        assert_eq!(serde_json::from_value::<Times>(v).unwrap(), r);
    }

    #[test]
    fn round_trip_with_json_fields() {
        let r = Rec { id: "a".into(), n: 7, payload: serde_json::json!({"x": [1, 2]}), result: None };
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Rec>(&bytes).unwrap(), r);
    }

    #[test]
    fn json_fields_are_plain_values_in_human_readable_formats() {
        let r = Rec { id: "a".into(), n: 1, payload: serde_json::json!({"x": 1}), result: Some(serde_json::json!([2])) };
        let v = serde_json::to_value(&r).unwrap();
        assert_eq!(v["payload"], serde_json::json!({"x": 1}));
        assert_eq!(v["result"], serde_json::json!([2]));
        assert_eq!(serde_json::from_value::<Rec>(v).unwrap(), r);
    }

    #[test]
    fn unknown_version_and_garbage_are_corruption() {
        assert!(matches!(decode::<Rec>(&[99, 1, 2]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode::<Rec>(&[FORMAT_VERSION, 0xff]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode::<Rec>(&[]), Err(StoreError::Corrupt(_))));
    }
}
