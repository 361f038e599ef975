//! `hearth_jobs_*` metrics: life-cycle counters per queue and job name, depth gauges per
//! queue and status, wait-time and run-time histograms.

use std::sync::Once;

/// Registers HELP text once per process.
pub(super) fn describe() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        use ::metrics::{describe_counter, describe_gauge, describe_histogram};
        describe_counter!("hearth_jobs_enqueued_total", "Jobs enqueued, by queue and job name.");
        describe_counter!("hearth_jobs_started_total", "Job runs started (claims), by queue and job name.");
        describe_counter!("hearth_jobs_completed_total", "Jobs completed, by queue and job name.");
        describe_counter!("hearth_jobs_failed_total", "Failed job runs (including timeouts and expired leases), by queue and job name.");
        describe_counter!("hearth_jobs_retried_total", "Failed runs scheduled to retry, by queue and job name.");
        describe_counter!("hearth_jobs_dead_total", "Jobs that ended dead, by queue and job name.");
        describe_counter!("hearth_jobs_cancelled_total", "Jobs that ended cancelled, by queue and job name.");
        describe_gauge!("hearth_jobs_depth", "Jobs not yet final, by queue and status.");
        describe_histogram!("hearth_jobs_wait_seconds", "Seconds from a job's run_at to the start of its run, by queue.");
        describe_histogram!("hearth_jobs_run_seconds", "Seconds a run took until it completed or failed, by queue and job name.");
        describe_counter!(
            "hearth_jobs_panics_total",
            "Panics while processing a job, by job name and where (handler, recording, hook); a job whose handler or recording panicked is dead (poison)."
        );
    });
}

/// Counts one life-cycle step.
pub(super) fn count(step: Step, queue: &str, name: &str) {
    let metric = match step {
        Step::Enqueued => "hearth_jobs_enqueued_total",
        Step::Started => "hearth_jobs_started_total",
        Step::Completed => "hearth_jobs_completed_total",
        Step::Failed => "hearth_jobs_failed_total",
        Step::Retried => "hearth_jobs_retried_total",
        Step::Dead => "hearth_jobs_dead_total",
        Step::Cancelled => "hearth_jobs_cancelled_total",
    };
    ::metrics::counter!(metric, "queue" => queue.to_string(), "name" => name.to_string()).increment(1);
}

/// A life-cycle step that is counted.
#[derive(Debug, Clone, Copy)]
pub(super) enum Step {
    Enqueued,
    Started,
    Completed,
    Failed,
    Retried,
    Dead,
    Cancelled,
}

/// Records the wait before a run started.
pub(super) fn waited(queue: &str, seconds: f64) {
    ::metrics::histogram!("hearth_jobs_wait_seconds", "queue" => queue.to_string()).record(seconds.max(0.0));
}

/// Records how long a run took.
pub(super) fn ran(queue: &str, name: &str, seconds: f64) {
    ::metrics::histogram!("hearth_jobs_run_seconds", "queue" => queue.to_string(), "name" => name.to_string()).record(seconds.max(0.0));
}

/// Sets the depth gauge of one queue and status.
pub(super) fn depth(queue: &str, status: &'static str, n: u64) {
    ::metrics::gauge!("hearth_jobs_depth", "queue" => queue.to_string(), "status" => status).set(n as f64);
}

/// Counts a panic while processing a job named `name` (`during`: handler, recording, hook).
pub(super) fn panicked(name: &str, during: &'static str) {
    ::metrics::counter!("hearth_jobs_panics_total", "name" => name.to_string(), "during" => during).increment(1);
}
