//! The in-memory index over the non-final jobs: ready sets per queue and job name,
//! the delayed set, external leases, dependency waits, unique keys and paused queues.
//!
//! Invariant: redb is the source of truth; this index is rebuilt from it at start
//! ([`super::EmbeddedBroker::open`]) and only changed after the write that justifies the
//! change is durable — except claims, which are memory-only leases (at-least-once: after
//! a crash a job that was running is ready again).
//!
//! Invariant: every live job is in exactly one slot (ready, scheduled, waiting on
//! dependencies, running) or marked `busy` while a write about it is in flight; a busy
//! job is in no claimable set.

use crate::jobs::broker::{Holder, IN_PROCESS, Names};
use crate::jobs::model::{Job, JobStatus};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The hot maps of the index, looked up several times per job: foldhash (randomly
/// seeded, so still resistant to chosen-key flooding) instead of SipHash.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// Orders a queue's ready jobs: most urgent first (`9 - priority`), then earliest
/// `run_at`, then enqueue order.
pub(crate) type ReadyKey = (u8, i64, u64);

/// Where a live job sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slot {
    /// Claimable.
    Ready(ReadyKey),
    /// Waiting for its run_at (key in `scheduled`).
    Scheduled((i64, u64)),
    /// Waiting for dependencies.
    Waiting,
    /// Claimed.
    Running,
    /// In no set (being written).
    Detached,
}

/// A job that is not final.
pub(crate) struct Live {
    /// Its current view (status reflects memory-only transitions such as claims).
    pub job: Job,
    /// Where it sits.
    pub slot: Slot,
    /// A write about this job is in flight; other transitions must wait.
    pub busy: bool,
    /// A caller asked to cancel it while it was running.
    pub cancel_requested: bool,
    /// Run by an in-process handler (its timeout, not a lease, bounds the run).
    pub local: bool,
}

/// Completions in the last minute, in one-second buckets.
#[derive(Clone)]
pub(crate) struct Rate {
    buckets: [u32; 60],
    last: i64,
}

impl Default for Rate {
    fn default() -> Self {
        Rate { buckets: [0; 60], last: 0 }
    }
}

impl Rate {
    fn roll(&mut self, sec: i64) {
        if sec - self.last >= 60 {
            self.buckets = [0; 60];
        } else {
            for s in (self.last + 1)..=sec {
                self.buckets[s.rem_euclid(60) as usize] = 0;
            }
        }
        self.last = self.last.max(sec);
    }

    /// Counts one event at `sec`.
    pub fn add(&mut self, sec: i64) {
        self.roll(sec);
        self.buckets[sec.rem_euclid(60) as usize] += 1;
    }

    /// Events in the 60 seconds up to `sec`.
    pub fn sum(&mut self, sec: i64) -> u64 {
        self.roll(sec);
        self.buckets.iter().map(|&b| b as u64).sum()
    }
}

/// Per-queue final counts: completed, dead, cancelled.
pub(crate) type FinalCounts = [u64; 3];

