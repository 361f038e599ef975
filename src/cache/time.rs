//! Cheap expiry checks for the L1 hit path.
//!
//! Reading the injected clock costs more than a quick_cache lookup (a `clock_gettime` plus
//! a calendar conversion, 60–90 ns here), so a ticker thread keeps a coarse copy of
//! the clock's time in milliseconds, refreshed every 2 ms. A hit consults the coarse time
//! only when the entry is at least [`MARGIN_MS`] from expiry; nearer to expiry it reads the
//! clock exactly. The coarse time is trusted only while the clock demonstrably tracks
//! real time (it advanced like `Instant` over the last ticks): a `ManualClock`, which only
//! moves when told, or a wall clock that jumps, switches this off for good and every
//! check reads the clock exactly.
//!
//! Invariant: an entry is reported alive only if it is alive by the clock, given that
//! the ticker is not stalled for longer than `MARGIN_MS`.

use crate::clock::SharedClock;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

/// Entries further than this from expiry (by the coarse time) are alive without a clock read.
pub(crate) const MARGIN_MS: i64 = 1000;
const TICK: Duration = Duration::from_millis(2);
/// Real time over which the clock must keep pace before the coarse time is trusted.
const TRUST_AFTER: Duration = Duration::from_millis(20);
/// Largest disagreement between the clock and `Instant` tolerated per tick.
const MAX_SKEW_MS: i64 = 50;

struct State {
    coarse_ms: AtomicI64,
    trusted: AtomicBool,
}

/// The cache's view of time.
#[derive(Clone)]
pub(crate) struct CacheClock {
    clock: SharedClock,
    state: Arc<State>,
}

impl CacheClock {
    /// Wraps `clock` and starts its ticker thread (which ends when the last clone is dropped).
    pub fn new(clock: SharedClock) -> Self {
        let now = clock.now().timestamp_millis();
        let state = Arc::new(State { coarse_ms: AtomicI64::new(now), trusted: AtomicBool::new(false) });
        let weak = Arc::downgrade(&state);
        let c = clock.clone();
        let spawned = std::thread::Builder::new().name("hearth-cache-clock".into()).spawn(move || tick(c, weak));
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "cannot start the cache clock thread; L1 expiry checks read the clock on every hit");
        }
        CacheClock { clock, state }
    }

    /// The exact time, milliseconds since the Unix epoch.
    #[inline]
    pub fn now_ms(&self) -> i64 {
        self.clock.now().timestamp_millis()
    }

    /// Whether an entry expiring at `expires_ms` is still alive.
    #[inline]
    pub fn alive(&self, expires_ms: i64) -> bool {
        if self.state.trusted.load(Relaxed) && expires_ms.saturating_sub(self.state.coarse_ms.load(Relaxed)) > MARGIN_MS {
            return true;
        }
        expires_ms > self.now_ms()
    }

    /// Whether the coarse time is in use.
    pub fn is_coarse(&self) -> bool {
        self.state.trusted.load(Relaxed)
    }
}

/// Reads the clock between two `Instant`s; None when the thread was descheduled in
/// between (the sample says nothing about skew then).
fn sample(clock: &SharedClock) -> (i64, Option<Instant>) {
    let before = Instant::now();
    let ms = clock.now().timestamp_millis();
    let after = Instant::now();
    let reliable = after.duration_since(before) <= Duration::from_millis(2);
    (ms, reliable.then_some(after))
}

fn tick(clock: SharedClock, state: Weak<State>) {
    let (start_ms, started) = loop {
        if let (ms, Some(i)) = sample(&clock) {
            break (ms, i);
        }
    };
    let (mut last_i, mut last_ms) = (started, start_ms);
    loop {
        std::thread::sleep(TICK);
        let Some(s) = state.upgrade() else { return };
        let (ms, at) = sample(&clock);
        s.coarse_ms.store(ms, Relaxed);
        let Some(i) = at else { continue };
        let real = i.duration_since(last_i).as_millis() as i64;
        if (ms - last_ms - real).abs() > MAX_SKEW_MS {
            // The clock jumped or stands still: never trust the coarse time again.
            s.trusted.store(false, Relaxed);
            return;
        }
        if !s.trusted.load(Relaxed) && i.duration_since(started) >= TRUST_AFTER {
            let real_total = i.duration_since(started).as_millis() as i64;
            let clock_total = ms - start_ms;
            // Kept pace within 25% over the whole trust window.
            if clock_total * 4 >= real_total * 3 && clock_total * 4 <= real_total * 5 {
                s.trusted.store(true, Relaxed);
            } else {
                return;
            }
        }
        (last_i, last_ms) = (i, ms);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{ManualClock, SystemClock};

    #[test]
    fn a_manual_clock_is_never_trusted_and_checks_are_exact() {
        let m = ManualClock::new(chrono::Utc::now());
        let c = CacheClock::new(Arc::new(m.clone()));
        std::thread::sleep(Duration::from_millis(60));
        assert!(!c.is_coarse());
        let exp = m.now_ms() + 10_000;
        assert!(c.alive(exp));
        m.advance(chrono::Duration::seconds(10));
        assert!(!c.alive(exp), "exactly at expiry is dead");
    }

    #[test]
    fn the_system_clock_becomes_coarse_and_stays_exact_near_expiry() {
        let c = CacheClock::new(Arc::new(SystemClock));
        for _ in 0..200 {
            if c.is_coarse() {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(c.is_coarse(), "system clock never trusted");
        assert!(c.alive(c.now_ms() + 60_000));
        // Near expiry the exact clock decides.
        assert!(!c.alive(c.now_ms()));
        assert!(!c.alive(c.now_ms() - 1));
    }

    trait NowMs {
        fn now_ms(&self) -> i64;
    }
    impl NowMs for ManualClock {
        fn now_ms(&self) -> i64 {
            crate::clock::Clock::now(self).timestamp_millis()
        }
    }
}
