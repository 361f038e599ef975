//! The frames of the worker protocol: reading the worker's (every error names the op and
//! the field) and writing the server's. Each frame is one small JSON object whose `op`
//! says what it is; see the table in the module doc of `http/worker/`.

use crate::error::{ApiError, ErrorCode};
use crate::http::error::parse_json;
use crate::jobs::{ClaimRequest, HeartbeatAck, Job, JobStatus, MAX_CLAIM, StandingClaim};
use axum::extract::ws::Message;
use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Most unacknowledged jobs one connection may hold (`credit`).
pub const MAX_CREDIT: usize = MAX_CLAIM;
/// Most queues one subscription may list.
pub const MAX_QUEUES: usize = 100;
/// Most job names one subscription may list.
pub const MAX_NAMES: usize = 100;

/// A frame from the worker.
#[derive(Debug)]
pub enum Request {
    /// Start receiving jobs.
    Subscribe(Subscribe),
    /// A job succeeded.
    Complete(Complete),
    /// A job's attempt failed.
    Fail(Fail),
    /// Extend a job's lease.
    Heartbeat(Heartbeat),
    /// Report a job's progress.
    Progress(Progress),
}

/// `{"op":"subscribe","queues":[..],"names":[..]?,"credit":N,"lease_seconds":S?,"worker_id":".."?}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Subscribe {
    #[serde(rename = "op")]
    _op: IgnoredAny,
    /// Queues to take jobs from (default `["default"]`).
    #[serde(default = "default_queues")]
    pub queues: Vec<String>,
    /// Only these job names (default: any name without an in-process handler).
    #[serde(default)]
    pub names: Option<Vec<String>>,
    /// Most unacknowledged jobs this connection may hold, 1 to [`MAX_CREDIT`].
    pub credit: u64,
    /// Lease length of each job, 1 to 86400 seconds (default 60); heartbeats extend it.
    #[serde(default)]
    pub lease_seconds: Option<u64>,
    /// The holder id recorded on the jobs (default: one generated for the connection).
    #[serde(default)]
    pub worker_id: Option<String>,
}

fn default_queues() -> Vec<String> {
    vec!["default".into()]
}

/// `{"op":"complete","id":"..","result":..?}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    #[serde(rename = "op")]
    _op: IgnoredAny,
    /// The job.
    pub id: String,
    /// Its result: any JSON value.
    #[serde(default)]
    pub result: Option<Value>,
}

/// `{"op":"fail","id":"..","error":"..","retry":bool?}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fail {
    #[serde(rename = "op")]
    _op: IgnoredAny,
    /// The job.
    pub id: String,
    /// What went wrong.
    pub error: String,
    /// False makes the job dead at once (default true: retry while attempts remain).
    #[serde(default)]
    pub retry: Option<bool>,
}

/// `{"op":"heartbeat","id":"..","lease_seconds":S?}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Heartbeat {
    #[serde(rename = "op")]
    _op: IgnoredAny,
    /// The job.
    pub id: String,
    /// New lease length from now (default: the subscription's).
    #[serde(default)]
    pub lease_seconds: Option<u64>,
}

/// `{"op":"progress","id":"..","percent":P,"stage":".."?}`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Progress {
    #[serde(rename = "op")]
    _op: IgnoredAny,
    /// The job.
    pub id: String,
    /// 0 to 100.
    pub percent: f64,
    /// Stage name.
    #[serde(default)]
    pub stage: Option<String>,
}

/// A frame that cannot be taken: the error to answer, with the job id when the frame
/// named one.
#[derive(Debug)]
pub struct Refused {
    /// The frame's `id`, when it had a string one.
    pub id: Option<String>,
    /// What to answer.
    pub error: ApiError,
}

impl Refused {
    /// A refusal of the frame about `id`.
    pub fn new(id: Option<&str>, error: ApiError) -> Refused {
        Refused { id: id.map(str::to_string), error }
    }
}

/// What every frame is read for first: its op and job id.
#[derive(Deserialize)]
struct Head {
    op: Option<Value>,
    id: Option<Value>,
}