/// The index. Guarded by one mutex in the service.
#[derive(Default)]
pub(crate) struct Index {
    pub live: FastMap<String, Live>,
    ready: FastMap<String, FastMap<String, BTreeMap<ReadyKey, String>>>,
    scheduled: BTreeMap<(i64, u64), String>,
    leases: BTreeMap<(i64, u64), String>,
    waiters: HashMap<String, Vec<String>>,
    blocked_on: HashMap<String, HashSet<String>>,
    /// unique key → (job id, expiry in ms; None = while the job is not final).
    pub unique: FastMap<String, (String, Option<i64>)>,
    /// Caller-chosen ids being enqueued right now.
    pub reserved: HashSet<String>,
    pub paused: HashSet<String>,
    pub finals: HashMap<String, FinalCounts>,
    pub throughput: HashMap<String, Rate>,
    /// Every queue ever seen (configured, enqueued to, paused).
    pub queues: BTreeSet<String>,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl Index {
    /// Adds a job that was just written (or loaded) and is not final. It goes to the
    /// ready or delayed set, or waits while `blocked` dependencies are unfinished.
    /// Returns `(queue, name)` when it became ready.
    pub fn insert(&mut self, job: Job, blocked: HashSet<String>, now: DateTime<Utc>) -> Option<(String, String)> {
        let id = job.id.clone();
        self.queues.insert(job.queue.clone());
        self.live.insert(id.clone(), Live { job, slot: Slot::Detached, busy: false, cancel_requested: false, local: false });
        if blocked.is_empty() {
            self.place(&id, now)
        } else {
            for d in &blocked {
                self.waiters.entry(d.clone()).or_default().push(id.clone());
            }
            self.blocked_on.insert(id.clone(), blocked);
            if let Some(l) = self.live.get_mut(&id) {
                l.slot = Slot::Waiting;
                l.job.status = JobStatus::Pending;
            }
            None
        }
    }

    /// Puts a detached live job into the ready or delayed set according to its run_at.
    pub fn place(&mut self, id: &str, now: DateTime<Utc>) -> Option<(String, String)> {
        let l = self.live.get_mut(id)?;
        l.busy = false;
        let at = ms(l.job.run_at);
        if at <= ms(now) {
            let key = (9 - l.job.priority.min(9), at, l.job.seq);
            l.slot = Slot::Ready(key);
            l.job.status = JobStatus::Pending;
            let (q, n) = (l.job.queue.clone(), l.job.name.clone());
            self.ready.entry(q.clone()).or_default().entry(n.clone()).or_default().insert(key, id.to_string());
            Some((q, n))
        } else {
            let key = (at, l.job.seq);
            l.slot = Slot::Scheduled(key);
            if l.job.status != JobStatus::Failed {
                l.job.status = JobStatus::Scheduled;
            }
            self.scheduled.insert(key, id.to_string());
            None
        }
    }

    /// Takes a live job out of whatever set holds it (it stays live, `Detached`).
    pub fn detach(&mut self, id: &str) {
        let Some(l) = self.live.get_mut(id) else { return };
        match std::mem::replace(&mut l.slot, Slot::Detached) {
            Slot::Ready(key) => {
                if let Some(names) = self.ready.get_mut(&l.job.queue)
                    && let Some(set) = names.get_mut(&l.job.name)
                {
                    set.remove(&key);
                }
            }
            Slot::Scheduled(key) => {
                self.scheduled.remove(&key);
            }
            Slot::Running => {
                if let Some(until) = l.job.lease_until
                    && !l.local
                {
                    self.leases.remove(&(ms(until), l.job.seq));
                }
            }
            Slot::Waiting => {
                if let Some(deps) = self.blocked_on.remove(id) {
                    for d in deps {
                        if let Some(w) = self.waiters.get_mut(&d) {
                            w.retain(|x| x != id);
                            if w.is_empty() {
                                self.waiters.remove(&d);
                            }
                        }
                    }
                }
            }
            Slot::Detached => {}
        }
    }

    /// Counts one more final job of `queue` (at load).
    pub fn count_final(&mut self, queue: &str, status: JobStatus) {
        let c = self.finals.entry(queue.to_string()).or_default();
        match status {
            JobStatus::Completed => c[0] += 1,
            JobStatus::Dead => c[1] += 1,
            _ => c[2] += 1,
        }
    }

    /// Removes a job that reached a final state (after its write is durable), releasing
    /// its unique key. Returns the jobs that waited on it.
    pub fn remove_final(&mut self, id: &str, status: JobStatus, now_sec: i64) -> Vec<String> {
        self.detach(id);
        if let Some(l) = self.live.remove(id) {
            let queue = l.job.queue;
            // Looked up by reference: the queue name is cloned only the first time.
            if !self.finals.contains_key(&queue) {
                self.finals.insert(queue.clone(), FinalCounts::default());
            }
            let c = self.finals.get_mut(&queue).expect("inserted above");
            match status {
                JobStatus::Completed => {
                    c[0] += 1;
                    match self.throughput.get_mut(&queue) {
                        Some(r) => r.add(now_sec),
                        None => self.throughput.entry(queue).or_default().add(now_sec),
                    }
                }
                JobStatus::Dead => c[1] += 1,
                _ => c[2] += 1,
            }
            if let Some(k) = &l.job.unique_key
                && let Some((holder, None)) = self.unique.get(k)
                && holder == id
            {
                self.unique.remove(k);
            }
        }
        self.waiters.remove(id).unwrap_or_default()
    }

    /// Marks dependency `dep` completed for `waiter`; true when the waiter has no
    /// unfinished dependency left (it is then detached, ready to be placed).
    pub fn dependency_done(&mut self, waiter: &str, dep: &str) -> bool {
        let Some(set) = self.blocked_on.get_mut(waiter) else { return false };
        set.remove(dep);
        if set.is_empty() {
            self.blocked_on.remove(waiter);
            if let Some(l) = self.live.get_mut(waiter) {
                l.slot = Slot::Detached;
            }
            true
        } else {
            false
        }
    }

    /// Moves delayed jobs whose run_at has come into the ready sets.
    pub fn promote_due(&mut self, now: DateTime<Utc>) -> Vec<(String, String)> {
        let now_ms = ms(now);
        let mut out = Vec::new();
        while let Some((&(at, seq), _)) = self.scheduled.first_key_value() {
            if at > now_ms {
                break;
            }
            let id = self.scheduled.remove(&(at, seq)).unwrap_or_default();
            if let Some(l) = self.live.get_mut(&id) {
                l.slot = Slot::Detached;
                if let Some(r) = self.place(&id, now) {
                    out.push(r);
                }
            }
        }
        out
    }

    /// Claims up to `max` ready jobs from `queues` (skipping paused ones), best first,
    /// marking them running with `attempts + 1`.
    pub fn claim(&mut self, queues: &[String], names: Names<'_>, holder: Holder<'_>, max: usize, now: DateTime<Utc>) -> Vec<Job> {
        let mut out = Vec::new();
        while out.len() < max {
            let Some((key, q, name)) = self.best(queues, names) else { break };
            let (q, name) = (q.to_string(), name.to_string());
            let Some(id) = self.ready.get_mut(&q).and_then(|m| m.get_mut(&name)).and_then(|s| s.remove(&key)) else { break };
            let Some(l) = self.live.get_mut(&id) else { continue };
            l.slot = Slot::Running;
            l.job.status = JobStatus::Running;
            l.job.attempts += 1;
            l.job.started_at = Some(now);
            l.cancel_requested = false;
            match holder {
                Holder::InProcess => {
                    l.local = true;
                    l.job.worker_id = Some(IN_PROCESS.into());
                    l.job.lease_until = Some(crate::jobs::limits::after_secs(now, l.job.timeout));
                }
                Holder::Worker { id: w, lease_ms } => {
                    l.local = false;
                    let until = crate::jobs::limits::after_ms(now, lease_ms.max(0) as u64);
                    l.job.worker_id = Some(w.to_string());
                    l.job.lease_until = Some(until);
                    self.leases.insert((ms(until), l.job.seq), id.clone());
                }
            }
            out.push(l.job.clone());
        }
        out
    }

    /// The most urgent ready job of `queues` (not paused) whose name passes `names`: its
    /// key, queue and name.
    fn best<'a>(&'a self, queues: &'a [String], names: Names<'_>) -> Option<(ReadyKey, &'a str, &'a str)> {
        let mut best: Option<(ReadyKey, &str, &str)> = None;
        for q in queues {
            if self.paused.contains(q) {
                continue;
            }
            let Some(by_name) = self.ready.get(q) else { continue };
            for (name, set) in by_name {
                if !names.allows(name) {
                    continue;
                }
                if let Some((k, _)) = set.first_key_value()
                    && best.is_none_or(|(b, _, _)| *k < b)
                {
                    best = Some((*k, q.as_str(), name.as_str()));
                }
            }
        }
        best
    }

