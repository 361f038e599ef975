//! The process-wide Prometheus recorder.
//!
//! Modules record with the `metrics` macros (`counter!`, `gauge!`, `histogram!`) and
//! describe each metric once with `describe_*!` so the exposition carries HELP lines
//! (`promtool check metrics` lints missing HELP). Counters end in `_total`. The recorder
//! must exist before modules describe their metrics, so the composition root installs it
//! first; `http/metrics.rs` renders it on `/metrics`.
//!
//! This file is a leaf: it imports nothing of hearth.

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process-wide recorder, installed on first use (tests run many servers per process).
pub fn recorder() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        // Another recorder may already be installed by an embedding program; then ours
        // still renders whatever was recorded through it (nothing), which is harmless.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}