/// Reads one text frame.
pub fn parse(text: &str) -> Result<Request, Refused> {
    if !text.trim_start().starts_with('{') && serde_json::from_str::<IgnoredAny>(text).is_ok() {
        return Err(Refused::new(None, ApiError::new(ErrorCode::MalformedJson, "a frame must be a JSON object")));
    }
    let head: Head = match serde_json::from_str(text) {
        Ok(h) => h,
        Err(e) if e.is_syntax() || e.is_eof() => {
            return Err(Refused::new(None, ApiError::new(ErrorCode::MalformedJson, format!("the frame is not valid JSON: {e}"))));
        }
        Err(_) => return Err(Refused::new(None, ApiError::new(ErrorCode::MalformedJson, "a frame must be a JSON object"))),
    };
    let id = head.id.as_ref().and_then(Value::as_str);
    let refuse = |e: ApiError| Refused::new(id, e);
    let bytes = text.as_bytes();
    match head.op.as_ref().and_then(Value::as_str) {
        Some("complete") => parse_json(bytes).map(Request::Complete),
        Some("fail") => parse_json(bytes).map(Request::Fail),
        Some("heartbeat") => parse_json(bytes).map(Request::Heartbeat),
        Some("progress") => parse_json(bytes).map(Request::Progress),
        Some("subscribe") => parse_json(bytes).map(Request::Subscribe),
        _ => Err(ApiError::invalid("op", "must be one of subscribe, complete, fail, heartbeat, progress")),
    }
    .map_err(|e| refuse(named(e)))
}

/// A shape error about the frame as a whole names the unknown field when there is one
/// (the body parser calls the whole frame `body`).
fn named(e: ApiError) -> ApiError {
    if e.field.as_deref() != Some("body") {
        return e;
    }
    let message = e.message.strip_prefix("body: ").unwrap_or(&e.message);
    match message.split("unknown field `").nth(1).and_then(|rest| rest.split('`').next()) {
        Some(field) => ApiError::invalid(field, message),
        None => ApiError::new(ErrorCode::MalformedJson, format!("a bad frame: {message}")),
    }
}

impl Subscribe {
    /// The claim this subscription stands for (checked further by the job queue, whose
    /// errors name the same fields) and its credit.
    pub fn into_claim(self) -> Result<(ClaimRequest, usize), ApiError> {
        let credit = usize::try_from(self.credit).unwrap_or(usize::MAX);
        if !(1..=MAX_CREDIT).contains(&credit) {
            return Err(ApiError::invalid("credit", format!("must be from 1 to {MAX_CREDIT}")));
        }
        if self.queues.len() > MAX_QUEUES {
            return Err(ApiError::invalid("queues", format!("must list at most {MAX_QUEUES} queues")));
        }
        if self.names.as_ref().is_some_and(|n| n.len() > MAX_NAMES) {
            return Err(ApiError::invalid("names", format!("must list at most {MAX_NAMES} names")));
        }
        let worker_id = self.worker_id.unwrap_or_else(|| format!("ws-{}", uuid::Uuid::now_v7().simple()));
        let req =
            ClaimRequest { queues: self.queues, worker_id, names: self.names, max: None, lease_seconds: self.lease_seconds, wait_ms: None };
        Ok((req, credit))
    }
}

fn text(v: &impl Serialize) -> Message {
    Message::Text(serde_json::to_string(v).unwrap_or_default().into())
}

/// `{"op":"job", ...the job as GET /api/jobs/{id} shows it}`.
pub fn job(job: &Job) -> Message {
    let body = serde_json::to_string(job).unwrap_or_default();
    // The job is a JSON object: the op goes in front of its first field.
    let fields = body.strip_prefix('{').unwrap_or("}");
    Message::Text(format!("{{\"op\":\"job\",{fields}").into())
}

/// `{"op":"subscribed","worker_id":..,"credit":..,"lease_seconds":..}`.
pub fn subscribed(claim: &StandingClaim, credit: usize) -> Message {
    #[derive(Serialize)]
    struct Subscribed<'a> {
        op: &'static str,
        worker_id: &'a str,
        credit: usize,
        lease_seconds: u64,
    }
    text(&Subscribed { op: "subscribed", worker_id: claim.worker_id(), credit, lease_seconds: claim.lease_seconds() })
}