    /// True when a claim over `queues` with `names` would find a ready job.
    pub fn any_ready(&self, queues: &[String], names: Names<'_>) -> bool {
        self.best(queues, names).is_some()
    }

    /// The jobs waiting on `id` (not yet released or cancelled).
    pub fn waiters_of(&self, id: &str) -> &[String] {
        self.waiters.get(id).map(Vec::as_slice).unwrap_or_default()
    }

    /// Extends an external job's lease to `until`.
    pub fn extend_lease(&mut self, id: &str, until: DateTime<Utc>) {
        let Some(l) = self.live.get_mut(id) else { return };
        if l.local || l.slot != Slot::Running {
            return;
        }
        if let Some(old) = l.job.lease_until {
            self.leases.remove(&(ms(old), l.job.seq));
        }
        l.job.lease_until = Some(until);
        self.leases.insert((ms(until), l.job.seq), id.to_string());
    }

    /// Ids of running external jobs whose lease ended at or before `now`.
    pub fn expired_leases(&self, now: DateTime<Utc>) -> Vec<String> {
        let now_ms = ms(now);
        self.leases.iter().take_while(|((at, _), _)| *at <= now_ms).map(|(_, id)| id.clone()).collect()
    }

    /// The earliest time something is due (a delayed job or a lease end), in ms.
    pub fn next_deadline(&self) -> Option<i64> {
        let a = self.scheduled.first_key_value().map(|(k, _)| k.0);
        let b = self.leases.first_key_value().map(|(k, _)| k.0);
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Counts of live jobs per queue and status, and the oldest ready job's run_at per queue.
    pub fn live_counts(&self) -> HashMap<String, (HashMap<JobStatus, u64>, Option<i64>)> {
        let mut out: HashMap<String, (HashMap<JobStatus, u64>, Option<i64>)> = HashMap::new();
        for l in self.live.values() {
            let e = out.entry(l.job.queue.clone()).or_default();
            *e.0.entry(l.job.status).or_default() += 1;
            if let Slot::Ready((_, at, _)) = l.slot {
                e.1 = Some(e.1.map_or(at, |o| o.min(at)));
            }
        }
        out
    }
}
