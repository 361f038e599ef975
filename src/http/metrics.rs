//! Prometheus metrics: the process-wide recorder, HTTP request metrics, and `/metrics`.
//!
//! Modules record with the `metrics` macros (`counter!`, `gauge!`, `histogram!`) and
//! describe each metric once with `describe_*!` so the exposition carries HELP lines
//! (`promtool check metrics` lints missing HELP). Counters end in `_total`.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use (tests run many servers per process).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed by an embedding program; then ours
        // still renders whatever was recorded through it (nothing), which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
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
    let h = handle();
    let stats = app.store.writer_stats();
    metrics::counter!("hearth_store_commits_total").absolute(stats.commits.load(std::sync::atomic::Ordering::Relaxed));
    metrics::counter!("hearth_store_writes_total").absolute(stats.ops.load(std::sync::atomic::Ordering::Relaxed));
    metrics::gauge!("hearth_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    h.render()
}