/// `{"op":"ack","id":..,"status":..}`: the job's end is durable.
pub fn ack(id: &str, status: JobStatus) -> Message {
    #[derive(Serialize)]
    struct Ack<'a> {
        op: &'static str,
        id: &'a str,
        status: JobStatus,
    }
    text(&Ack { op: "ack", id, status })
}

/// `{"op":"lease","id":..,"lease_until":..,"cancel_requested":..}`: a heartbeat's answer.
pub fn lease(ack: &HeartbeatAck) -> Message {
    #[derive(Serialize)]
    struct Lease<'a> {
        op: &'static str,
        id: &'a str,
        lease_until: Option<chrono::DateTime<chrono::Utc>>,
        cancel_requested: bool,
    }
    text(&Lease { op: "lease", id: &ack.job_id, lease_until: ack.lease_until, cancel_requested: ack.cancel_requested })
}

/// `{"op":"error","id":..?,"code":..,"message":..,"field":..?}`.
pub fn error(id: Option<&str>, e: &ApiError) -> Message {
    #[derive(Serialize)]
    struct Error<'a> {
        op: &'static str,
        #[serde(skip_serializing_if = "Option::is_none")]
        id: Option<&'a str>,
        code: &'static str,
        message: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        field: Option<&'a str>,
    }
    text(&Error { op: "error", id, code: e.code.as_str(), message: &e.message, field: e.field.as_deref() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(text: &str) -> Refused {
        parse(text).expect_err(text)
    }

    #[test]
    fn bad_frames_name_the_field_and_the_job() {
        assert_eq!(refused("{nope").error.code, ErrorCode::MalformedJson);
        assert_eq!(refused("[1, 2]").error.code, ErrorCode::MalformedJson);
        let r = refused(r#"{"op": "dance", "id": "j1"}"#);
        assert_eq!((r.error.field.as_deref(), r.id.as_deref()), (Some("op"), Some("j1")));
        let r = refused(r#"{"op": "progress", "id": "j1", "percent": "half"}"#);
        assert_eq!((r.error.field.as_deref(), r.id.as_deref()), (Some("percent"), Some("j1")));
        let r = refused(r#"{"op": "fail", "id": "j2"}"#);
        assert_eq!(r.error.field.as_deref(), Some("error"), "a missing field is named");
        let r = refused(r#"{"op": "complete", "id": "j3", "resutl": 1}"#);
        assert_eq!(r.error.field.as_deref(), Some("resutl"), "an unknown field is named: {}", r.error.message);
        let r = refused(r#"{"op": "subscribe", "queues": ["q", 7], "credit": 5}"#);
        assert_eq!(r.error.field.as_deref(), Some("queues[1]"));
    }

    #[test]
    fn a_subscription_checks_its_limits() {
        let sub = |t: &str| match parse(t).unwrap() {
            Request::Subscribe(s) => s.into_claim(),
            other => panic!("{other:?}"),
        };
        let (req, credit) = sub(r#"{"op": "subscribe", "credit": 50}"#).unwrap();
        assert_eq!((req.queues, credit), (vec!["default".to_string()], 50));
        assert!(req.worker_id.starts_with("ws-"));
        for bad in [0, 1001, u64::MAX] {
            let e = sub(&format!(r#"{{"op": "subscribe", "credit": {bad}}}"#)).unwrap_err();
            assert_eq!(e.field.as_deref(), Some("credit"), "{bad}");
        }
        let many: Vec<String> = (0..=MAX_QUEUES).map(|i| format!("q{i}")).collect();
        let e = sub(&serde_json::json!({"op": "subscribe", "credit": 1, "queues": many}).to_string()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("queues"));
    }

    #[test]
    fn a_job_frame_is_the_job_with_its_op() {
        let now = chrono::Utc::now();
        let j = crate::jobs::validate::build(
            &Default::default(),
            serde_json::from_value(serde_json::json!({"name": "n", "payload": {"a": 1}})).unwrap(),
            now,
        )
        .unwrap();
        let Message::Text(t) = job(&j) else { panic!("text") };
        let v: Value = serde_json::from_str(t.as_str()).unwrap();
        assert_eq!((v["op"].as_str(), v["id"].as_str(), v["payload"]["a"].as_i64()), (Some("job"), Some(j.id.as_str()), Some(1)));
    }
}
