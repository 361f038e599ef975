//! Integration tests of the export module: every format judged by an independent tool
//! (see `export/checkers.rs`), the job life cycle, storage safety and bad input.

mod caps;
pub(crate) mod checkers;
mod plugins;

use crate::common::{TestServer, assert_error, hearth_bin};
use checkers::{check_pdf, check_srt, check_vtt, read_docx};
use serde_json::{Value, json};
use std::time::Duration;

const GREETING: &str = "Grüße aus München, café";

/// A transcript with non-ASCII text, unsorted segments, a multi-line segment, markup
/// characters and a segment after the first hour.
fn transcript(id: &str) -> Value {
    json!({
        "id": id,
        "title": "Interview über Grüße",
        "language": "de",
        "segments": [
            {"start": 3725.25, "end": 3727.0, "speaker": "Ben", "text": "Über eine Stunde später."},
            {"start": 0.0, "end": 2.5, "speaker": "Anna", "text": GREETING},
            {"start": 2.5, "end": 4.125, "speaker": "Ben", "text": "Zeile eins\nZeile zwei"},
            {"start": 4.2, "end": 6.0, "text": "a < b & c --> d"},
        ],
        "metadata": {"source": "test"}
    })
}

/// A transcript of `n` segments (long enough to paginate a PDF).
fn long_transcript(n: usize) -> Value {
    let segments: Vec<Value> = (0..n)
        .map(|i| json!({"start": i as f64 * 2.0, "end": i as f64 * 2.0 + 1.5, "speaker": format!("S{}", i % 3), "text": format!("Satz {i}: {GREETING}, und noch ein paar Wörter zum Umbrechen der Zeile.")}))
        .collect();
    json!({"title": "Lang", "segments": segments})
}

