//! Time arithmetic from caller input: cron expressions (parse, then the next runs in any
//! timezone) and retry backoff (the delay for any attempt, base and cap, and the next
//! `run_at` of a job whose run failed — what the job queue's completer computes).
//! Nothing may panic; runs must move forward; a delay never exceeds its cap; a retry is
//! never scheduled before the failure.

#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use chrono::{DateTime, Utc};
use hearth::fuzzing::build_job;
use hearth::jobs::config::JobQueueConfig;
use hearth::jobs::lifecycle::{Outcome, next_state};
use hearth::jobs::schedule::{next_after, parse_cron};
use hearth::jobs::{Backoff, BackoffKind, EnqueueRequest, JobStatus};
use libfuzzer_sys::fuzz_target;

/// 1970 to about 2200: the clock times the scheduler and the completer run at.
const SPAN_SECS: i64 = 230 * 365 * 86_400;

/// The input: a cron expression, a newline, then the numbers below as raw bytes.
#[derive(Arbitrary, Debug)]
struct Numbers {
    tz: u16,
    after_secs: i64,
    runs: u8,
    kind: u8,
    base_ms: u64,
    max_ms: u64,
    jitter: bool,
    attempt: u32,
    max_attempts: u32,
}

fn clock_time(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs.rem_euclid(SPAN_SECS), 0).expect("in range")
}

fuzz_target!(|data: &[u8]| {
    let (cron, rest) = match data.iter().position(|&b| b == b'\n') {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[][..]),
    };
    let Ok(cron) = std::str::from_utf8(cron) else { return };
    let Ok(input) = Numbers::arbitrary(&mut Unstructured::new(rest)) else { return };
    let now = clock_time(input.after_secs);

    if let Ok(schedule) = parse_cron(cron) {
        let tz = chrono_tz::TZ_VARIANTS[input.tz as usize % chrono_tz::TZ_VARIANTS.len()];
        let mut t = now;
        for _ in 0..(input.runs % 8) {
            let Some(next) = next_after(&schedule, tz, t) else { break };
            assert!(next > t, "cron {cron:?} in {tz}: next run {next} is not after {t}");
            t = next;
        }
    }

    let kind = [BackoffKind::Exponential, BackoffKind::Linear, BackoffKind::Fixed][input.kind as usize % 3];
    let backoff = Backoff { kind, base_ms: input.base_ms, max_ms: input.max_ms, jitter: input.jitter };
    let delay = backoff.delay_ms(input.attempt);
    assert!(delay <= backoff.max_ms, "delay {delay} over its cap {}", backoff.max_ms);

    // The same policy through the API's validation, then a failed run as the completer records it.
    let req = EnqueueRequest {
        backoff: Some(backoff),
        max_attempts: Some(input.max_attempts),
        ..EnqueueRequest::new("fuzz", serde_json::Value::Null)
    };
    let Ok(mut job) = build_job(&JobQueueConfig::default(), req, now) else { return };
    job.status = JobStatus::Running;
    job.attempts = input.attempt.clamp(1, job.max_attempts);
    let after = next_state(&job, &Outcome::Fail { error: "fuzz".into(), retry: true }, false, now);
    if after.status == JobStatus::Failed {
        assert!(after.run_at >= now, "a retry scheduled before the failure: {} < {now}", after.run_at);
    }
});
