//! Following the other nodes of a cluster: with a shared L2, every node keeps its own L1,
//! so a value another node overwrites or removes must leave this node's L1 too.
//!
//! The shared backend reports other writers' changes ([`CacheBackend::watch`]). A changed
//! key is handled as a local delete of the L1 copy would be — it takes the key's ticket,
//! so an L2→L1 fill that read the old value before the change cannot store it after.
//! A gap in the feed empties L1 under the invalidation fence. What a lost message can
//! leave behind lives at most `cache.l1.ttl` seconds. A local write of a key racing
//! with another node's write of the same key may be the one that loses, as with any two
//! concurrent writes; either way every node then reads the value L2 holds.
//!
//! [`CacheBackend::watch`]: super::CacheBackend::watch

use super::Cache;
use super::backend::Changed;
use tokio_util::sync::CancellationToken;

impl Cache {
    /// Whether this cache must follow other writers (a shared L2 under an L1).
    pub(super) fn follows_peers(&self) -> bool {
        self.inner.l1.is_some() && self.inner.l2.as_ref().is_some_and(|l2| l2.shared())
    }

    /// Applies other writers' changes to L1 until `shutdown`.
    pub(super) async fn follow_peers(self, shutdown: CancellationToken) {
        let Some(l2) = self.inner.l2.clone() else { return };
        let me = self.clone();
        l2.watch(&move |c| me.forget(c), shutdown).await;
    }

    /// Drops the L1 copies a change made stale.
    fn forget(&self, change: Changed) {
        let inner = &*self.inner;
        let Some(l1) = &inner.l1 else { return };
        match change {
            Changed::Keys(keys) => {
                for full in keys {
                    let Some(key) = full.strip_prefix(inner.prefix.as_str()) else { continue };
                    let ticket = inner.consistency.begin(key, || {
                        l1.remove(key);
                    });
                    ticket.finish(|| {});
                }
            }
            Changed::Gap => {
                drop(inner.consistency.begin_invalidation(|| {
                    l1.remove_where(|_, _| true);
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{CacheValue, Tier, config::CacheConfig};
    use crate::clock::SystemClock;
    use std::sync::Arc;

    #[tokio::test]
    async fn a_change_drops_the_key_and_a_gap_drops_every_l1_copy() {
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        let cache = Cache::new(store, Arc::new(SystemClock), CacheConfig::default());
        for k in ["a", "b", "c"] {
            cache.set(k, CacheValue::new(k.as_bytes().to_vec()), None, &[]).await.unwrap();
        }
        let tier = |k: &'static str| {
            let cache = cache.clone();
            async move { cache.lookup(k).await.unwrap().map(|h| h.tier) }
        };
        assert_eq!(tier("a").await, Some(Tier::L1));
        cache.forget(Changed::Keys(vec!["cache:a".into(), "elsewhere:b".into()]));
        assert_eq!(tier("a").await, Some(Tier::L2), "the changed key is read from L2 again");
        assert_eq!(tier("b").await, Some(Tier::L1), "a key outside the cache's prefix is not ours");
        cache.forget(Changed::Gap);
        assert_eq!((tier("b").await, tier("c").await), (Some(Tier::L2), Some(Tier::L2)), "a gap empties L1");
    }
}
