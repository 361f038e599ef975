//! The job queue's input limits, and the checked time arithmetic that every computation
//! from job input goes through.
//!
//! Two lines of defence, so that no input can panic a background task:
//! - the API refuses values outside these limits with a 400 naming the field
//!   (`validate.rs`, `schedule.rs`);
//! - inside, every "time plus an amount from a job" saturates instead of overflowing, so a
//!   record stored before a limit existed (or by another broker) cannot panic the
//!   completer, the workers or the maintenance loop either.

use chrono::{DateTime, TimeDelta, Utc};

/// Longest retry delay, in milliseconds (30 days): the most `backoff.base_ms` and
/// `backoff.max_ms` may be, and the cap of any computed delay.
pub const MAX_BACKOFF_MS: u64 = 30 * 86_400_000;

/// How far from now a job's `run_at` may be (and the most `delay` may be): ten years.
pub const MAX_HORIZON_SECONDS: u64 = 10 * 365 * 86_400;

/// Longest `timeout` of one attempt, in seconds (7 days).
pub const MAX_TIMEOUT_SECONDS: u64 = 7 * 86_400;

/// Longest `unique_for`, in seconds (ten years).
pub const MAX_UNIQUE_FOR_SECONDS: u64 = MAX_HORIZON_SECONDS;

/// `t` plus `ms` milliseconds, saturating at the latest representable time.
pub fn after_ms(t: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    i64::try_from(ms).ok().and_then(TimeDelta::try_milliseconds).and_then(|d| t.checked_add_signed(d)).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `t` plus `secs` seconds, saturating at the latest representable time.
pub fn after_secs(t: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    after_ms(t, secs.saturating_mul(1000))
}

/// `t` minus `secs` seconds, saturating at the earliest representable time.
pub fn before_secs(t: DateTime<Utc>, secs: u64) -> DateTime<Utc> {
    i64::try_from(secs.saturating_mul(1000))
        .ok()
        .and_then(TimeDelta::try_milliseconds)
        .and_then(|d| t.checked_sub_signed(d))
        .unwrap_or(DateTime::<Utc>::MIN_UTC)
}

/// A Unix time in milliseconds plus `secs` seconds, saturating.
pub fn ms_plus_secs(ms: i64, secs: u64) -> i64 {
    ms.saturating_add(i64::try_from(secs).unwrap_or(i64::MAX).saturating_mul(1000))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_arithmetic_saturates_instead_of_panicking() {
        let now = Utc::now();
        assert_eq!(after_ms(now, u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(after_ms(now, i64::MAX as u64), DateTime::<Utc>::MAX_UTC);
        assert_eq!(after_secs(now, u64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(before_secs(now, u64::MAX), DateTime::<Utc>::MIN_UTC);
        assert_eq!(ms_plus_secs(i64::MAX - 5, u64::MAX), i64::MAX);
        assert_eq!(after_ms(now, 1500), now + TimeDelta::milliseconds(1500));
        assert_eq!(before_secs(now, 3600), now - TimeDelta::hours(1));
    }
}
