//! Request tracing: one span per request, and 5xx answers logged at ERROR — except a
//! probe's. `/readyz` answers 503 while a module is not ready (that is its job, not a
//! fault) and a Kubernetes probe asks every few seconds, so probes get a span of their
//! own name and their failures are not logged.

use axum::http::Request;
use std::time::Duration;
use tower_http::classify::{ServerErrorsAsFailures, ServerErrorsFailureClass, SharedClassifier};
use tower_http::trace::{DefaultOnBodyChunk, DefaultOnEos, DefaultOnRequest, DefaultOnResponse, MakeSpan, OnFailure, TraceLayer};
use tracing::Span;

/// The paths of liveness and readiness probes.
const PROBES: [&str; 2] = ["/healthz", "/readyz"];

/// The tracing layer of the router.
pub(super) type Layer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    SpanPerRequest,
    DefaultOnRequest,
    DefaultOnResponse,
    DefaultOnBodyChunk,
    DefaultOnEos,
    FaultsOnly,
>;

/// The tracing layer: spans named `http` (or `probe`), failures logged by [`FaultsOnly`].
pub(super) fn layer() -> Layer {
    TraceLayer::new_for_http().make_span_with(SpanPerRequest).on_failure(FaultsOnly)
}

/// An `http` span with method, path and request id; a `probe` span for probes.
#[derive(Clone, Copy)]
pub(super) struct SpanPerRequest;

impl<B> MakeSpan<B> for SpanPerRequest {
    fn make_span(&mut self, req: &Request<B>) -> Span {
        let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
        let path = req.uri().path();
        if PROBES.contains(&path) {
            tracing::info_span!("probe", method = %req.method(), path = %path, request_id = %id)
        } else {
            tracing::info_span!("http", method = %req.method(), path = %path, request_id = %id)
        }
    }
}

/// Logs a failed response at ERROR unless it answered a probe.
#[derive(Clone, Copy)]
pub(super) struct FaultsOnly;

impl OnFailure<ServerErrorsFailureClass> for FaultsOnly {
    fn on_failure(&mut self, class: ServerErrorsFailureClass, latency: Duration, span: &Span) {
        if span.metadata().is_some_and(|m| m.name() == "probe") {
            return;
        }
        tracing::error!(parent: span, classification = %class, latency = ?latency, "response failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Log lines captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_failed_probe_is_not_logged_and_other_failures_are() {
        let out = Captured::default();
        let writer = out.clone();
        let subscriber =
            tracing_subscriber::fmt().with_ansi(false).with_max_level(tracing::Level::INFO).with_writer(move || writer.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            for path in ["/readyz", "/healthz", "/api/search"] {
                let req = Request::get(path).body(()).unwrap();
                let span = SpanPerRequest.make_span(&req);
                FaultsOnly.on_failure(
                    ServerErrorsFailureClass::StatusCode(axum::http::StatusCode::SERVICE_UNAVAILABLE),
                    Duration::from_millis(1),
                    &span,
                );
            }
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.matches("response failed").count(), 1, "{text}");
        assert!(text.contains("/api/search") && !text.contains("/readyz") && !text.contains("/healthz"), "{text}");
        assert!(text.contains("ERROR"), "{text}");
    }
}
