//! Listing keys by glob pattern, a page at a time (HTTP `GET /api/cache?pattern=`, RESP
//! `SCAN` and `KEYS`).
//!
//! With an L2 the listing is the backend's ([`CacheBackend::list_keys`]): every key of the
//! cache is there. Without one, L1's keys are listed. A cursor is opaque (base64url of the
//! backend's own position): pass it back unchanged for the next page. As with Redis's
//! `SCAN`, a key present for the whole listing is listed at least once (exactly once with
//! the embedded backend), and a page may be empty while more follow.
//!
//! [`CacheBackend::list_keys`]: super::backend::CacheBackend::list_keys

use super::backend::{KeyFilter, KeyPage};
use super::{Cache, CacheError, validate};
use std::sync::Arc;

/// Most entries one page examines.
pub const MAX_PAGE: usize = 1000;

/// One page of a key listing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyListing {
    /// Keys of live entries matching the pattern.
    pub keys: Vec<String>,
    /// Pass back as `cursor` for the next page; None when the listing is complete.
    pub cursor: Option<String>,
}

impl Cache {
    /// One page of the keys matching the glob `pattern` (as in [`Cache::delete_pattern`]):
    /// about `count` (1..=[`MAX_PAGE`]) entries are examined from `cursor` (None: the start).
    pub async fn list_keys(&self, pattern: &str, cursor: Option<&str>, count: usize) -> Result<KeyListing, CacheError> {
        let p = validate::pattern(pattern)?;
        if !(1..=MAX_PAGE).contains(&count) {
            return Err(CacheError::invalid("count", format!("must be between 1 and {MAX_PAGE}")));
        }
        let inner = &*self.inner;
        let now_ms = self.now_ms();
        let page = match &inner.l2 {
            Some(l2) => {
                let plen = inner.prefix.len();
                let matcher = p.matcher.clone();
                let filter: KeyFilter = Arc::new(move |full: &str| full.get(plen..).is_some_and(|k| matcher.is_match(k)));
                let page = l2.list_keys(&self.full_key(&p.literal_prefix), filter, cursor, count, now_ms).await?;
                KeyPage { keys: page.keys.into_iter().map(|k| k.get(plen..).unwrap_or_default().to_owned()).collect(), next: page.next }
            }
            None => self.l1_page(&p, cursor, count),
        };
        Ok(KeyListing { keys: page.keys, cursor: page.next })
    }

    /// Every key matching `pattern` (Redis's `KEYS`): the pages of [`Cache::list_keys`]
    /// joined, without repeats.
    pub async fn all_keys(&self, pattern: &str) -> Result<Vec<String>, CacheError> {
        let (mut keys, mut cursor) = (Vec::new(), None);
        loop {
            let page = self.list_keys(pattern, cursor.as_deref(), MAX_PAGE).await?;
            keys.extend(page.keys);
            match page.cursor {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys)
    }

    /// A page of L1's live keys in key order (the cache without an L2); the position is
    /// the last key examined.
    fn l1_page(&self, p: &validate::Pattern, after: Option<&str>, count: usize) -> KeyPage {
        let inner = &*self.inner;
        let Some(l1) = &inner.l1 else { return KeyPage::default() };
        let mut keys = l1.live_keys(&inner.clock, |k| k.starts_with(&p.literal_prefix) && after.is_none_or(|a| k > a));
        keys.sort_unstable();
        let more = keys.len() > count;
        keys.truncate(count);
        let next = more.then(|| keys.last().cloned()).flatten();
        keys.retain(|k| p.matcher.is_match(k));
        KeyPage { keys, next }
    }
}
