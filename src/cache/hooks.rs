//! Extension hooks (seed: `on_get, on_set, on_delete, on_hit, on_miss`).
//!
//! Hooks run inline on the caller's task, so they must be quick and must not block
//! (hand heavy work to a channel). When none is registered the hot path pays one relaxed
//! atomic load.

use super::model::{CacheValue, Tier};
use parking_lot::RwLock;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Observer of cache operations. Every method has an empty default; implement the ones
/// you need. Keys are the caller's keys (without the L2 prefix).
pub trait CacheHooks: Send + Sync + 'static {
    /// Before every lookup (`get`, `get_or_set`, `cached`).
    fn on_get(&self, _key: &str) {}
    /// After a value was stored by `set` or by a `get_or_set` factory.
    fn on_set(&self, _key: &str, _value: &CacheValue) {}
    /// After an entry was removed by `delete`, `invalidate` or `delete_pattern`
    /// (`invalidate` and `delete_pattern` report the pattern or `tag:<name>` instead of each key).
    fn on_delete(&self, _key: &str) {}
    /// When a lookup is answered, with the tier that answered.
    fn on_hit(&self, _key: &str, _tier: Tier) {}
    /// When neither tier has the key.
    fn on_miss(&self, _key: &str) {}
}

/// The registered hooks.
#[derive(Default)]
pub(crate) struct HookList {
    any: AtomicBool,
    list: RwLock<Vec<Arc<dyn CacheHooks>>>,
}

impl HookList {
    /// Adds `hooks`.
    pub fn register(&self, hooks: Arc<dyn CacheHooks>) {
        self.list.write().push(hooks);
        self.any.store(true, Ordering::Release);
    }

    /// Calls `f` on every registered hook.
    #[inline]
    pub fn each(&self, f: impl Fn(&dyn CacheHooks)) {
        if self.any.load(Ordering::Acquire) {
            for h in self.list.read().iter() {
                f(h.as_ref());
            }
        }
    }
}
