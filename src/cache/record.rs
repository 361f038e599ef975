//! On-disk layout of one L2 entry: `[u32 LE header length][header][payload]`.
//!
//! The header (expiry, compression flag, content type, tags) is encoded with the store's
//! versioned codec; the payload is the raw value or its zstd frame. Keeping the payload
//! outside the header lets a lookup read expiry and tags without touching (or copying)
//! the value, and stores values byte for byte.

use super::backend::BackendEntry;
use super::{CacheError, CacheValue};
use crate::store::{StoreError, codec};
use serde::{Deserialize, Serialize};

/// zstd level: fast, good enough for cache payloads.
const ZSTD_LEVEL: i32 = 3;

/// The largest value a record may claim to hold (far above any `cache.max_entry_bytes`):
/// a corrupt header claiming more must not make decoding allocate it (an allocation
/// failure aborts the process; no supervisor catches that).
const MAX_RAW_LEN: u64 = 1 << 30;

/// Metadata stored in front of the payload.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub(crate) struct Header {
    /// Expiry, milliseconds since the Unix epoch.
    pub expires_ms: i64,
    /// Whether the payload is a zstd frame.
    pub compressed: bool,
    /// Length of the uncompressed value.
    pub raw_len: u64,
    /// Media type of the value.
    pub content_type: Option<String>,
    /// Tags of the entry.
    pub tags: Vec<String>,
}

/// Encodes `entry`, compressing values longer than `compress_above` when that helps.
pub(crate) fn encode(entry: &BackendEntry, compress_above: Option<usize>) -> Result<Vec<u8>, CacheError> {
    let data = entry.value.data();
    let compressed = match compress_above {
        Some(t) if data.len() > t => {
            let c = zstd::bulk::compress(data, ZSTD_LEVEL).map_err(|e| StoreError::Codec(format!("zstd: {e}")))?;
            (c.len() < data.len()).then_some(c)
        }
        _ => None,
    };
    let header = Header {
        expires_ms: entry.expires_ms,
        compressed: compressed.is_some(),
        raw_len: data.len() as u64,
        content_type: entry.value.content_type().map(str::to_owned),
        tags: entry.tags.clone(),
    };
    let h = codec::encode(&header)?;
    let payload: &[u8] = compressed.as_deref().unwrap_or(data);
    let mut out = Vec::with_capacity(4 + h.len() + payload.len());
    out.extend_from_slice(&(h.len() as u32).to_le_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(payload);
    Ok(out)
}

/// Splits a record into its header and payload.
pub(crate) fn split(bytes: &[u8]) -> Result<(Header, &[u8]), StoreError> {
    let len = bytes.get(..4).ok_or_else(|| StoreError::Corrupt("cache record too short".into()))?;
    let len = u32::from_le_bytes(len.try_into().expect("4 bytes")) as usize;
    let h = bytes.get(4..4 + len).ok_or_else(|| StoreError::Corrupt("cache record header truncated".into()))?;
    Ok((codec::decode(h)?, &bytes[4 + len..]))
}

/// Decodes a whole record (decompressing the payload).
pub(crate) fn decode(bytes: &[u8]) -> Result<BackendEntry, StoreError> {
    let (h, payload) = split(bytes)?;
    let data = if h.compressed {
        if h.raw_len > MAX_RAW_LEN {
            return Err(StoreError::Corrupt(format!("cache record claims {} bytes", h.raw_len)));
        }
        let out = zstd::bulk::decompress(payload, h.raw_len as usize).map_err(|e| StoreError::Corrupt(format!("zstd: {e}")))?;
        if out.len() as u64 != h.raw_len {
            return Err(StoreError::Corrupt("cache record length mismatch".into()));
        }
        out
    } else {
        payload.to_vec()
    };
    Ok(BackendEntry {
        value: match h.content_type.as_deref() {
            Some(ct) => CacheValue::with_content_type(data, ct),
            None => CacheValue::new(data),
        },
        expires_ms: h.expires_ms,
        tags: h.tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(data: Vec<u8>) -> BackendEntry {
        BackendEntry { value: CacheValue::with_content_type(data, "text/plain"), expires_ms: 42, tags: vec!["a".into()] }
    }

    #[test]
    fn compressible_values_round_trip_compressed() {
        let data = "hello world ".repeat(1000).into_bytes();
        let rec = encode(&entry(data.clone()), Some(1024)).unwrap();
        assert!(rec.len() < data.len() / 4, "record of {} bytes is not compressed", rec.len());
        let (h, _) = split(&rec).unwrap();
        assert!(h.compressed);
        let back = decode(&rec).unwrap();
        assert_eq!(back.value.data().as_ref(), &data[..]);
        assert_eq!(back.value.content_type(), Some("text/plain"));
        assert_eq!(back.expires_ms, 42);
        assert_eq!(back.tags, vec!["a".to_string()]);
    }

    #[test]
    fn a_header_claiming_a_huge_value_is_corruption_not_an_allocation() {
        let rec = encode(&entry("hello world ".repeat(1000).into_bytes()), Some(1024)).unwrap();
        let (mut h, payload) = split(&rec).unwrap();
        h.raw_len = u64::MAX / 2;
        let head = codec::encode(&h).unwrap();
        let mut forged = (head.len() as u32).to_le_bytes().to_vec();
        forged.extend_from_slice(&head);
        forged.extend_from_slice(payload);
        assert!(matches!(decode(&forged), Err(StoreError::Corrupt(_))));
    }

    #[test]
    fn small_or_incompressible_values_are_stored_raw() {
        let small = b"short".to_vec();
        let (h, p) = split(&encode(&entry(small.clone()), Some(1024)).unwrap()).map(|(h, p)| (h, p.to_vec())).unwrap();
        assert!(!h.compressed);
        assert_eq!(p, small);
        // Pseudo-random bytes do not shrink: kept raw even above the threshold.
        let noise = crate::cache::conformance::noise(4096, 0x1234_5678);
        let rec = encode(&entry(noise.clone()), Some(1024)).unwrap();
        assert!(!split(&rec).unwrap().0.compressed);
        assert_eq!(decode(&rec).unwrap().value.data().as_ref(), &noise[..]);
    }

    #[test]
    fn truncated_records_are_corrupt_not_panics() {
        let rec = encode(&entry(vec![1; 10]), None).unwrap();
        assert!(split(&rec[..2]).is_err());
        assert!(split(&rec[..6]).is_err());
    }
}
