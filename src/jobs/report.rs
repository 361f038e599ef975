//! What the facade does after the broker changed jobs: wake whoever can run jobs that
//! became ready, and report every step — metrics, events, hooks, and the progress record
//! of a job that ended. Also the cancellation signals of this process's in-process runs.

use super::broker::{Ended, Finished, Ready};
use super::metrics::{self, Step};
use super::model::{Job, JobStatus};
use super::{JobQueue, RunSignal, Shared};
use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

impl Shared {
    /// Wakes whoever can run jobs that just became ready in `(queue, name)`.
    pub(crate) fn notify_ready(&self, ready: &[Ready]) {
        if ready.is_empty() {
            return;
        }
        {
            let handled = self.handlers.read();
            let now = self.clock.now();
            for (q, n) in ready {
                if handled.by_name.contains_key(n) {
                    for p in &self.pools {
                        if p.queues.iter().any(|pq| pq == q) {
                            p.activity.lock().ready(now);
                            p.notify.notify_one();
                        }
                    }
                }
            }
        }
        // External claims may name handled jobs explicitly, so they are always woken.
        self.external.notify_waiters();
    }

    /// Wakes every pool and waiting worker (ready jobs may have been missed).
    pub(crate) fn wake_all(&self) {
        let now = self.clock.now();
        for p in &self.pools {
            p.activity.lock().ready(now);
            p.notify.notify_waiters();
            p.notify.notify_one();
        }
        self.external.notify_waiters();
    }
}

impl JobQueue {
    pub(super) fn now(&self) -> DateTime<Utc> {
        self.shared.clock.now()
    }

    /// Emits `topic` with the job, when anybody listens. The event carries the `Job`
    /// itself: its JSON is built only if a subscriber reads it (webhooks, plugins), not
    /// for the job event stream, which reads the `Job` (see `events::EventData`).
    pub(super) fn emit(&self, topic: &str, job: &Job) {
        let events = &self.shared.events;
        if events.subscriber_count() > 0 {
            events.emit(topic, &job.id, None, crate::events::EventData::of(job.clone()));
        }
    }

    /// Reports a new job once it is durable (metrics, `job.enqueued`, hooks).
    pub(super) fn announce(&self, job: &Job, hooks: &[std::sync::Arc<dyn super::JobHooks>]) {
        metrics::count(Step::Enqueued, &job.queue, &job.name);
        self.emit("job.enqueued", job);
        for h in hooks {
            call_hook(job, || h.on_enqueue(job));
        }
    }

    /// Reports the starts of claimed runs (metrics, `job.started`, hooks).
    pub(super) fn report_started(&self, jobs: &[Job], now: DateTime<Utc>) {
        if jobs.is_empty() {
            return;
        }
        let hooks = self.shared.hooks.read().clone();
        for job in jobs {
            metrics::count(Step::Started, &job.queue, &job.name);
            metrics::waited(&job.queue, (now - job.run_at).num_milliseconds() as f64 / 1000.0);
            self.emit("job.started", job);
            for h in &hooks {
                call_hook(job, || h.on_start(job));
            }
        }
    }

    /// Wakes workers for what a finish made ready and reports every job it changed (the
    /// cascade included). Returns the results of the ends, in order.
    pub(super) async fn report_finished(&self, f: Finished, now: DateTime<Utc>) -> Vec<Result<Ended, super::JobError>> {
        self.shared.notify_ready(&f.ready);
        if f.cascading {
            // Dependants left to cancel: the maintenance loop's ticks do it.
            self.shared.wake.notify_one();
        }
        self.report_ended(f.results.iter().filter_map(|r| r.as_ref().ok()).chain(&f.cascaded), now).await;
        f.results
    }

