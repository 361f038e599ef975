//! Cron expressions: parsing (5, 6 or 7 fields), the next slot in an IANA timezone, and
//! the minimum-interval rule (`job_queue.scheduler.min_interval_seconds`). Pure
//! functions, a leaf: the configuration's validation and the scheduler both use them.

use chrono::{DateTime, Utc};
use std::str::FromStr;

/// Parses a cron expression; 5-field expressions get a `0` seconds field.
pub fn parse_cron(expr: &str) -> Result<cron::Schedule, String> {
    let n = expr.split_whitespace().count();
    let full = match n {
        5 => format!("0 {expr}"),
        6 | 7 => expr.to_string(),
        _ => return Err(format!("expected 5, 6 or 7 fields, got {n}")),
    };
    cron::Schedule::from_str(&full).map_err(|e| e.to_string())
}

/// The first slot strictly after `after`, in `tz`.
pub fn next_after(s: &cron::Schedule, tz: chrono_tz::Tz, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    s.after(&after.with_timezone(&tz)).next().map(|t| t.with_timezone(&Utc))
}

/// How many upcoming slots [`check_cron`] looks at to find the shortest interval. Enough
/// to see any burst (a seconds field runs through at most 60 slots in a row).
const SLOTS_CHECKED: usize = 128;

/// The shortest gap between consecutive slots among the next [`SLOTS_CHECKED`] after
/// `from`, or None when fewer than two slots come.
pub fn shortest_gap(s: &cron::Schedule, tz: chrono_tz::Tz, from: DateTime<Utc>) -> Option<chrono::TimeDelta> {
    let slots: Vec<DateTime<Utc>> = s.after(&from.with_timezone(&tz)).take(SLOTS_CHECKED).map(|t| t.with_timezone(&Utc)).collect();
    slots.windows(2).map(|w| w[1] - w[0]).min()
}

/// Checks a cron expression read in timezone `tz`: it parses, and its runs are at least
/// `min_interval_seconds` apart (`job_queue.scheduler.min_interval_seconds`; 0 allows any).
pub fn check_cron(expr: &str, tz: &str, min_interval_seconds: u64, now: DateTime<Utc>) -> Result<(cron::Schedule, chrono_tz::Tz), String> {
    let cron = parse_cron(expr).map_err(|e| format!("invalid cron expression: {e}"))?;
    let tz = tz.parse::<chrono_tz::Tz>().map_err(|_| format!("unknown IANA timezone '{tz}'"))?;
    if min_interval_seconds > 0
        && let Some(gap) = shortest_gap(&cron, tz, now)
        && gap.num_seconds() < i64::try_from(min_interval_seconds).unwrap_or(i64::MAX)
    {
        return Err(format!(
            "fires every {} s; schedules may fire at most once every {min_interval_seconds} s (job_queue.scheduler.min_interval_seconds)",
            gap.num_seconds()
        ));
    }
    Ok((cron, tz))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_field_cron_in_a_timezone() {
        let s = parse_cron("30 9 * * *").unwrap();
        let tz: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
        let after = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        // 09:30 Paris in winter is 08:30 UTC, so the next slot is the following day.
        assert_eq!(next_after(&s, tz, after), Some(Utc.with_ymd_and_hms(2026, 1, 11, 8, 30, 0).unwrap()));
        assert!(parse_cron("not a cron").is_err());
        assert!(parse_cron("99 * * * *").is_err());
    }

    #[test]
    fn schedules_that_fire_too_often_are_refused() {
        let now = Utc.with_ymd_and_hms(2026, 1, 10, 12, 0, 0).unwrap();
        for expr in ["* * * * * *", "0,30 * * * * *", "0-59 0 * * * *", "*/10 * * * * *"] {
            let e = check_cron(expr, "UTC", 60, now).unwrap_err();
            assert!(e.contains("min_interval_seconds"), "{expr}: {e}");
        }
        for expr in ["* * * * *", "0 3 * * *", "0 */5 * * * *"] {
            check_cron(expr, "UTC", 60, now).unwrap_or_else(|e| panic!("{expr}: {e}"));
        }
        check_cron("* * * * * *", "UTC", 0, now).expect("0 allows any interval");
        check_cron("*/2 * * * * *", "UTC", 2, now).expect("a lowered minimum");
    }
}
