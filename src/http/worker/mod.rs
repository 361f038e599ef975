//! `/ws/worker`: the streaming worker protocol, for workers in any language that speaks
//! WebSocket. A worker subscribes once with a credit; hearth pushes jobs as they become
//! ready (no polling), and acknowledges each end once it is durable.
//!
//! JSON text frames, one per job and step:
//!
//! | direction | frame | meaning |
//! |---|---|---|
//! | → | `{"op":"subscribe","queues":[..],"names":[..]?,"credit":N,"lease_seconds":S?,"worker_id":".."?}` | first frame: take jobs of these queues (default `["default"]`; only these names, default any name without an in-process handler), holding at most N (1–1000) unacknowledged; leases of S seconds (default 60) |
//! | ← | `{"op":"subscribed","worker_id":..,"credit":..,"lease_seconds":..}` | the subscription holds |
//! | ← | `{"op":"job", ...}` | a job, leased to this worker: the `Job` as `GET /api/jobs/{id}` shows it |
//! | → | `{"op":"complete","id":..,"result":..?}` | the job succeeded |
//! | → | `{"op":"fail","id":..,"error":"..","retry":bool?}` | the attempt failed: retried after its backoff while attempts remain (`retry` false: dead now) |
//! | ← | `{"op":"ack","id":..,"status":..}` | that end is durable (`completed`, `failed`, `dead`, or `cancelled` when it was cancelled while running); its credit is free |
//! | → | `{"op":"heartbeat","id":..,"lease_seconds":S?}` | extend the job's lease (default: by the subscription's lease) |
//! | ← | `{"op":"lease","id":..,"lease_until":..,"cancel_requested":bool}` | the heartbeat's answer; `cancel_requested`: stop and report |
//! | → | `{"op":"progress","id":..,"percent":P,"stage":".."?}` | progress 0–100 under the job's id (also a sign of life: the lease is extended); answered only on error |
//! | ← | `{"op":"error","id":..?,"code":..,"message":..,"field":..?}` | a frame was refused (the job it named, the field at fault); the socket stays open |
//!
//! - **Credit.** The server never has more than `credit` jobs out that are not
//!   acknowledged. A complete or fail frees its credit when its `ack` is sent, i.e. after
//!   the end is durable; an `error` about a job that is no longer this worker's (`conflict`:
//!   its lease ran out and it went back to the queue, `not_found`) frees it too. An end
//!   refused for its content (`invalid_field`, `payload_too_large`) or for a storage
//!   failure (503/507) leaves the job held: send it again.
//! - **Group commit.** Every complete and fail frame already received is read at once,
//!   without waiting, and they are ended together in one durable write
//!   (`JobQueue::finish_many`); their acks go out after it returns. Reading goes on while
//!   a write is in flight, so the next frames form the next write.
//! - **Leases** are the HTTP workers' (`Holder::Worker` under the subscription's
//!   `worker_id`): a job whose lease runs out goes back to the queue with its attempt
//!   counted. Jobs are pushed by the wake-up the long-poll claim waits on
//!   (`JobQueue::ready_signal`), up to the free credit in one claim.
//! - **Closing.** When the socket closes (or the server shuts down), ends in flight are
//!   written to their end, and every job the connection still holds is released at
//!   once (`JobQueue::release`): its lease ends now and the woken maintenance loop expires
//!   it as any lost worker's lease — ready again for another worker with the attempt
//!   counted, dead when it had none left. Nothing a worker held is lost, and nobody waits
//!   for the lease to run out.
//! - **Limits.** A frame is at most `server.body_limit` bytes (larger: closed with 1009);
//!   credit 1–1000; at most 100 queues and 100 names. Bad frames get an `error` frame;
//!   [`MAX_BAD_FRAMES`] in a row (unparsable, binary, unknown op, invalid fields, frames
//!   before the subscription) close the socket with 1008 and the reason. A frame about a
//!   job the connection does not hold (any more) is answered `conflict`, and is no bad
//!   frame: a heartbeat may cross its own job's complete.
//! - **Who.** Admin API keys, or auth off: workers take jobs and write their ends. A
//!   read-only key or a user token gets 403 before the upgrade. Browsers follow the
//!   stream rules (`browser.rs`: a foreign `Origin` gets 403; `?ticket=` from
//!   `POST /api/auth/stream-ticket`), and the connection takes one of the caller's
//!   stream slots (`server.max_streams_per_caller`).

mod frames;

