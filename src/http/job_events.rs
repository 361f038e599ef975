//! The live job event stream: `GET /api/jobs/events` (SSE) and `/ws/jobs` (WebSocket)
//! carry every step of every job — `job.enqueued`, `job.started`, `job.completed`,
//! `job.failed`, `job.retrying`, `job.dead`, `job.cancelled`, `job.retried` — as a small
//! summary (never the payload or result), optionally only for some queues.
//!
//! Both read the event bus the jobs facade reports to (`jobs/report.rs`). A reader that
//! falls behind the bus gets one `resync` event (`{"skipped": n}`, 0 when unknown) in
//! place of the events it missed, and should re-read `GET /api/queues` and the job lists
//! it shows. Service credentials only (API keys, read-only ones included, or auth off):
//! user tokens get 403.

use super::AppState;
use super::auth::Principal;
use super::error::{ApiResult, Query};
use super::limits::StreamPermit;
use super::stream;
use crate::error::{ApiError, ErrorCode};
use crate::events::{Event, RecvError, Subscription};
use crate::jobs::Job;
use axum::{
    Extension,
    extract::{
        State,
        ws::{Message, WebSocketUpgrade, rejection::WebSocketUpgradeRejection},
    },
    response::{Response, sse::Event as SseEvent},
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of the job event stream.
pub fn routes() -> OpenApiRouter<AppState> {
    // `JobActivity` is named by the routes' descriptions only, so it is listed here.
    let components = utoipa::openapi::ComponentsBuilder::new().schema_from::<JobActivity>().build();
    let doc = utoipa::openapi::OpenApiBuilder::new().components(Some(components)).build();
    OpenApiRouter::with_openapi(doc).routes(routes!(events)).routes(routes!(ws))
}

/// Most queues one stream may filter on.
const MAX_QUEUES: usize = 100;

/// Query of both stream routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamParams {
    /// Only jobs of these queues, comma-separated (default: every queue).
    pub queue: Option<String>,
    /// Activity mode: instead of one event per step, one `jobs.activity` event (a
    /// [`JobActivity`]) every `every_ms` milliseconds in which anything happened, counting
    /// the steps per queue — what a dashboard's overview needs, at a fixed cost however
    /// busy the queues are. From 100 to 60000.
    #[param(minimum = 100, maximum = 60000)]
    pub every_ms: Option<u64>,
}

/// Bounds of `every_ms`.
const EVERY_MS: std::ops::RangeInclusive<u64> = 100..=60_000;

/// One job event as the streams send it (`data` of an event named after the topic).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobEvent {
    /// The job.
    pub id: String,
    /// Its queue.
    pub queue: String,
    /// Its name.
    pub name: String,
    /// Its status after the step: `pending`, `scheduled`, `running`, `completed`, `failed`,
    /// `dead`, `cancelled`.
    pub status: String,
    /// Attempts started so far.
    pub attempts: u64,
    /// Attempts allowed.
    pub max_attempts: u64,
    /// The last attempt's error, on `job.failed`, `job.retrying` and `job.dead`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the step happened (RFC 3339).
    pub at: String,
}

impl JobEvent {
    /// The summary of a job after a step at `at`.
    fn of(job: &Job, at: &chrono::DateTime<chrono::Utc>) -> JobEvent {
        JobEvent {
            id: job.id.clone(),
            queue: job.queue.clone(),
            name: job.name.clone(),
            status: job.status.as_str().to_string(),
            attempts: job.attempts.into(),
            max_attempts: job.max_attempts.into(),
            error: shows_error(job.status.as_str()).then(|| job.errors.last().map(|e| e.error.clone())).flatten(),
            at: stamp(at),
        }
    }

    /// The summary of a job's JSON (an event relayed from another node), or `None` if it
    /// is not one.
    fn of_json(job: &serde_json::Value, at: &chrono::DateTime<chrono::Utc>) -> Option<JobEvent> {
        let s = |k: &str| job.get(k).and_then(serde_json::Value::as_str).map(str::to_string);
        let n = |k: &str| job.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let status = s("status")?;
        let error = match shows_error(&status) {
            true => job.get("errors").and_then(|e| e.as_array()?.last()?["error"].as_str()).map(str::to_string),
            false => None,
        };
        Some(JobEvent {
            id: s("id")?,
            queue: s("queue")?,
            name: s("name")?,
            status,
            attempts: n("attempts"),
            max_attempts: n("max_attempts"),
            error,
            at: stamp(at),
        })
    }

    /// The summary of an event: from the `Job` it carries, or from its JSON when it was
    /// relayed from another node; `None` if it is not about a job.
    fn of_event(e: &Event) -> Option<JobEvent> {
        match e.data.detail::<Job>() {
            Some(job) => Some(JobEvent::of(job, &e.at)),
            None => JobEvent::of_json(&e.data, &e.at),
        }
    }
}