    /// Metrics, events, hooks and the progress record after durable changes of jobs;
    /// wakes the maintenance loop when one will retry later.
    pub(super) async fn report_ended<'a>(&self, ended: impl Iterator<Item = &'a Ended>, now: DateTime<Utc>) {
        let hooks = self.shared.hooks.read().clone();
        let mut retrying_later = false;
        for e in ended {
            let next = &*e.job;
            retrying_later |= next.status == JobStatus::Failed;
            let (q, n) = (next.queue.as_str(), next.name.as_str());
            if e.was_running
                && let Some(s) = next.started_at
            {
                metrics::ran(q, n, (now - s).num_milliseconds() as f64 / 1000.0);
            }
            if e.failed_run && next.status != JobStatus::Cancelled {
                let err = next.errors.last().map(|a| a.error.as_str()).unwrap_or_default();
                metrics::count(Step::Failed, q, n);
                self.emit("job.failed", next);
                for h in &hooks {
                    call_hook(next, || h.on_fail(next, err));
                }
            }
            match next.status {
                JobStatus::Completed => {
                    metrics::count(Step::Completed, q, n);
                    self.emit("job.completed", next);
                    for h in &hooks {
                        call_hook(next, || h.on_complete(next));
                    }
                }
                JobStatus::Dead => {
                    metrics::count(Step::Dead, q, n);
                    self.emit("job.dead", next);
                }
                JobStatus::Cancelled => {
                    metrics::count(Step::Cancelled, q, n);
                    self.emit("job.cancelled", next);
                }
                JobStatus::Failed | JobStatus::Pending => {
                    metrics::count(Step::Retried, q, n);
                    self.emit("job.retrying", next);
                }
                _ => {}
            }
            if next.progress_id.is_some() && next.status.is_final() {
                self.finalise_progress(next).await;
            }
        }
        if retrying_later {
            self.shared.wake.notify_one();
        }
    }

    /// Ends the progress record of a job that reached a final state.
    async fn finalise_progress(&self, job: &Job) {
        let p = &self.shared.progress;
        let r = match job.status {
            JobStatus::Completed => p.complete(&job.id, job.result.clone()).await.map(|_| ()),
            JobStatus::Dead => p.fail(&job.id, job.reason.as_deref().unwrap_or("dead")).await.map(|_| ()),
            _ => p.cancel(&job.id).await.map(|_| ()),
        };
        if let Err(e) = r {
            tracing::debug!(job = %job.id, error = %e, "job progress not finalised");
        }
    }

    /// The cancellation signal of the in-process run of `job` (as claimed); one given
    /// before the run registered is taken over.
    pub(super) fn run_signal(&self, job: &Job) -> CancellationToken {
        let mut runs = self.shared.runs.lock();
        match runs.get(&job.id) {
            Some(s) if s.attempt == job.attempts && s.started_at == job.started_at => s.token.clone(),
            _ => {
                let token = CancellationToken::new();
                runs.insert(job.id.clone(), RunSignal { attempt: job.attempts, started_at: job.started_at, token: token.clone() });
                token
            }
        }
    }

    /// Signals the in-process run of `job` (as the broker returned it after a cancel
    /// request), or leaves the signal for the run to take if it has not registered yet.
    pub(super) fn signal_run(&self, job: &Job) {
        if job.worker_id.as_deref() != Some(super::broker::IN_PROCESS) {
            return;
        }
        let mut runs = self.shared.runs.lock();
        match runs.get(&job.id) {
            Some(s) if s.attempt == job.attempts && s.started_at == job.started_at => s.token.cancel(),
            _ => {
                let token = CancellationToken::new();
                token.cancel();
                runs.insert(job.id.clone(), RunSignal { attempt: job.attempts, started_at: job.started_at, token });
            }
        }
    }

    /// Drops signals given for runs that never registered here (their run ended first, or
    /// runs on another node of a shared broker): cancelled ones of runs started before
    /// `before`. A run registers right after its claim, so none of them is still awaited.
    pub(super) fn drop_stale_signals(&self, before: DateTime<Utc>) {
        self.shared.runs.lock().retain(|_, s| !(s.token.is_cancelled() && s.started_at.is_none_or(|t| t < before)));
    }

    /// Forgets the signals of runs whose end was recorded.
    pub(super) fn forget_runs<'a>(&self, ids: impl Iterator<Item = &'a str>) {
        let mut runs = self.shared.runs.lock();
        for id in ids {
            runs.remove(id);
        }
    }
}

/// Calls one hook, containing a panic: a plugin's bug must not stop the task that reports
/// (the completer, the maintenance loop, a request). Logged and counted.
fn call_hook(job: &Job, f: impl FnOnce()) {
    if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        metrics::panicked(&job.name, "hook");
        tracing::error!(job = %job.id, name = %job.name, panic = %crate::runtime::panic_message(panic.as_ref()), "a job hook panicked");
    }
}