use super::AppState;
use super::auth::Principal;
use super::error::ApiResult;
use super::limits::StreamPermit;
use super::stream::{PING_EVERY, SEND_TIMEOUT};
use crate::error::{ApiError, ErrorCode};
use crate::jobs::broker::RunOutcome;
use crate::jobs::{Job, JobError, JobQueue, MAX_CLAIM, StandingClaim};
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade, rejection::WebSocketUpgradeRejection};
use axum::{Extension, extract::State, response::Response};
use frames::{Refused, Request};
use futures::stream::{FuturesUnordered, SplitSink};
use futures::{FutureExt, SinkExt, StreamExt};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use frames::{MAX_CREDIT, MAX_NAMES, MAX_QUEUES};

/// Bad frames in a row after which the connection is closed (1008).
pub const MAX_BAD_FRAMES: u32 = 100;

/// Route of the worker protocol.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(worker))
}

/// The streaming worker protocol over a WebSocket: subscribe with a credit, receive jobs
/// as they become ready, send one complete / fail / heartbeat / progress frame per job,
/// get an `ack` once each end is durable. JSON text frames; see the README's "Workers in
/// other languages". Admin API keys only (or auth off): read-only keys and user tokens
/// get 403.
#[utoipa::path(get, path = "/ws/worker", tag = "jobs",
    responses((status = 101, description = "Switching to the WebSocket protocol (the worker protocol's JSON frames)"),
        (status = 400, body = crate::error::ErrorBody), (status = 401, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody)))]
async fn worker(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    permit: StreamPermit,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> ApiResult<Response> {
    if !matches!(p, Principal::Admin | Principal::Open) {
        return Err(ApiError::new(
            ErrorCode::Forbidden,
            "the worker protocol takes and ends jobs: it needs an admin API key, not a read-only key or a user token",
        ));
    }
    let upgrade = super::stream::upgraded(upgrade)?;
    let limit = s.config.server.body_limit;
    let (jobs, shutdown) = (s.jobs.clone(), s.background().shutdown.clone());
    Ok(upgrade.max_message_size(limit).max_frame_size(limit).on_upgrade(move |socket| async move {
        serve(socket, jobs, shutdown, limit).await;
        drop(permit);
    }))
}

/// Where a job this connection holds stands.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Held {
    /// Sent to the worker, not ended yet.
    Running,
    /// Its end is being written.
    Ending,
}

/// After a frame: go on, or close (with this close frame, if any).
enum Step {
    Go,
    End(Option<CloseFrame>),
}

/// The ends of one write, by job id.
type Settled = Vec<(String, Result<Job, JobError>)>;

/// One connection's state (its socket and job queue are the caller's).
struct Conn {
    /// The subscription and its credit, once subscribed.
    claim: Option<(Arc<StandingClaim>, usize)>,
    /// Jobs sent and not acknowledged: their number never exceeds the credit.
    held: HashMap<String, Held>,
    /// Ends read since the last write.
    batch: Vec<(String, RunOutcome)>,
    /// Frames to send.
    out: Vec<Message>,
    /// Bad frames in a row.
    bad: u32,
    /// Claim at the next turn (woken, credit freed, or a periodic safety check).
    wanted: bool,
    /// The last claim found fewer jobs than asked: wait for the ready signal.
    waiting: bool,
    /// The frame size limit, for the close reason.
    limit: usize,
}

fn close(code: u16, reason: impl Into<String>) -> Option<CloseFrame> {
    let mut reason: String = reason.into();
    // A close reason is at most 123 bytes.
    while reason.len() > 123 {
        reason.pop();
    }
    Some(CloseFrame { code, reason: reason.into() })
}

impl Conn {
    /// Credit not used by held jobs.
    fn free(&self) -> usize {
        self.claim.as_ref().map_or(0, |(_, credit)| credit.saturating_sub(self.held.len()))
    }

    /// Answers a refused frame; closes after [`MAX_BAD_FRAMES`] in a row.
    fn refuse(&mut self, r: Refused) -> Step {
        self.out.push(frames::error(r.id.as_deref(), &r.error));
        self.bad += 1;
        if self.bad >= MAX_BAD_FRAMES {
            return Step::End(close(1008, format!("{MAX_BAD_FRAMES} bad frames in a row; last: {}", r.error.message)));
        }
        Step::Go
    }

