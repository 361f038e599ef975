//! Source-byte caps of exports (issue 19, "amplification"): a small request naming big
//! stored sources is refused before anything is rendered, and the job checks again, so a
//! source that grew after the request was accepted cannot slip through. Batch zips are
//! staged on disk and nothing staged is left behind.

use super::{export_bytes, wait_final};
use crate::common::{TestServer, assert_error};
use serde_json::{Value, json};

/// Caps small enough for quick tests: 50 KB per source, 120 KB per batch.
fn small_caps(c: &mut hearth::Config) {
    c.export.jobs.max_source_bytes = 50_000;
    c.export.jobs.max_batch_source_bytes = 120_000;
}

fn doc(id: &str, bytes: usize) -> Value {
    json!({"id": id, "title": "t", "content": "x".repeat(bytes)})
}

#[tokio::test]
async fn a_small_request_naming_big_sources_is_refused_before_rendering() {
    let s = TestServer::start_with(small_caps).await;
    assert_eq!(s.post("/api/documents", doc("big", 60_000)).await.0, 201);
    assert_eq!(s.post("/api/documents", doc("mid", 30_000)).await.0, 201);

    // One source over the per-source cap, stored or inline.
    let (st, b) = s.post("/api/exports", json!({"format": "txt", "source_type": "document", "source_id": "big"})).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    assert_eq!(b["error"]["field"], "source_id", "{b}");
    let (st, b) = s.post("/api/exports", json!({"format": "txt", "source_type": "document", "source": doc("", 60_000)})).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    assert_eq!(b["error"]["field"], "source", "{b}");

    // A batch item over the per-source cap is named by its index.
    let batch = json!({"format": "txt", "batch": [
        {"source_type": "document", "source_id": "mid"},
        {"source_type": "document", "source_id": "big"},
    ]});
    let (st, b) = s.post("/api/exports", batch).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    assert_eq!(b["error"]["field"], "batch[1].source_id", "{b}");

    // The amplification: a tiny request naming one stored source many times.
    let items: Vec<Value> = (0..100).map(|_| json!({"source_type": "document", "source_id": "mid"})).collect();
    let request = json!({"format": "txt", "batch": items});
    assert!(request.to_string().len() < 6_000, "the request itself is small");
    let (st, b) = s.post("/api/exports", request).await;
    assert_eq!(assert_error(st, &b, 413), "payload_too_large");
    assert_eq!(b["error"]["field"], "batch", "{b}");
    assert!(b["error"]["message"].as_str().unwrap().contains("max_batch_source_bytes"), "{b}");
    let (_, list) = s.get("/api/exports").await;
    assert_eq!(list, json!([]), "nothing was accepted");

    // Within the caps, a batch is accepted and zipped.
    let items: Vec<Value> = (0..3).map(|_| json!({"source_type": "document", "source_id": "mid"})).collect();
    let (rec, bytes) = export_bytes(&s, json!({"format": "txt", "batch": items})).await;
    assert_eq!(rec["status"], "completed");
    let zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    assert_eq!(zip.len(), 3);
    let exports = s.data_dir.join("exports");
    let staged: Vec<String> = std::fs::read_dir(&exports)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp-"))
        .collect();
    assert!(staged.is_empty(), "no staging file is left behind: {staged:?}");
}

#[tokio::test]
async fn the_job_checks_again_a_source_that_grew_after_the_request() {
    let s = TestServer::start_with(small_caps).await;
    assert_eq!(s.post("/api/documents", doc("d", 10_000)).await.0, 201);
    // Hold the job until the source has grown past the cap.
    let (st, b) = s.post("/api/queues/default/pause", json!({})).await;
    assert_eq!(st, 200, "{b}");
    let items: Vec<Value> = (0..3).map(|_| json!({"source_type": "document", "source_id": "d"})).collect();
    let (st, created) = s.post("/api/exports", json!({"format": "txt", "batch": items})).await;
    assert_eq!(st, 202, "{created}");
    assert_eq!(s.post("/api/documents", doc("d", 45_000)).await.0, 201, "the source is replaced by a bigger one");
    let (st, b) = s.post("/api/queues/default/resume", json!({})).await;
    assert_eq!(st, 200, "{b}");
    let rec = wait_final(&s, created["job_id"].as_str().unwrap()).await;
    assert_eq!(rec["status"], "failed", "{rec}");
    assert!(rec["error"].as_str().unwrap().contains("max_batch_source_bytes"), "{rec}");
    let left: Vec<_> = std::fs::read_dir(s.data_dir.join("exports")).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(
        left.is_empty(),
        "a failed batch leaves no file, staged or stored: {:?}",
        left.iter().map(|e| e.file_name()).collect::<Vec<_>>()
    );
}
