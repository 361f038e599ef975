//! `/metrics`: HTTP request metrics, the store's counters, and the exposition of the
//! process-wide recorder ([`crate::telemetry`]).

use std::sync::Once;

/// Describes the metrics this file renders (once per process).
pub(super) fn describe_once() {
    static ONCE: Once = Once::new();
    ONCE.call_once(describe);
}

fn describe() {
    metrics::describe_counter!("hearth_http_requests_total", "HTTP requests served, by method, route and status.");
    metrics::describe_histogram!(
        "hearth_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "HTTP request latency, by method and route."
    );
    metrics::describe_counter!("hearth_store_commits_total", "Write transactions committed by the group-commit writer.");
    metrics::describe_counter!("hearth_store_writes_total", "Write operations applied by the group-commit writer.");
    metrics::describe_gauge!("hearth_build_info", "Build information; the value is always 1.");
}

/// Renders the exposition text, refreshing gauges that are read on demand.
pub fn render(app: &crate::App) -> String {
    let h = crate::telemetry::recorder();
    describe_once();
    let stats = app.store.writer_stats();
    metrics::counter!("hearth_store_commits_total").absolute(stats.commits.load(std::sync::atomic::Ordering::Relaxed));
    metrics::counter!("hearth_store_writes_total").absolute(stats.ops.load(std::sync::atomic::Ordering::Relaxed));
    metrics::gauge!("hearth_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    h.render()
}