    /// Takes what the socket gave.
    async fn take(&mut self, jobs: &JobQueue, msg: Option<Result<Message, axum::Error>>) -> Step {
        let text = match msg {
            None | Some(Ok(Message::Close(_))) => return Step::End(None),
            Some(Err(e)) => {
                let e = e.to_string();
                let too_long = e.contains("too long") || e.contains("Space limit");
                return Step::End(if too_long { close(1009, format!("a frame may be at most {} bytes", self.limit)) } else { None });
            }
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                let e = ApiError::new(ErrorCode::MalformedJson, "binary frames are not part of the protocol: send JSON text frames");
                return self.refuse(Refused::new(None, e));
            }
            Some(Ok(_)) => return Step::Go,
        };
        let done = match frames::parse(text.as_str()) {
            Ok(req) => self.request(jobs, req).await,
            Err(r) => Err(r),
        };
        match done {
            Ok(()) => {
                self.bad = 0;
                Step::Go
            }
            Err(r) => self.refuse(r),
        }
    }

    /// Acts on a well-formed frame. Errors of the job queue about a job it holds are
    /// answered here; `Err` is a bad frame.
    async fn request(&mut self, jobs: &JobQueue, req: Request) -> Result<(), Refused> {
        match req {
            Request::Subscribe(sub) => {
                if self.claim.is_some() {
                    let e = ApiError::new(ErrorCode::BadRequest, "already subscribed: open another connection for another subscription");
                    return Err(Refused::new(None, e));
                }
                let (req, credit) = sub.into_claim().map_err(|e| Refused::new(None, e))?;
                let standing = jobs.standing_claim(req).map_err(|e| Refused::new(None, e.into()))?;
                self.out.push(frames::subscribed(&standing, credit));
                self.claim = Some((Arc::new(standing), credit));
                self.wanted = true;
            }
            Request::Complete(c) => self.end(c.id, RunOutcome::Complete(c.result))?,
            Request::Fail(f) => self.end(f.id, RunOutcome::Fail { error: f.error, retry: f.retry.unwrap_or(true) })?,
            Request::Heartbeat(h) => {
                if !self.holds(&h.id)? {
                    return Ok(());
                }
                let worker = self.worker_id();
                match jobs.heartbeat(&h.id, Some(worker.as_str()), h.lease_seconds, None).await {
                    Ok(ack) => self.out.push(frames::lease(&ack)),
                    Err(e) => self.out.push(frames::error(Some(h.id.as_str()), &ApiError::from(e))),
                }
            }
            Request::Progress(p) => {
                if !self.holds(&p.id)? {
                    return Ok(());
                }
                let worker = self.worker_id();
                if let Err(e) = jobs.heartbeat(&p.id, Some(worker.as_str()), None, Some((p.percent, p.stage.as_deref()))).await {
                    self.out.push(frames::error(Some(p.id.as_str()), &ApiError::from(e)));
                }
            }
        }
        Ok(())
    }

    /// Whether this connection holds job `id`, running. A frame about a job it does not
    /// hold (or whose end is being written) is answered with a `conflict` here: a race a
    /// worker may lose (a heartbeat just after the complete), not a bad frame.
    fn holds(&mut self, id: &str) -> Result<bool, Refused> {
        if self.claim.is_none() {
            return Err(Refused::new(Some(id), ApiError::new(ErrorCode::BadRequest, "subscribe first")));
        }
        let why = match self.held.get(id) {
            Some(Held::Running) => return Ok(true),
            Some(Held::Ending) => format!("job {id} is being ended"),
            None => format!("this connection does not hold job {id}"),
        };
        self.out.push(frames::error(Some(id), &ApiError::conflict(why)));
        Ok(false)
    }

    /// The subscription's worker id.
    fn worker_id(&self) -> String {
        self.claim.as_ref().map(|(claim, _)| claim.worker_id().to_string()).unwrap_or_default()
    }

    /// Queues the end of job `id` for the next write.
    fn end(&mut self, id: String, outcome: RunOutcome) -> Result<(), Refused> {
        if self.holds(&id)? {
            if let Some(h) = self.held.get_mut(&id) {
                *h = Held::Ending;
            }
            self.batch.push((id, outcome));
        }
        Ok(())
    }

    /// Answers the ends of one write: an ack for each durable end, an error otherwise.
    fn settle(&mut self, settled: Settled) {
        for (id, r) in settled {
            match r {
                Ok(job) => {
                    self.held.remove(&id);
                    self.out.push(frames::ack(&id, job.status));
                }
                Err(e) => {
                    // Not ended: the job stays this worker's unless it no longer is.
                    if matches!(e, JobError::Conflict(_) | JobError::NotFound { .. }) {
                        self.held.remove(&id);
                    } else if let Some(h) = self.held.get_mut(&id) {
                        *h = Held::Running;
                    }
                    self.out.push(frames::error(Some(id.as_str()), &ApiError::from(e)));
                }
            }
        }
        if !self.waiting {
            self.wanted = true;
        }
    }
}

