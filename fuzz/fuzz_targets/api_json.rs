//! The JSON request types of the HTTP API whose validation is a pure function: each body
//! is parsed exactly as the HTTP layer parses it, then validated as its handler does.
//! Either step may reject the body, but only with a 4xx naming the field — never a panic
//! or a 5xx. (Request types validated inside a service with state, such as notification
//! sends, are covered end to end by the `api_routes` target.)
//!
//! The first byte picks the request type; the rest is the body.

#![no_main]

use chrono::{DateTime, Duration, Utc};
use hearth::export::ExportRequest;
use hearth::export::sources::from_json;
use hearth::fuzzing::{build_job, check_claim, check_job_list};
use hearth::http::error::parse_query;
use hearth::jobs::config::JobQueueConfig;
use hearth::jobs::schedule::{next_after, parse_cron};
use hearth::jobs::{ClaimRequest, EnqueueRequest, ListQuery, ScheduleRequest};
use hearth::progress::machine::{Finish, advance, apply_update, finish, new_record};
use hearth::progress::{NewProgress, ProgressRecord, ProgressUpdate};
use hearth::search::config::SearchConfig;
use hearth::search::model::BatchRequest;
use hearth::search::{Document, SearchRequest};
use hearth_fuzz::{assert_client_error, parse_body};
use libfuzzer_sys::fuzz_target;

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_780_000_000, 0).expect("a fixed clock")
}

/// Ok, or a client error naming the field.
fn ok_or_client<T, E: Into<hearth::ApiError>>(r: Result<T, E>) -> Option<T> {
    r.map_err(assert_client_error).ok()
}

fn enqueue(req: EnqueueRequest) {
    ok_or_client(build_job(&JobQueueConfig::default(), req, now()));
}

fn schedule(req: ScheduleRequest) {
    // The schedule's own checks are private to the job queue; its arithmetic is this.
    let (Ok(cron), Ok(tz)) = (parse_cron(&req.cron), req.timezone.as_deref().unwrap_or("UTC").parse::<chrono_tz::Tz>()) else { return };
    let _ = next_after(&cron, tz, now());
}

fn export(req: ExportRequest) {
    ok_or_client(hearth::export::request::check_webhook(req.webhook_url.as_deref(), req.webhook_secret.as_deref(), false));
    ok_or_client(req.options.validate());
    let mut sources: Vec<(String, Option<serde_json::Value>, Option<String>)> =
        req.batch.into_iter().map(|b| (b.source_type, b.source, b.filename)).collect();
    sources.push((req.source_type.unwrap_or_default(), req.source, req.filename));
    for (kind, inline, filename) in sources {
        ok_or_client(hearth::export::request::file_name("filename", filename.as_deref(), &["export"], "txt"));
        let Some(v) = inline else { continue };
        // The field of an inline source's error is relative to `source` (the handler
        // prefixes it, and names `source` itself for an empty one): only its status counts here.
        let status = match kind.as_str() {
            "transcript" => from_json::<hearth::export::Transcript>(v).err().map(|e| hearth::ApiError::from(e).status()),
            _ => from_json::<hearth::export::Document>(v).err().map(|e| hearth::ApiError::from(e).status()),
        };
        assert!(status.is_none_or(|s| (400..500).contains(&s)), "an inline source answered {status:?}");
    }
}

/// A progress with three stages, half way through the first.
fn open_progress() -> ProgressRecord {
    let rec = new_record(NewProgress::with_stages(Some("p".into()), &["a", "b", "c"]), now()).expect("a valid progress");
    let half = ProgressUpdate { progress: Some(50.0), ..Default::default() };
    apply_update(&rec, &half, now()).expect("a valid update").0
}

/// Applies `u` at three later times (ETA arithmetic), then moves on and finishes.
fn progress_update(u: ProgressUpdate) {
    let mut rec = open_progress();
    for secs in [0, 1, 86_400 * 365] {
        match apply_update(&rec, &u, now() + Duration::seconds(secs)) {
            Ok((next, _)) => rec = next,
            Err(e) => return assert_client_error(e),
        }
    }
    if let Some(next) = ok_or_client(advance(&rec, now())) {
        rec = next;
    }
    ok_or_client(finish(&rec, Finish::Complete(None), now()));
}

fn new_progress(req: NewProgress) {
    let Some(rec) = ok_or_client(new_record(req, now())) else { return };
    let u = ProgressUpdate { progress: Some(10.0), ..Default::default() };
    if let Some((rec, _)) = ok_or_client(apply_update(&rec, &u, now() + Duration::seconds(5))) {
        ok_or_client(finish(&rec, Finish::Fail("fuzz".into()), now()));
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else { return };
    let search = SearchConfig::default();
    match which % 12 {
        0 => parse_body::<EnqueueRequest>(body).into_iter().for_each(enqueue),
        1 => parse_body::<Vec<EnqueueRequest>>(body).into_iter().flatten().for_each(enqueue),
        2 => drop(parse_body::<ClaimRequest>(body).map(|r| ok_or_client(check_claim(&r)))),
        3 => {
            // `GET /api/jobs?...`: the query string.
            let Ok(q) = std::str::from_utf8(body) else { return };
            match parse_query::<ListQuery>(q) {
                Ok(q) => drop(ok_or_client(check_job_list(q))),
                Err(e) => assert_client_error(e),
            }
        }
        4 => parse_body::<ScheduleRequest>(body).into_iter().for_each(schedule),
        5 => parse_body::<NewProgress>(body).into_iter().for_each(new_progress),
        6 => parse_body::<ProgressUpdate>(body).into_iter().for_each(progress_update),
        7 => drop(parse_body::<SearchRequest>(body).map(|r| ok_or_client(r.validate(&search)))),
        8 => drop(parse_body::<Document>(body).map(|d| ok_or_client(d.validate("", &search)))),
        9 => {
            for (i, d) in parse_body::<BatchRequest>(body).into_iter().flat_map(|b| b.documents).enumerate() {
                ok_or_client(d.validate(&format!("documents[{i}]."), &search));
            }
        }
        10 => parse_body::<ExportRequest>(body).into_iter().for_each(export),
        _ => {
            // Notification bodies: parsed here, validated by the service (see `api_routes`).
            let _ = parse_body::<hearth::notify::SendRequest>(body);
            let _ = parse_body::<hearth::notify::BatchSendRequest>(body);
            if let Some(p) = parse_body::<hearth::notify::PreferencesInput>(body) {
                let _ = p;
            }
        }
    }
});
