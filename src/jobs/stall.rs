//! Whether the in-process handlers make progress: the job queue's readiness.
//!
//! Each worker pool records when it last made progress (a run claimed or ended) and
//! since when jobs it can run have been waiting (told by whoever made them ready, and by
//! its own claims, which say whether more are ready). A pool that has had runnable work
//! waiting and made no progress for `job_queue.stall_seconds` is stalled — its handlers
//! hang, or its workers died — and the queue reports itself `degraded`. Jobs that wait for
//! external workers (names with no in-process handler) are not a pool's work, so a queue
//! nobody claims from over HTTP is normal and stays `ready`.

use super::JobQueue;
use crate::runtime::Readiness;
use chrono::{DateTime, Utc};

/// What one pool did lately (times from the queue's clock).
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// Jobs this pool can run have been ready since then (None: none known to be).
    ready_since: Option<DateTime<Utc>>,
    /// A run of this pool was last claimed or ended then.
    last_progress: Option<DateTime<Utc>>,
}

impl Activity {
    /// The pool's workers start.
    pub fn started(&mut self, now: DateTime<Utc>) {
        self.last_progress = Some(now);
    }

    /// Jobs the pool can run became ready.
    pub fn ready(&mut self, now: DateTime<Utc>) {
        self.ready_since.get_or_insert(now);
    }

    /// A worker claimed: `got` a job or not; `more` ready after it.
    pub fn claimed(&mut self, now: DateTime<Utc>, got: bool, more: bool) {
        if got {
            self.last_progress = Some(now);
        }
        if more {
            self.ready_since.get_or_insert(now);
        } else {
            self.ready_since = None;
        }
    }

    /// A run ended.
    pub fn ended(&mut self, now: DateTime<Utc>) {
        self.last_progress = Some(now);
    }

    /// How long the pool has been stalled by `now`, if it has been for `after_secs`.
    fn stalled(&self, now: DateTime<Utc>, after_secs: u64) -> Option<i64> {
        let waiting = (now - self.ready_since?).num_seconds();
        let idle = self.last_progress.map_or(waiting, |t| (now - t).num_seconds());
        let stalled = waiting.min(idle);
        (stalled >= i64::try_from(after_secs).unwrap_or(i64::MAX)).then_some(stalled)
    }
}

impl JobQueue {
    /// The queue's readiness: `degraded` (it still takes and serves jobs) while an
    /// in-process pool has had runnable jobs waiting and made no progress for
    /// `job_queue.stall_seconds`, naming the pools; else `ready`.
    pub fn readiness(&self) -> Readiness {
        let now = self.now();
        let after = self.shared.config.stall_seconds;
        let stalled: Vec<(&str, i64)> =
            self.shared.pools.iter().filter_map(|p| p.activity.lock().stalled(now, after).map(|s| (p.name.as_str(), s))).collect();
        if stalled.is_empty() {
            return Readiness::ready();
        }
        let which: Vec<String> = stalled.iter().map(|(name, s)| format!("'{name}' for {s} s")).collect();
        Readiness::degraded(format!(
            "in-process worker pool {} made no progress while its jobs are ready (handlers hang or are too slow; \
             job_queue.stall_seconds = {after})",
            which.join(", ")
        ))
        .with_details(serde_json::json!({ "stalled_pools": stalled.iter().map(|(name, _)| name).collect::<Vec<_>>() }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    #[test]
    fn a_pool_is_stalled_only_with_work_waiting_and_no_progress() {
        let t0 = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let later = t0 + Duration::seconds(500);
        let mut a = Activity::default();
        a.started(t0);
        assert_eq!(a.stalled(later, 120), None, "nothing waiting: idle is fine");
        a.claimed(t0, true, false);
        assert_eq!(a.stalled(later, 120), None, "one long run with nothing else waiting is fine");
        a.ready(t0 + Duration::seconds(10));
        assert_eq!(a.stalled(later, 120), Some(490), "work waiting and no progress");
        a.ended(later);
        assert_eq!(a.stalled(later, 120), None, "a run ended: progress");
        a.claimed(later, false, false);
        assert_eq!(a.stalled(later + Duration::seconds(900), 120), None, "an empty claim: nothing waiting");
    }
}
