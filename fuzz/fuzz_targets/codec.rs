//! The stored-record codec: every value hearth reads back from redb, decoded from
//! arbitrary bytes (a corrupt or foreign database file). Decoding must fail with an
//! error, never panic or allocate without bound, and whatever decodes must encode again
//! with a stable encoding.
//!
//! The first byte picks the stored type; the rest is the stored value. With
//! `HEARTH_FUZZ_SEEDS=<dir>` set, the target first writes one real encoding of each type
//! there (how `corpus/codec` was made).

#![no_main]

use hearth::fuzzing;
use hearth::store::codec::decode;
use hearth_fuzz::assert_stable_encoding;
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fn round_trip<T: Serialize + DeserializeOwned>(bytes: &[u8]) {
    if let Ok(v) = decode::<T>(bytes) {
        assert_stable_encoding(&v);
    }
}

/// One real stored value per type, as hearth writes it, prefixed by its selector byte.
fn seeds() -> Vec<(&'static str, u8, Vec<u8>)> {
    use chrono::{DateTime, Utc};
    use hearth::jobs::{Backoff, EnqueueRequest};
    use hearth::store::codec::encode;
    use serde_json::json;
    let now: DateTime<Utc> = DateTime::from_timestamp(1_780_000_000, 123_000_000).expect("time");
    let mut job = fuzzing::build_job(
        &Default::default(),
        EnqueueRequest {
            backoff: Some(Backoff::default()),
            depends_on: vec!["a".into()],
            unique_key: Some("k".into()),
            ..EnqueueRequest::new("send-email", json!({"to": "a@example.com", "n": [1, 2.5, null]}))
        },
        now,
    )
    .expect("job");
    job.attempts = 1;
    job.errors.push(hearth::jobs::JobAttemptError { attempt: 1, error: "boom".into(), at: now });
    let schedule: hearth::jobs::Schedule = serde_json::from_value(json!({
        "name": "nightly", "cron": "0 3 * * *", "timezone": "Europe/Paris",
        "job": {"name": "report", "payload": {"x": 1}, "queue": null, "priority": 5, "max_attempts": null, "timeout": null},
        "next_run": now, "last_run": null, "last_job_id": null, "source": "api", "created_at": now,
    }))
    .expect("schedule");
    let progress = hearth::progress::machine::new_record(
        hearth::progress::NewProgress::with_stages(Some("p1".into()), &["fetch", "render"]).metadata(json!({"k": "v"})),
        now,
    )
    .expect("progress");
    let prefs: hearth::notify::Preferences = serde_json::from_value(
        json!({"user_id": "u1", "email": "u1@example.com", "channels": {"error": ["in_app", "email"]}, "muted_types": ["info"]}),
    )
    .expect("preferences");
    let email = hearth::notify::RenderedEmail {
        to: "u1@example.com".into(),
        subject: "Hi".into(),
        text: "t".into(),
        html: Some("<p>t</p>".into()),
    };
    let export = hearth::export::ExportJob {
        id: "e1".into(),
        source_type: "transcript".into(),
        source_id: Some("t1".into()),
        format: "srt".into(),
        batch: false,
        template: "default".into(),
        filename: "t1.srt".into(),
        content_type: "text/plain".into(),
        options: Default::default(),
        status: hearth::export::ExportStatus::Completed,
        progress: 100.0,
        size: Some(10),
        etag: Some("abc".into()),
        error: None,
        user_id: None,
        notify_user_id: Some("u1".into()),
        webhook_url: None,
        created_at: now,
        started_at: Some(now),
        finished_at: Some(now),
    };
    let work = hearth::export::record::Work {
        items: vec![hearth::export::record::WorkItem {
            source_type: "document".into(),
            source_id: None,
            inline: Some(r#"{"title":"d","content":"c"}"#.into()),
            filename: "d.txt".into(),
        }],
        webhook_secret: Some("s".into()),
    };
    let transcript = r#"{"id":"t1","title":"T","segments":[{"start":0.0,"end":1.5,"speaker":"A","text":"hello"}]}"#.to_string();
    let doc: hearth::search::DocRecord = serde_json::from_value(json!({
        "doc": 7, "content": "hello world", "metadata": {"author": "ann", "year": 2024},
        "chunks": [[0, 5], [6, 11]], "hashes": [vec![0u8; 16], vec![1u8; 16]], "model": "m", "indexed_at": 1_780_000_000_000i64,
    }))
    .expect("doc record");
    let mut vectors = 2u16.to_le_bytes().to_vec();
    vectors.extend(hearth::search::embedded::tables::encode_vectors(&[vec![0.5, -1.0], vec![0.25, 2.0]]));
    let entry = |data: Vec<u8>| fuzzing::BackendEntry {
        value: hearth::cache::CacheValue::with_content_type(data, "text/plain"),
        expires_ms: 1_780_000_000_000,
        tags: vec!["t".into()],
    };
    let notification: hearth::notify::Notification = serde_json::from_value(json!({
        "id": "n1", "type": "error", "title": "T", "message": "M", "user_id": "u1", "channels": ["in_app", "email"],
        "action_url": "https://example.com/x", "action_label": "Open", "template": null, "data": {"a": 1},
        "read": true, "read_at": now, "created_at": now,
        "deliveries": {"email": {"state": "failed", "attempts": 2, "error": "smtp", "updated_at": now}},
    }))
    .expect("notification");
    vec![
        ("job", 0, encode(&job).expect("encode")),
        ("schedule", 1, encode(&schedule).expect("encode")),
        ("progress", 2, encode(&progress).expect("encode")),
        ("preferences", 3, encode(&prefs).expect("encode")),
        ("email", 4, encode(&email).expect("encode")),
        ("outbox", 5, encode(&vec!["email".to_string(), "webhook".to_string()]).expect("encode")),
        ("export_job", 6, encode(&export).expect("encode")),
        ("export_work", 7, encode(&work).expect("encode")),
        ("source_json", 8, encode(&transcript).expect("encode")),
        ("search_doc", 9, encode(&doc).expect("encode")),
        ("search_vectors", 10, vectors),
        ("cache_plain", 11, fuzzing::encode_cache_record(&entry(b"hello".to_vec()), None)),
        ("cache_zstd", 11, fuzzing::encode_cache_record(&entry(vec![b'a'; 4096]), Some(16))),
        ("notification", 12, fuzzing::encode_notification(3, notification).expect("encode")),
    ]
}

fn write_seeds() {
    let Some(dir) = std::env::var_os("HEARTH_FUZZ_SEEDS") else { return };
    std::fs::create_dir_all(&dir).expect("seed dir");
    for (name, selector, bytes) in seeds() {
        let mut data = vec![selector];
        data.extend(bytes);
        std::fs::write(std::path::Path::new(&dir).join(name), data).expect("write seed");
    }
}

fuzz_target!(init: write_seeds(), |data: &[u8]| {
    let Some((&which, bytes)) = data.split_first() else { return };
    match which % 13 {
        // jobs_jobs, jobs_schedules
        0 => round_trip::<hearth::jobs::Job>(bytes),
        1 => round_trip::<hearth::jobs::Schedule>(bytes),
        // progress_records
        2 => round_trip::<hearth::progress::ProgressRecord>(bytes),
        // notification preferences, rendered emails, outbox entries (channel lists)
        3 => round_trip::<hearth::notify::Preferences>(bytes),
        4 => round_trip::<hearth::notify::RenderedEmail>(bytes),
        5 => round_trip::<Vec<String>>(bytes),
        // export_jobs, export_work, stored sources (JSON text)
        6 => round_trip::<hearth::export::ExportJob>(bytes),
        7 => round_trip::<hearth::export::record::Work>(bytes),
        8 => round_trip::<String>(bytes),
        // search_docs, then its vectors with the record's chunk count
        9 => {
            let Ok(rec) = decode::<hearth::search::DocRecord>(bytes) else { return };
            assert_stable_encoding(&rec);
            for i in 0..rec.chunks.len().min(64) {
                let _ = rec.chunk_text(i);
            }
        }
        10 => {
            // search_vectors: [u16 LE chunk count][blob]
            let Some((n, blob)) = bytes.split_first_chunk::<2>() else { return };
            let n = u16::from_le_bytes(*n) as usize;
            if let Ok(vs) = hearth::search::embedded::tables::decode_vectors(blob, n) {
                assert_eq!(vs.len(), n, "decoded vector count");
                // With no chunks the blob is not read at all (a document without vectors).
                if n > 0 {
                    assert_eq!(hearth::search::embedded::tables::encode_vectors(&vs), blob, "vectors round trip");
                }
            }
        }
        // the cache's L2 record and the notification store's record have their own framing
        11 => {
            if let Ok(entry) = fuzzing::decode_cache_record(bytes) {
                let once = fuzzing::encode_cache_record(&entry, None);
                let again = fuzzing::decode_cache_record(&once).expect("a cache record hearth wrote decodes");
                assert_eq!(fuzzing::encode_cache_record(&again, None), once, "cache record encoding is stable");
            }
        }
        _ => {
            if let Ok((seq, n)) = fuzzing::decode_notification(bytes) {
                let once = fuzzing::encode_notification(seq, n).expect("a decoded notification encodes");
                let (seq, n) = fuzzing::decode_notification(&once).expect("a notification hearth wrote decodes");
                assert_eq!(fuzzing::encode_notification(seq, n).expect("encodes"), once, "notification encoding is stable");
            }
        }
    }
});