/// Waits until the export is final; returns its record.
async fn wait_final(s: &TestServer, id: &str) -> Value {
    for _ in 0..1000 {
        let (st, body) = s.get(&format!("/api/exports/{id}")).await;
        assert_eq!(st, 200, "{body}");
        if ["completed", "failed", "cancelled"].contains(&body["status"].as_str().unwrap()) {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("export {id} did not finish");
}

/// Creates an export (202) and returns its id.
async fn start(s: &TestServer, body: Value) -> String {
    let (st, resp) = s.post("/api/exports", body).await;
    assert_eq!(st, 202, "{resp}");
    assert_eq!(resp["status"], "pending");
    resp["job_id"].as_str().unwrap().to_string()
}

/// Exports, waits for completion and downloads; checks the download headers.
async fn export_bytes(s: &TestServer, body: Value) -> (Value, Vec<u8>) {
    let id = start(s, body).await;
    let rec = wait_final(s, &id).await;
    assert_eq!(rec["status"], "completed", "{rec}");
    assert_eq!(rec["progress"], 100.0);
    let r = s.client.get(s.url(&format!("/api/exports/{id}/download"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let bytes = r.bytes().await.unwrap().to_vec();
    assert_eq!(h["content-type"].to_str().unwrap(), rec["content_type"].as_str().unwrap());
    assert_eq!(h["content-length"].to_str().unwrap(), bytes.len().to_string());
    assert_eq!(rec["size"].as_u64().unwrap(), bytes.len() as u64);
    let cd = h["content-disposition"].to_str().unwrap();
    assert!(cd.starts_with("attachment; filename=\""), "{cd}");
    assert!(!cd.contains('/'), "{cd}");
    assert_eq!(h["etag"].to_str().unwrap(), rec["etag"].as_str().unwrap());
    (rec, bytes)
}

#[tokio::test]
async fn srt_from_stored_transcript_round_trips_through_python_srt() {
    let s = TestServer::start().await;
    let (st, saved) = s.post("/api/transcripts", transcript("t-srt")).await;
    assert_eq!(st, 201, "{saved}");
    assert_eq!(saved["segments"][0]["start"], 0.0, "segments sorted on save");
    let (st, got) = s.get("/api/transcripts/t-srt").await;
    assert_eq!((st, &got), (200, &saved));

    let (rec, bytes) =
        export_bytes(&s, json!({"source_type": "transcript", "source_id": "t-srt", "format": "srt", "filename": "Grüße"})).await;
    assert_eq!(rec["filename"], "Grüße.srt");
    assert_eq!(check_srt(&bytes), 4);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("1\n00:00:00,000 --> 00:00:02,500\nAnna: Grüße aus München, café\n\n2\n"), "{text}");
    assert!(text.contains("4\n01:02:05,250 --> 01:02:07,000\nBen: Über eine Stunde später.\n"), "{text}");

    // Hours beyond two digits stay valid for both checkers.
    let far = json!({"title": "far", "segments": [{"start": 360_000.5, "end": 360_002.0, "text": "hundert Stunden"}]});
    let (_, srt) = export_bytes(&s, json!({"source_type": "transcript", "source": far, "format": "srt"})).await;
    assert_eq!(check_srt(&srt), 1);
    assert!(String::from_utf8_lossy(&srt).contains("100:00:00,500 --> 100:00:02,000"));
    let (_, vtt) = export_bytes(&s, json!({"source_type": "transcript", "source": far, "format": "vtt"})).await;
    assert_eq!(check_vtt(&vtt), 1);

    // Conditional download.
    let id = rec["id"].as_str().unwrap();
    let r = s
        .client
        .get(s.url(&format!("/api/exports/{id}/download")))
        .header("if-none-match", rec["etag"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 304);
}

#[tokio::test]
async fn vtt_from_inline_source_passes_webvtt_parser() {
    let s = TestServer::start().await;
    let (_, bytes) = export_bytes(&s, json!({"source_type": "transcript", "source": transcript(""), "format": "vtt"})).await;
    assert_eq!(check_vtt(&bytes), 4);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.starts_with("WEBVTT"));
    assert!(text.contains("<v Anna>Grüße aus München, café"));
    assert!(text.contains("01:02:05.250 --> 01:02:07.000"));
}

#[tokio::test]
async fn docx_has_heading_styles_text_and_table_layout() {
    let s = TestServer::start().await;
    let doc = json!({"id": "d1", "title": "Bericht", "content": format!("# Überblick\n\n{GREETING}.\n\n## Details\n\nZweiter Absatz.")});
    let (st, _) = s.post("/api/documents", doc).await;
    assert_eq!(st, 201);
    let (_, bytes) = export_bytes(&s, json!({"source_type": "document", "source_id": "d1", "format": "docx"})).await;
    let v = read_docx(&bytes);
    let p: Vec<(&str, &str)> = v.paragraphs.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
    assert_eq!(
        p,
        vec![
            ("Title", "Bericht"),
            ("Heading 1", "Überblick"),
            ("Normal", "Grüße aus München, café."),
            ("Heading 2", "Details"),
            ("Normal", "Zweiter Absatz.")
        ]
    );
    assert_eq!(v.header, vec!["Bericht"]);
    assert!(v.footer[0].starts_with("Page "), "{:?}", v.footer);

    let (_, bytes) =
        export_bytes(&s, json!({"source_type": "transcript", "source": transcript(""), "format": "docx", "options": {"layout": "table"}}))
            .await;
    let v = read_docx(&bytes);
    assert_eq!(v.tables.len(), 1);
    assert_eq!(v.tables[0][0], vec!["Start", "End", "Speaker", "Text"]);
    assert_eq!(v.tables[0][1], vec!["0:00", "0:02", "Anna", GREETING]);
    assert_eq!(v.tables[0].len(), 5);

    let (_, bytes) = export_bytes(&s, json!({"source_type": "transcript", "source": transcript(""), "format": "docx"})).await;
    let v = read_docx(&bytes);
    assert_eq!(v.paragraphs[1], ("Normal".to_string(), format!("[0:00] Anna: {GREETING}")));
}

#[tokio::test]
async fn pdf_passes_qpdf_and_pdftotext_with_pages_and_small_font_subset() {
    let s = TestServer::start().await;
    let (_, bytes) = export_bytes(&s, json!({"source_type": "transcript", "source": transcript(""), "format": "pdf"})).await;
    let (pages, text) = check_pdf(&bytes);
    assert_eq!(pages, 1);
    assert!(text.contains(GREETING), "{text}");
    assert!(text.contains("Über eine Stunde später."), "{text}");
    assert!(text.contains("Page 1 of 1"), "{text}");
    assert!(bytes.len() < 60_000, "{} bytes: the font is not subset", bytes.len());

    let (_, bytes) = export_bytes(
        &s,
        json!({"source_type": "transcript", "source": long_transcript(400), "format": "pdf", "options": {"page_size": "letter"}}),
    )
    .await;
    let (pages, text) = check_pdf(&bytes);
    assert!(pages >= 5, "{pages} pages");
    assert!(text.contains(&format!("Page 2 of {pages}")), "no page numbers");
    assert!(text.contains("Satz 399:"), "last segment missing");
}

#[tokio::test]
async fn txt_md_json_keep_non_ascii_and_options() {
    let s = TestServer::start().await;
    let src = transcript("");
    let (_, txt) = export_bytes(&s, json!({"source_type": "transcript", "source": src, "format": "txt"})).await;
    let txt = String::from_utf8(txt).unwrap();
    assert!(txt.contains(&format!("[0:00 - 0:02] Anna: {GREETING}\n")), "{txt}");
    let (_, txt) = export_bytes(
        &s,
        json!({"source_type": "transcript", "source": src, "format": "txt", "options": {"timestamps": false, "speakers": false}}),
    )
    .await;
    let txt = String::from_utf8(txt).unwrap();
    assert!(txt.contains(&format!("\n{GREETING}\n")) && !txt.contains("Anna"), "{txt}");
    let (_, md) = export_bytes(&s, json!({"source_type": "transcript", "source": src, "format": "md"})).await;
    let md = String::from_utf8(md).unwrap();
    assert!(md.starts_with("# Interview über Grüße\n"), "{md}");
    assert!(md.contains(&format!("**Anna:** {GREETING}")), "{md}");
    let (_, js) = export_bytes(&s, json!({"source_type": "transcript", "source": src, "format": "json"})).await;
    let v: Value = serde_json::from_slice(&js).unwrap();
    assert_eq!(v["segments"][0]["text"], GREETING);
    assert_eq!(v["metadata"]["source"], "test");
}

#[tokio::test]
async fn bad_input_is_refused_naming_the_field() {
    let s = TestServer::start().await;
    let src = transcript("");
    let cases = [
        (json!({"source_type": "transcript", "source": src, "format": "exe"}), 400, "format"),
        (json!({"source_type": "video", "source_id": "x", "format": "srt"}), 400, "source_type"),
        (json!({"source_type": "transcript", "format": "srt"}), 400, "source_id"),
        (json!({"source_type": "transcript", "source_id": "nope", "format": "srt"}), 400, "source_id"),
        (json!({"format": "srt", "source": src}), 400, "source_type"),
        (json!({"source_type": "transcript", "source": src, "format": "srt", "filename": "../../etc/passwd"}), 400, "filename"),
        (json!({"source_type": "transcript", "source": src, "format": "srt", "filename": "a/b"}), 400, "filename"),
        (json!({"source_type": "transcript", "source": src, "format": "txt", "template": "../x"}), 400, "template"),
        (json!({"source_type": "transcript", "source": src, "format": "txt", "template": "missing"}), 400, "template"),
        (json!({"source_type": "transcript", "source": src, "format": "pdf", "options": {"font_size": 100}}), 400, "options.font_size"),
        (json!({"source_type": "transcript", "source": src, "format": "pdf", "options": {"colour": 1}}), 400, "options"),
        (json!({"source_type": "document", "source": {"title": "d", "content": "x"}, "format": "srt"}), 400, "format"),
        (
            json!({"source_type": "transcript", "source": {"title": "t", "segments": [{"start": 1, "end": 0.5, "text": "x"}]}, "format": "srt"}),
            400,
            "source.segments[0].end",
        ),
        (
            json!({"source_type": "transcript", "source": {"title": "t", "segments": [{"start": -1, "end": 0.5, "text": "x"}]}, "format": "srt"}),
            400,
            "source.segments[0].start",
        ),
        (
            json!({"source_type": "transcript", "source": {"title": "t", "segments": [{"start": 0, "end": 0.5, "text": " "}]}, "format": "srt"}),
            400,
            "source.segments[0].text",
        ),
        (json!({"source_type": "transcript", "source": src, "format": "srt", "webhook_url": "ftp://x"}), 400, "webhook_url"),
    ];
    for (body, status, field) in cases {
        let (st, resp) = s.post("/api/exports", body.clone()).await;
        assert_error(st, &resp, status);
        let got = resp["error"]["field"].as_str().unwrap_or("");
        assert!(got.starts_with(field), "for {body}: field {got:?}, expected {field}; {resp}");
    }
    let (st, resp) = s
        .post(
            "/api/transcripts",
            json!({"title": "t", "segments": [{"start": 0, "end": 1, "text": "ok"}, {"start": 2, "end": 2, "text": "x"}]}),
        )
        .await;
    assert_error(st, &resp, 400);
    assert_eq!(resp["error"]["field"], "segments[1].end");
    let (st, resp) = s.post("/api/documents", json!({"title": "t"})).await;
    assert_error(st, &resp, 400);
    assert_eq!(resp["error"]["field"], "content");
    let (st, resp) = s.get("/api/exports/nope").await;
    assert_error(st, &resp, 404);
    let (st, resp) = s.get("/api/exports?status=done").await;
    assert_error(st, &resp, 400);
    // Nothing was ever written outside (or inside) the export directory.
    let dir = s.data_dir.join("exports");
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().count() == 0);
}

#[tokio::test]
async fn export_above_max_size_fails_with_reason_and_leaves_no_file() {
    let s = TestServer::start_with(|c| c.export.jobs.max_size = 200).await;
    let id = start(&s, json!({"source_type": "transcript", "source": long_transcript(50), "format": "txt"})).await;
    let rec = wait_final(&s, &id).await;
    assert_eq!(rec["status"], "failed");
    assert!(rec["error"].as_str().unwrap().contains("max_size"), "{rec}");
    let (st, resp) = s.get(&format!("/api/exports/{id}/download")).await;
    assert_error(st, &resp, 409);
    let dir = s.data_dir.join("exports");
    assert!(!dir.exists() || std::fs::read_dir(&dir).unwrap().count() == 0, "a file was left behind");
}

#[tokio::test]
async fn pending_export_is_409_on_download_and_delete_cancels_it() {
    // No worker pools: the job stays pending.
    let s = TestServer::start_with(|c| c.job_queue.workers.clear()).await;
    let id = start(&s, json!({"source_type": "transcript", "source": transcript(""), "format": "srt"})).await;
    let (st, rec) = s.get(&format!("/api/exports/{id}")).await;
    assert_eq!((st, rec["status"].as_str()), (200, Some("pending")));
    let (st, resp) = s.get(&format!("/api/exports/{id}/download")).await;
    assert_eq!(assert_error(st, &resp, 409), "conflict");
    let (st, resp) = s.delete(&format!("/api/exports/{id}")).await;
    assert_eq!(st, 200, "{resp}");
    assert_eq!(resp, json!({"success": true, "status": "cancelled"}));
    let (_, rec) = s.get(&format!("/api/exports/{id}")).await;
    assert_eq!(rec["status"], "cancelled");
    let (st, job) = s.get(&format!("/api/jobs/{id}")).await;
    assert_eq!((st, job["status"].as_str()), (200, Some("cancelled")), "{job}");
}

#[tokio::test]
async fn list_filters_and_delete_removes_the_file() {
    let s = TestServer::start().await;
    let (st, _) = s.post("/api/documents", json!({"id": "d", "title": "D", "content": GREETING})).await;
    assert_eq!(st, 201);
    let (a, _) = export_bytes(&s, json!({"source_type": "transcript", "source": transcript(""), "format": "srt"})).await;
    let (b, _) = export_bytes(&s, json!({"source_type": "document", "source_id": "d", "format": "txt"})).await;
    let (_, all) = s.get("/api/exports").await;
    let ids: Vec<&str> = all.as_array().unwrap().iter().map(|e| e["id"].as_str().unwrap()).collect();
    assert_eq!(ids, vec![b["id"].as_str().unwrap(), a["id"].as_str().unwrap()], "newest first");
    let (_, docs) = s.get("/api/exports?source_type=document&status=completed").await;
    assert_eq!(docs.as_array().unwrap().len(), 1);
    assert_eq!(docs[0]["id"], b["id"]);
    let (_, none) = s.get("/api/exports?status=failed").await;
    assert_eq!(none, json!([]));

    let id = a["id"].as_str().unwrap();
    let file = s.data_dir.join("exports").join(format!("{id}.srt"));
    assert!(file.is_file());
    let (st, resp) = s.delete(&format!("/api/exports/{id}")).await;
    assert_eq!((st, resp["status"].as_str()), (200, Some("completed")));
    assert!(!file.exists());
    let (st, _) = s.get(&format!("/api/exports/{id}")).await;
    assert_eq!(st, 404);
    let (st, _) = s.delete("/api/transcripts/none").await;
    assert_eq!(st, 404);
    let (st, _) = s.delete("/api/documents/d").await;
    assert_eq!(st, 200);
}

#[tokio::test]
async fn batch_exports_one_zip_with_a_file_per_source() {
    let s = TestServer::start().await;
    s.post("/api/transcripts", transcript("t1")).await;
    let body = json!({
        "format": "srt",
        "filename": "alle",
        "batch": [
            {"source_type": "transcript", "source_id": "t1"},
            {"source_type": "transcript", "source": transcript(""), "filename": "inline"},
            {"source_type": "transcript", "source": transcript(""), "filename": "inline"},
        ]
    });
    let (rec, bytes) = export_bytes(&s, body).await;
    assert_eq!(rec["filename"], "alle.zip");
    assert_eq!(rec["content_type"], "application/zip");
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
    let mut names: Vec<String> = zip.file_names().map(String::from).collect();
    names.sort();
    assert_eq!(names, vec!["inline-2.srt", "inline.srt", "transcript_t1.srt"]);
    let mut srt = Vec::new();
    std::io::Read::read_to_end(&mut zip.by_name("transcript_t1.srt").unwrap(), &mut srt).unwrap();
    assert_eq!(check_srt(&srt), 4);
    let (st, resp) = s.post("/api/exports", json!({"format": "srt", "batch": [{"source_type": "transcript", "source_id": "zz"}]})).await;
    assert_error(st, &resp, 400);
    assert_eq!(resp["error"]["field"], "batch[0].source_id");
}

/// A one-shot HTTP receiver: returns (headers, body) of the first POST.
async fn receiver() -> (String, tokio::sync::oneshot::Receiver<(axum::http::HeaderMap, String)>) {
    use axum::{Router, routing::post};
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = std::sync::Arc::new(parking_lot::Mutex::new(Some(tx)));
    let app = Router::new().route(
        "/hook",
        post(move |headers: axum::http::HeaderMap, body: String| {
            let tx = tx.clone();
            async move {
                if let Some(tx) = tx.lock().take() {
                    let _ = tx.send((headers, body));
                }
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, rx)
}

#[tokio::test]
async fn completion_notifies_the_user_and_posts_a_signed_webhook() {
    // The receiver listens on loopback, which caller-chosen URLs may reach only with
    // outbound.allow_private (local development).
    let s = TestServer::start_with(|c| c.outbound.allow_private = true).await;
    let (url, rx) = receiver().await;
    let id = start(
        &s,
        json!({"source_type": "transcript", "source": transcript(""), "format": "vtt", "notify_user_id": "u1", "webhook_url": url, "webhook_secret": "s3cret"}),
    )
    .await;
    assert_eq!(wait_final(&s, &id).await["status"], "completed");
    let (headers, body) = tokio::time::timeout(Duration::from_secs(20), rx).await.expect("webhook delivered").unwrap();
    assert_eq!(headers["x-hearth-event"], "export.completed");
    let ts: i64 = headers["x-hearth-timestamp"].to_str().unwrap().parse().unwrap();
    assert_eq!(headers["x-hearth-signature"].to_str().unwrap(), hearth::webhooks::signature("s3cret", ts, body.as_bytes()));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"]["id"], id.as_str());
    assert_eq!(v["data"]["status"], "completed");
    assert!(!body.contains("s3cret"), "the secret leaked into the body");

    let (st, feed) = s.get("/api/notifications?user_id=u1").await;
    assert_eq!(st, 200, "{feed}");
    let n = feed.as_array().unwrap().iter().find(|n| n["title"] == "Export ready").unwrap_or_else(|| panic!("{feed}"));
    assert!(n["action_url"].as_str().unwrap().ends_with(&format!("/api/exports/{id}/download")));
}

#[tokio::test]
async fn cli_exports_without_a_server() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("transcript.json");
    std::fs::write(&input, transcript("cli").to_string()).unwrap();
    for (format, out) in [("srt", "out.srt"), ("pdf", "out.pdf"), ("docx", "out.docx")] {
        let output = dir.path().join(out);
        let st = std::process::Command::new(hearth_bin())
            .current_dir(dir.path())
            .args(["export", "--format", format, "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output)
            .status()
            .unwrap();
        assert!(st.success(), "hearth export --format {format} failed");
        let bytes = std::fs::read(&output).unwrap();
        match format {
            "srt" => assert_eq!(check_srt(&bytes), 4),
            "pdf" => assert!(check_pdf(&bytes).1.contains(GREETING)),
            _ => assert_eq!(read_docx(&bytes).paragraphs[0].1, "Interview über Grüße"),
        }
    }
    let out = std::process::Command::new(hearth_bin())
        .current_dir(dir.path())
        .args(["export", "--format", "bogus", "--input"])
        .arg(&input)
        .args(["--output", "x"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("format"));
}
