//! Keys of the in-memory tier, stored inline.
//!
//! An L1 lookup compares the caller's key with the stored one. With `String` keys that
//! comparison follows a pointer to a separate heap allocation per entry, made whenever
//! the entry was set — scattered among everything else allocated meanwhile, so a hit on a
//! working set larger than the CPU cache costs an extra cache miss. Keys of up to
//! [`INLINE`] bytes (the common case: `user:42:profile`) are kept inside the entry
//! itself; longer ones (up to the 1 KiB key limit) on the heap.
//!
//! Lookups take a `&str` ([`quick_cache::Equivalent`] compares bytes); a stored key
//! hashes exactly like the `str` it was made from.

use std::hash::{Hash, Hasher};

/// Longest key stored inline, bytes (the whole key is then 40 bytes).
pub(crate) const INLINE: usize = 38;

/// A key of the in-memory tier (the caller's key, without the L2 prefix).
#[derive(Clone)]
pub(crate) struct L1Key(Repr);

#[derive(Clone)]
enum Repr {
    Inline { len: u8, buf: [u8; INLINE] },
    Heap(Box<str>),
}

impl L1Key {
    /// The stored key for `key`.
    pub fn new(key: &str) -> Self {
        if key.len() <= INLINE {
            let mut buf = [0u8; INLINE];
            buf[..key.len()].copy_from_slice(key.as_bytes());
            L1Key(Repr::Inline { len: key.len() as u8, buf })
        } else {
            L1Key(Repr::Heap(key.into()))
        }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, buf } => &buf[..*len as usize],
            Repr::Heap(s) => s.as_bytes(),
        }
    }

    /// Length of the key in bytes.
    pub fn byte_len(&self) -> usize {
        self.bytes().len()
    }

    /// The key as text (not on the lookup path: validates the inline bytes).
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { .. } => std::str::from_utf8(self.bytes()).expect("an L1 key is built from a str"),
            Repr::Heap(s) => s,
        }
    }
}

impl Hash for L1Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must match `str`'s Hash: lookups hash the caller's `&str`.
        self.as_str().hash(state)
    }
}

impl PartialEq for L1Key {
    fn eq(&self, other: &Self) -> bool {
        self.bytes() == other.bytes()
    }
}

impl Eq for L1Key {}

impl quick_cache::Equivalent<L1Key> for str {
    #[inline]
    fn equivalent(&self, key: &L1Key) -> bool {
        self.as_bytes() == key.bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_hash_like_their_str() {
        let h = quick_cache::DefaultHashBuilder::default();
        for k in ["", "a", "user:42:profile", &"k".repeat(INLINE), &"é".repeat(INLINE / 2), &"x".repeat(1024)] {
            let key = L1Key::new(k);
            assert_eq!(key.as_str(), k);
            assert_eq!(h.hash_one(&key), h.hash_one(k), "{k}");
            assert!(quick_cache::Equivalent::equivalent(k, &key));
            assert!(!quick_cache::Equivalent::equivalent("other", &key));
        }
    }
}
