//! The versioned value codec for everything hearth stores in redb.
//!
//! A stored value is one format-version byte followed by the postcard encoding of the
//! value. postcard is compact and fast but not self-describing, which has two
//! consequences every stored type must respect:
//! - no `#[serde(skip_serializing_if)]`, `flatten`, `untagged` or anything else that
//!   needs `deserialize_any`;
//! - arbitrary JSON (`serde_json::Value`) is stored as JSON text: annotate such fields
//!   with `#[serde(with = "crate::store::codec::json")]` (or `json_opt` for `Option`).
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

/// `#[serde(with = "crate::store::codec::json")]`: stores a `serde_json::Value` as JSON text.
pub mod json {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serialises the value as a JSON string.
    pub fn serialize<S: Serializer>(value: &serde_json::Value, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&value.to_string())
    }

    /// Parses the JSON string back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Value, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
    }
}

/// `#[serde(with = "crate::store::codec::json_opt")]`: as [`json`] for `Option<Value>`.
pub mod json_opt {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serialises `Some(value)` as its JSON text and `None` as none.
    pub fn serialize<S: Serializer>(value: &Option<serde_json::Value>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            Some(v) => s.serialize_some(&v.to_string()),
            None => s.serialize_none(),
        }
    }

    /// Parses the optional JSON string back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<serde_json::Value>, D::Error> {
        match Option::<String>::deserialize(d)? {
            Some(text) => serde_json::from_str(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}

/// `#[serde(with = "crate::store::codec::json_map")]`: stores a JSON object map as JSON text.
pub mod json_map {
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    /// Serialises the map as a JSON string.
    pub fn serialize<S: Serializer>(value: &serde_json::Map<String, serde_json::Value>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&serde_json::to_string(value).map_err(serde::ser::Error::custom)?)
    }

    /// Parses the JSON string back.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(D::Error::custom)
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

    #[test]
    fn round_trip_with_json_fields() {
        let r = Rec { id: "a".into(), n: 7, payload: serde_json::json!({"x": [1, 2]}), result: None };
        let bytes = encode(&r).unwrap();
        assert_eq!(bytes[0], FORMAT_VERSION);
        assert_eq!(decode::<Rec>(&bytes).unwrap(), r);
    }

    #[test]
    fn unknown_version_and_garbage_are_corruption() {
        assert!(matches!(decode::<Rec>(&[99, 1, 2]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode::<Rec>(&[FORMAT_VERSION, 0xff]), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode::<Rec>(&[]), Err(StoreError::Corrupt(_))));
    }
}