/// True when a reader filtering on `queues` (empty: every queue) wants the events of `queue`.
fn wanted(queues: &[String], queue: &str) -> bool {
    queues.is_empty() || queues.iter().any(|q| q == queue)
}

/// The queue of a job event, from the `Job` it carries (no JSON built) or, for an event
/// relayed from another node, from its JSON.
fn queue_of(e: &Event) -> &str {
    match e.data.detail::<Job>() {
        Some(job) => &job.queue,
        None => e.data["queue"].as_str().unwrap_or_default(),
    }
}

/// The statuses after which a summary shows the last attempt's error (a `running` job's
/// old error would be stale).
fn shows_error(status: &str) -> bool {
    matches!(status, "failed" | "dead" | "pending")
}

fn stamp(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// `data` of a `jobs.activity` event (activity mode, `?every_ms=`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobActivity {
    /// Per queue, the number of each step (`enqueued`, `started`, `completed`, `failed`,
    /// `retrying`, `dead`, `cancelled`, `retried`) since the previous activity event.
    pub queues: BTreeMap<String, BTreeMap<String, u64>>,
    /// Events this reader missed because it fell behind (the counts are then a lower
    /// bound; re-read `GET /api/queues`).
    pub skipped: u64,
}

/// One reader's view of the bus: job events of the queues it asked for.
struct JobFeed {
    rx: Subscription,
    /// Empty: every queue.
    queues: Vec<String>,
    /// Activity mode.
    activity: Option<Activity>,
}

impl JobFeed {
    /// Subscribes now, so that nothing published after the answer is missed.
    fn open(s: &AppState, p: &Principal, q: StreamParams) -> ApiResult<JobFeed> {
        if !p.is_service() {
            return Err(ApiError::new(ErrorCode::Forbidden, "the job event stream needs an API key, not a user token"));
        }
        let queues: Vec<String> =
            q.queue.as_deref().unwrap_or("").split(',').map(str::trim).filter(|q| !q.is_empty()).map(String::from).collect();
        if queues.len() > MAX_QUEUES {
            return Err(ApiError::invalid_query("queue", format!("at most {MAX_QUEUES} queues")));
        }
        for name in &queues {
            crate::jobs::validate::check_queue("queue", name).map_err(|e| match e {
                crate::jobs::JobError::Invalid { message, .. } => ApiError::invalid_query("queue", message),
                e => e.into(),
            })?;
        }
        let activity = match q.every_ms {
            None => None,
            Some(ms) if EVERY_MS.contains(&ms) => {
                let every = std::time::Duration::from_millis(ms);
                let now = tokio::time::Instant::now();
                let mut drain = tokio::time::interval_at(now + DRAIN.min(every), DRAIN.min(every));
                drain.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                Some(Activity { drain, every, due: now + every, counts: JobActivity::default() })
            }
            Some(_) => return Err(ApiError::invalid_query("every_ms", "must be from 100 to 60000")),
        };
        Ok(JobFeed { rx: s.events.subscribe(), queues, activity })
    }

    /// The next event for this reader as `(topic, data as JSON text)`: a job step, or
    /// `("resync", {"skipped": n})` after a lag; in activity mode a `jobs.activity` per
    /// interval with steps in it. `None` when the bus is gone. Cancel-safe (what was
    /// counted stays in `self`).
    async fn next(&mut self) -> Option<(String, String)> {
        if self.activity.is_some() {
            return self.next_activity().await;
        }
        loop {
            match self.rx.recv().await {
                Ok(e) if e.topic.starts_with("job.") => {
                    if !wanted(&self.queues, queue_of(&e)) {
                        continue;
                    }
                    let Some(ev) = JobEvent::of_event(&e) else { continue };
                    return Some((e.topic.clone(), serde_json::to_string(&ev).unwrap_or_default()));
                }
                Ok(_) => {}
                Err(RecvError::Lagged(n)) => return Some(("resync".into(), format!("{{\"skipped\":{n}}}"))),
                Err(RecvError::Closed) => return None,
            }
        }
    }

    /// Activity mode: every [`DRAIN`] takes the events waiting without being woken by
    /// each one (a busy queue publishes tens of thousands a second), counts them, and once
    /// the interval is over sends the counts, if any.
    async fn next_activity(&mut self) -> Option<(String, String)> {
        loop {
            let a = self.activity.as_mut()?;
            a.drain.tick().await;
            loop {
                match self.rx.try_recv() {
                    Ok(Some(e)) => {
                        let Some(step) = e.topic.strip_prefix("job.") else { continue };
                        let queue = queue_of(&e);
                        if wanted(&self.queues, queue) {
                            a.counts.add(queue, step);
                        }
                    }
                    Ok(None) => break,
                    Err(RecvError::Lagged(n)) => a.counts.skipped += n,
                    Err(RecvError::Closed) => return None,
                }
            }
            let now = tokio::time::Instant::now();
            if now >= a.due {
                a.due = now + a.every;
                if !a.counts.queues.is_empty() || a.counts.skipped > 0 {
                    let sent = std::mem::take(&mut a.counts);
                    return Some(("jobs.activity".into(), serde_json::to_string(&sent).unwrap_or_default()));
                }
            }
        }
    }
}

