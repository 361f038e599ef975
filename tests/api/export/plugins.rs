//! Extension points from Rust: a custom source type, a custom format, hooks; and the
//! export timeout, driven by a deliberately slow custom format.

use super::{GREETING, start, wait_final};
use crate::common::TestServer;
use async_trait::async_trait;
use hearth::export::formats::{FormatSpec, RenderContext};
use hearth::export::{ExportError, ExportHooks, ExportJob, ExportSource, Segment, Source, Transcript};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A source type whose data lives "elsewhere": id `n` yields a transcript of `n` segments.
struct Generated;

#[async_trait]
impl ExportSource for Generated {
    fn source_type(&self) -> &str {
        "generated"
    }

    async fn load(&self, id: &str) -> Result<Source, ExportError> {
        let n: usize = id.parse().map_err(|_| ExportError::NotFound { kind: "generated", id: id.into() })?;
        let segments =
            (0..n).map(|i| Segment { start: i as f64, end: i as f64 + 0.5, speaker: None, text: format!("{GREETING} {i}") }).collect();
        Ok(Source::Transcript(Transcript { id: id.into(), title: "gen".into(), language: None, segments, metadata: Default::default() }))
    }

    fn from_inline(&self, _value: serde_json::Value) -> Result<Source, ExportError> {
        Err(ExportError::invalid("", "generated sources cannot be inline"))
    }
}

fn count_lines(source: &Source, _ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    Ok(format!("{}\n", source.units()).into_bytes())
}

fn slow(_source: &Source, _ctx: &RenderContext<'_>) -> Result<Vec<u8>, ExportError> {
    std::thread::sleep(std::time::Duration::from_millis(2500));
    Ok(b"late".to_vec())
}

#[derive(Default)]
struct Counter {
    created: AtomicUsize,
    completed: AtomicUsize,
    downloaded: AtomicUsize,
}

impl ExportHooks for Counter {
    fn on_create(&self, _job: &ExportJob) {
        self.created.fetch_add(1, Ordering::SeqCst);
    }
    fn on_complete(&self, _job: &ExportJob) {
        self.completed.fetch_add(1, Ordering::SeqCst);
    }
    fn on_download(&self, _job: &ExportJob) {
        self.downloaded.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn custom_source_format_and_hooks() {
    let s = TestServer::start().await;
    let hooks = Arc::new(Counter::default());
    s.app.export.register_source(Arc::new(Generated));
    s.app.export.register_format(FormatSpec {
        name: "count",
        content_type: "text/plain",
        extension: "cnt",
        timed: false,
        render: count_lines,
    });
    s.app.export.register_hooks(hooks.clone());

    let id = start(&s, json!({"source_type": "generated", "source_id": "7", "format": "count"})).await;
    let rec = wait_final(&s, &id).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert_eq!(rec["filename"], "generated_7.cnt");
    let body = s.client.get(s.url(&format!("/api/exports/{id}/download"))).send().await.unwrap().text().await.unwrap();
    assert_eq!(body, "7\n");
    // The same custom source works with a built-in format.
    let id = start(&s, json!({"source_type": "generated", "source_id": "3", "format": "srt"})).await;
    assert_eq!(wait_final(&s, &id).await["status"], "completed");

    let (st, resp) = s.post("/api/exports", json!({"source_type": "generated", "source_id": "x", "format": "srt"})).await;
    assert_eq!((st, resp["error"]["field"].as_str()), (400, Some("source_id")), "{resp}");
    let (st, resp) = s.post("/api/exports", json!({"source_type": "generated", "source": {}, "format": "srt"})).await;
    assert_eq!((st, resp["error"]["field"].as_str()), (400, Some("source")), "{resp}");

    assert_eq!(hooks.created.load(Ordering::SeqCst), 2);
    assert_eq!(hooks.completed.load(Ordering::SeqCst), 2);
    assert_eq!(hooks.downloaded.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_export_over_the_timeout_fails_with_the_reason() {
    let s = TestServer::start_with(|c| c.export.jobs.timeout = 1).await;
    s.app.export.register_format(FormatSpec { name: "slow", content_type: "text/plain", extension: "txt", timed: false, render: slow });
    let id = start(&s, json!({"source_type": "transcript", "source": super::transcript(""), "format": "slow"})).await;
    let rec = wait_final(&s, &id).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(rec["error"].as_str().unwrap().contains("timed out"), "{rec}");
    let (st, _) = s.get(&format!("/api/exports/{id}/download")).await;
    assert_eq!(st, 409);
    // Progress is tracked under the export id.
    let (st, p) = s.get(&format!("/api/progress/{id}")).await;
    assert_eq!(st, 200, "{p}");
}