/// Writes `batch` in one durable write. Spawned, so that a write in flight always runs to
/// its end, even if the connection is dropped meanwhile.
async fn finish(jobs: JobQueue, worker_id: String, batch: Vec<(String, RunOutcome)>) -> Settled {
    let ids: Vec<String> = batch.iter().map(|(id, _)| id.clone()).collect();
    let task = tokio::spawn(async move { jobs.finish_many(Some(&worker_id), batch).await });
    let results = match task.await {
        Ok(Ok(results)) => results,
        Ok(Err(e)) => vec![Err(e); ids.len()],
        Err(e) => vec![Err(JobError::Unavailable(format!("the write of job ends failed: {e}"))); ids.len()],
    };
    ids.into_iter().zip(results).collect()
}

/// Sends `out` with one flush; false when the worker does not take it in time.
async fn flush(tx: &mut SplitSink<WebSocket, Message>, out: &mut Vec<Message>) -> bool {
    let send = async {
        for m in out.drain(..) {
            tx.feed(m).await?;
        }
        tx.flush().await
    };
    matches!(tokio::time::timeout(SEND_TIMEOUT, send).await, Ok(Ok(())))
}

/// Serves one worker until it closes, fails to read its frames in time, breaks the
/// protocol, or the server shuts down; then gives back what it held.
async fn serve(socket: WebSocket, jobs: JobQueue, shutdown: CancellationToken, limit: usize) {
    let (mut tx, mut rx) = socket.split();
    let signal = jobs.ready_signal();
    let mut ready = std::pin::pin!(signal.notified());
    let mut writes = FuturesUnordered::new();
    let mut c =
        Conn { claim: None, held: HashMap::new(), batch: Vec::new(), out: Vec::new(), bad: 0, wanted: false, waiting: false, limit };
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.tick().await;
    let close_with = loop {
        let free = c.free();
        if c.wanted
            && free > 0
            && let Some((claim, _)) = c.claim.clone()
        {
            c.wanted = false;
            // Armed before the claim: whatever becomes ready after it wakes this worker.
            ready.set(signal.notified());
            ready.as_mut().enable();
            match jobs.claim_ready(&claim, free).await {
                Ok(list) => {
                    c.waiting = list.len() < free;
                    for job in list {
                        c.out.push(frames::job(&job));
                        c.held.insert(job.id, Held::Running);
                    }
                }
                Err(e) => {
                    // Tried again at the next wake-up or ping.
                    c.waiting = true;
                    c.out.push(frames::error(None, &ApiError::from(e)));
                }
            }
        }
        if !c.out.is_empty() {
            let sent = tokio::select! {
                _ = shutdown.cancelled() => false,
                sent = flush(&mut tx, &mut c.out) => sent,
            };
            if !sent {
                break None;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => break close(1001, "server shutting down"),
            Some(settled) = writes.next(), if !writes.is_empty() => c.settle(settled),
            _ = &mut ready, if c.waiting && c.free() > 0 => {
                c.waiting = false;
                c.wanted = true;
            }
            msg = rx.next() => {
                let mut step = c.take(&jobs, msg).await;
                // Group commit: every frame already here joins this write.
                while matches!(step, Step::Go) && c.batch.len() < MAX_CLAIM {
                    match rx.next().now_or_never() {
                        Some(msg) => step = c.take(&jobs, msg).await,
                        None => break,
                    }
                }
                if !c.batch.is_empty()
                    && let Some((claim, _)) = &c.claim
                {
                    writes.push(finish(jobs.clone(), claim.worker_id().to_string(), std::mem::take(&mut c.batch)));
                }
                if let Step::End(frame) = step {
                    break frame;
                }
            }
            _ = ping.tick() => {
                c.out.push(Message::Ping(Default::default()));
                c.wanted = true;
            }
        }
    };
    if let Some(frame) = close_with {
        // The answers so far (the last error, say), then the reason.
        c.out.push(Message::Close(Some(frame)));
        let _ = tokio::time::timeout(Duration::from_secs(1), flush(&mut tx, &mut c.out)).await;
    }
    // Ends in flight are written to their end; nobody is left to acknowledge them.
    while let Some(settled) = writes.next().await {
        c.settle(settled);
    }
    if let Some((claim, _)) = &c.claim {
        let ids: Vec<String> = c.held.keys().cloned().collect();
        if !ids.is_empty() {
            let n = jobs.release(claim.worker_id(), &ids).await;
            tracing::debug!(worker = claim.worker_id(), released = n, "worker connection closed; its jobs are released");
        }
    }
}