/// How often activity mode takes the waiting events: often enough that the bus never
/// overflows for it (its capacity is thousands of events), rarely enough to cost nothing.
const DRAIN: std::time::Duration = std::time::Duration::from_millis(50);

/// The state of activity mode.
struct Activity {
    drain: tokio::time::Interval,
    every: std::time::Duration,
    /// When the counts are next sent.
    due: tokio::time::Instant,
    counts: JobActivity,
}

impl JobActivity {
    /// Counts one `step` of a job of `queue` (allocating only for a new queue or step).
    fn add(&mut self, queue: &str, step: &str) {
        if !self.queues.contains_key(queue) {
            self.queues.insert(queue.to_string(), BTreeMap::new());
        }
        let steps = self.queues.get_mut(queue).expect("inserted");
        match steps.get_mut(step) {
            Some(n) => *n += 1,
            None => {
                steps.insert(step.to_string(), 1);
            }
        }
    }
}

impl stream::Source for JobFeed {
    async fn next(&mut self) -> Option<Message> {
        let (topic, data) = JobFeed::next(self).await?;
        // `data` is JSON already: the frame is assembled around it rather than re-parsed.
        let topic = serde_json::to_string(&topic).unwrap_or_default();
        Some(Message::Text(format!("{{\"event\":{topic},\"data\":{data}}}").into()))
    }
}

/// Server-sent events of every job step: `event: <topic>` (`job.enqueued`, `job.started`,
/// `job.completed`, `job.failed`, `job.retrying`, `job.dead`, `job.cancelled`,
/// `job.retried`) with `data: <JobEvent JSON>`, or `event: resync` with
/// `data: {"skipped": n}` when this reader fell behind (re-read what it shows). `?queue=a,b`
/// keeps only those queues. With `?every_ms=n` (activity mode) the stream instead sends
/// one `event: jobs.activity` with `data: <JobActivity JSON>` (the steps per queue) every
/// n ms in which anything happened. Ends at server shutdown. Browsers pass a stream ticket as
/// `?ticket=` (`POST /api/auth/stream-ticket`).
#[utoipa::path(get, path = "/api/jobs/events", tag = "jobs", params(StreamParams),
    responses((status = 200, description = "An event stream of JobEvent objects (JobActivity objects in activity mode)", content_type = "text/event-stream", body = JobEvent),
        (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn events(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    permit: StreamPermit,
    Query(q): Query<StreamParams>,
) -> ApiResult<Response> {
    let feed = JobFeed::open(&s, &p, q)?;
    Ok(stream::sse(feed, s.background().shutdown.clone(), permit, |mut feed: JobFeed| async move {
        let (topic, data) = feed.next().await?;
        Some((SseEvent::default().event(topic).data(data), Some(feed)))
    }))
}

/// The same events over a WebSocket: JSON text frames `{"event": <topic>, "data":
/// <JobEvent>}` (and `{"event": "resync", "data": {"skipped": n}}`), or in activity mode
/// (`?every_ms=n`) `{"event": "jobs.activity", "data": <JobActivity>}`. `?queue=a,b` keeps
/// only those queues; the server ignores what the client sends.
#[utoipa::path(get, path = "/ws/jobs", tag = "jobs", params(StreamParams),
    responses((status = 101, description = "Switching to the WebSocket protocol"), (status = 400, body = crate::error::ErrorBody),
        (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn ws(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    permit: StreamPermit,
    Query(q): Query<StreamParams>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    let feed = JobFeed::open(&s, &p, q)?;
    stream::websocket(upgrade, s.background().shutdown.clone(), permit, feed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_summary_keeps_the_last_error_and_drops_the_payload() {
        let at = chrono::DateTime::parse_from_rfc3339("2026-03-01T12:00:00Z").unwrap().to_utc();
        let job = serde_json::json!({"id": "j1", "queue": "q", "name": "n", "status": "dead", "attempts": 3, "max_attempts": 3,
            "payload": {"big": "x"}, "errors": [{"error": "first"}, {"error": "last"}]});
        let e = JobEvent::of_json(&job, &at).expect("a job");
        assert_eq!(e.error.as_deref(), Some("last"));
        assert_eq!((e.attempts, e.max_attempts, e.at.as_str()), (3, 3, "2026-03-01T12:00:00.000Z"));
        let v = serde_json::to_value(&e).unwrap();
        assert!(v.get("payload").is_none(), "{v}");
        let running = serde_json::json!({"id": "j1", "queue": "q", "name": "n", "status": "running", "errors": [{"error": "old"}]});
        assert_eq!(JobEvent::of_json(&running, &at).unwrap().error, None, "a running job shows no stale error");
        assert!(JobEvent::of_json(&serde_json::json!({"queue": "q"}), &at).is_none(), "not a job");
    }
}
