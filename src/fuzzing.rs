//! Entry points for the fuzz targets in `fuzz/` — not part of hearth's API (hidden from
//! the docs, may change at any time).
//!
//! Most targets call public items directly. This module exposes the few internal
//! decoders and validators they also need, as re-exports or thin wrappers, so that the
//! modules owning them stay private.

use crate::notify::Notification;
use crate::store::StoreError;

pub use crate::cache::BackendEntry;
pub use crate::jobs::validate::{build as build_job, claim as check_claim, list as check_job_list};

/// Decodes one cache L2 record as the embedded cache backend reads it.
pub fn decode_cache_record(bytes: &[u8]) -> Result<BackendEntry, StoreError> {
    crate::cache::record::decode(bytes)
}

/// Encodes one cache L2 record as the embedded cache backend writes it, compressing
/// values longer than `compress_above`.
pub fn encode_cache_record(entry: &BackendEntry, compress_above: Option<usize>) -> Vec<u8> {
    crate::cache::record::encode(entry, compress_above).expect("a cache record encodes")
}

/// Decodes one stored notification (with its feed sequence number) as the embedded
/// notification store reads it.
pub fn decode_notification(bytes: &[u8]) -> Result<(u64, Notification), StoreError> {
    crate::notify::embedded::record::Record::decode(bytes).map(|r| (r.seq, r.n))
}

/// Encodes one notification as the embedded notification store writes it.
pub fn encode_notification(seq: u64, n: Notification) -> Result<Vec<u8>, StoreError> {
    crate::notify::embedded::record::Record { seq, n }.encode()
}
