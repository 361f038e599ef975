//! HTTP routes of the job queue: enqueue, read, list, cancel and retry jobs; queue
//! control; recurring schedules; and the worker protocol for external workers
//! (claim / heartbeat / complete / fail, and `POST /api/jobs/complete` to complete many
//! claimed jobs in one request and one durable write).
//!
//! Listing is newest first; the next page's cursor is returned both in the body
//! (`next_cursor`) and in the `X-Next-Cursor` header, and is passed back as `?cursor=`.
//! Every route needs a service credential (API key, or auth off); user tokens get 403.
//! hearth's own job names (`crate::jobs::reserved`) cannot be enqueued, scheduled or
//! claimed here (400 naming the field); they can be read, retried and cancelled.

use super::AppState;
use super::auth::Principal;
use super::error::{ApiResult, Json, Query, parse_optional_object};
use crate::error::{ApiError, ErrorCode};
use crate::jobs::reserved;
use crate::jobs::{
    BulkOutcome, ClaimRequest, EnqueueRequest, Enqueued, HeartbeatAck, Job, JobList, JobStatus, ListQuery, QueueInfo, Schedule,
    ScheduleRequest,
};
use axum::{
    Extension,
    body::Bytes,
    extract::{Path, State},
    http::{HeaderValue, StatusCode},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// What `jobs::validate::check_name` accepts: 1 to 200 bytes, not only whitespace, no
/// control characters.
const NAME: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// What `jobs::validate::check_queue` accepts.
const QUEUE: &str = "^[A-Za-z0-9_.:-]+$";

/// States in the OpenAPI document the rules `jobs::validate` enforces on the job queue's
/// request types (which live in `jobs/`, beside that validation).
pub(super) fn refine(doc: &mut serde_json::Value, config: &crate::Config) {
    use crate::jobs::limits::{MAX_BACKOFF_MS, MAX_HORIZON_SECONDS, MAX_TIMEOUT_SECONDS, MAX_UNIQUE_FOR_SECONDS};
    use serde_json::json;
    let r = super::openapi::refine;
    let name = json!({"minLength": 1, "maxLength": 200, "pattern": NAME});
    let queue = json!({"minLength": 1, "maxLength": 200, "pattern": QUEUE});

    let e = "/components/schemas/EnqueueRequest/properties";
    r(doc, &format!("{e}/name"), name.clone());
    r(doc, &format!("{e}/queue"), queue.clone());
    r(doc, &format!("{e}/priority"), json!({"minimum": 0, "maximum": 9}));
    r(doc, &format!("{e}/delay"), json!({"minimum": 0, "maximum": MAX_HORIZON_SECONDS}));
    r(doc, &format!("{e}/max_attempts"), json!({"minimum": 1, "maximum": 1000}));
    r(doc, &format!("{e}/timeout"), json!({"minimum": 1, "maximum": MAX_TIMEOUT_SECONDS}));
    r(doc, &format!("{e}/unique_key"), name.clone());
    r(doc, &format!("{e}/unique_for"), json!({"minimum": 1, "maximum": MAX_UNIQUE_FOR_SECONDS}));
    r(doc, &format!("{e}/depends_on/items"), name.clone());
    // Any JSON value is a payload (and a job's result).
    super::openapi::replace(doc, &format!("{e}/payload"), json!({}));
    super::openapi::replace(doc, "/components/schemas/Job/properties/payload", json!({}));
    super::openapi::replace(doc, "/components/schemas/Job/properties/result", json!({}));
    r(
        doc,
        &format!("{e}/id"),
        json!({"minLength": 1, "maxLength": 200, "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]*[^/\\s\\u0000-\\u001f\\u007f-\\u009f][^/\\u0000-\\u001f\\u007f-\\u009f]*$"}),
    );
    for f in ["base_ms", "max_ms"] {
        r(doc, &format!("/components/schemas/Backoff/properties/{f}"), json!({"maximum": MAX_BACKOFF_MS}));
    }
    let c = "/components/schemas/ClaimRequest/properties";
    r(doc, &format!("{c}/queues"), json!({"minItems": 1}));
    r(doc, &format!("{c}/queues/items"), queue.clone());
    r(doc, &format!("{c}/worker_id"), name.clone());
    r(doc, &format!("{c}/max"), json!({"minimum": 1, "maximum": crate::jobs::validate::MAX_CLAIM}));
    r(doc, &format!("{c}/lease_seconds"), json!({"minimum": 1, "maximum": 86400}));
    r(doc, &format!("{c}/wait_ms"), json!({"maximum": config.job_queue.max_claim_wait_ms}));
    r(
        doc,
        "/components/schemas/ScheduleRequest/properties/name",
        json!({"minLength": 1, "maxLength": 200, "pattern": "^[^/:\\u0000-\\u001f\\u007f-\\u009f]*$"}),
    );
    let p = super::openapi::refine_param;
    p(doc, "/api/jobs", "get", "limit", json!({"minimum": 1, "maximum": 1000}));
    p(doc, "/api/jobs", "get", "cursor", json!({"pattern": "^[0-9]{1,19}$"}));
    p(doc, "/api/jobs", "get", "status", json!({"enum": ["pending", "scheduled", "running", "completed", "failed", "dead", "cancelled"]}));
    for path in ["/api/queues/{queue}/pause", "/api/queues/{queue}/resume"] {
        p(doc, path, "post", "queue", queue.clone());
    }
}

/// Routes of the jobs module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(enqueue, list))
        .routes(routes!(enqueue_batch))
        .routes(routes!(claim))
        .routes(routes!(get_job, cancel))
        .routes(routes!(retry))
        .routes(routes!(heartbeat))
        .routes(routes!(complete))
        .routes(routes!(complete_batch))
        .routes(routes!(fail))
        .routes(routes!(queues))
        .routes(routes!(pause))
        .routes(routes!(resume))
        .routes(routes!(put_schedule, list_schedules))
        .routes(routes!(get_schedule, delete_schedule))
        .routes(routes!(retry_dead))
        .routes(routes!(purge))
        .merge(super::job_events::routes())
        .merge(super::worker::routes())
}

fn service(p: &Principal) -> ApiResult<()> {
    if p.is_service() { Ok(()) } else { Err(ApiError::new(ErrorCode::Forbidden, "the job queue needs an API key")) }
}

/// `{"success": true}`.
#[derive(Serialize, ToSchema)]
pub struct Success {
    /// Always true.
    pub success: bool,
}

/// Enqueues a job. Durable when answered. 201 for a new job, 200 when a unique key or a
/// caller-chosen id matched an existing job (`existing: true`).
#[utoipa::path(post, path = "/api/jobs", tag = "jobs", request_body = EnqueueRequest,
    responses((status = 201, body = Enqueued), (status = 200, body = Enqueued, description = "existing job"),
        (status = 400, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
async fn enqueue(State(s): State<AppState>, Extension(p): Extension<Principal>, Json(req): Json<EnqueueRequest>) -> ApiResult<Response> {
    service(&p)?;
    reserved::refuse("name", &req.name)?;
    let e = s.jobs.enqueue(req).await?;
    let code = if e.existing { StatusCode::OK } else { StatusCode::CREATED };
    Ok((code, axum::Json(e)).into_response())
}

/// Enqueues a list of jobs in one durable write (all or none). Errors name the index:
/// `[3].priority`.
#[utoipa::path(post, path = "/api/jobs/batch", tag = "jobs", request_body = Vec<EnqueueRequest>,
    responses((status = 201, body = Vec<Enqueued>), (status = 400, body = crate::error::ErrorBody), (status = 413, body = crate::error::ErrorBody)))]
async fn enqueue_batch(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(reqs): Json<Vec<EnqueueRequest>>,
) -> ApiResult<Response> {
    service(&p)?;
    for (i, r) in reqs.iter().enumerate() {
        reserved::refuse(&format!("[{i}].name"), &r.name)?;
    }
    let out = s.jobs.enqueue_batch(reqs).await?;
    Ok((StatusCode::CREATED, axum::Json(out)).into_response())
}

/// Lists jobs newest first. The next page's cursor is in `next_cursor` and the
/// `X-Next-Cursor` header. `status=dead` is the dead-letter view.
#[utoipa::path(get, path = "/api/jobs", tag = "jobs", params(ListQuery),
    responses((status = 200, body = JobList, headers(("x-next-cursor" = String, description = "cursor of the next page"))),
        (status = 400, body = crate::error::ErrorBody)))]
async fn list(State(s): State<AppState>, Extension(p): Extension<Principal>, Query(q): Query<ListQuery>) -> ApiResult<Response> {
    service(&p)?;
    let page = s.jobs.list(q).await.map_err(query_error)?;
    let mut resp = axum::Json(&page).into_response();
    if let Some(c) = &page.next_cursor
        && let Ok(v) = HeaderValue::from_str(c)
    {
        resp.headers_mut().insert("x-next-cursor", v);
    }
    Ok(resp)
}

/// Validation errors of query parameters are `invalid_query`.
fn query_error(e: crate::jobs::JobError) -> ApiError {
    match e {
        crate::jobs::JobError::Invalid { field, message } => ApiError::invalid_query(field, message),
        e => e.into(),
    }
}

/// One job.
#[utoipa::path(get, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 404, body = crate::error::ErrorBody)))]
async fn get_job(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<String>) -> ApiResult<axum::Json<Job>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.get_status(&id).await?))
}

/// Cancels a job: a waiting job is cancelled at once; a running one is signalled and ends
/// `cancelled` when its run ends. 409 for a completed or dead job.
#[utoipa::path(delete, path = "/api/jobs/{id}", tag = "jobs", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Success), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn cancel(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<String>) -> ApiResult<axum::Json<Success>> {
    service(&p)?;
    s.jobs.cancel(&id).await?;
    Ok(axum::Json(Success { success: true }))
}

/// Runs a failed job now, or revives a dead (or cancelled) one with its attempts reset.
#[utoipa::path(post, path = "/api/jobs/{id}/retry", tag = "jobs", params(("id" = String, Path, description = "job id")),
    responses((status = 200, body = Job), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn retry(State(s): State<AppState>, Extension(p): Extension<Principal>, Path(id): Path<String>) -> ApiResult<axum::Json<Job>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.retry(&id).await?))
}

/// Claims ready jobs for an external worker: running, most urgent first, never before
/// their run_at, never from a paused queue. With `wait_ms` it long-polls (woken by the
/// enqueue, no polling).
#[utoipa::path(post, path = "/api/jobs/claim", tag = "jobs", request_body = ClaimRequest,
    responses((status = 200, body = Vec<Job>), (status = 400, body = crate::error::ErrorBody)))]
async fn claim(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<ClaimRequest>,
) -> ApiResult<axum::Json<Vec<Job>>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.claim(req).await?))
}

/// Body of `POST /api/jobs/{id}/heartbeat`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatRequest {
    /// The claiming worker (checked when given).
    #[serde(default)]
    pub worker_id: Option<String>,
    /// Progress percent 0–100, reported to the progress module under the job id.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 100)]
    pub progress: Option<f64>,
    /// Stage name for the progress.
    #[serde(default)]
    pub stage: Option<String>,
    /// New lease length from now, 1 to 86400 seconds (default: the claim's lease length).
    #[serde(default)]
    #[schema(minimum = 1, maximum = 86400)]
    pub lease_seconds: Option<u64>,
}

/// Extends a running job's lease; says whether the job was cancelled.
#[utoipa::path(post, path = "/api/jobs/{id}/heartbeat", tag = "jobs", params(("id" = String, Path, description = "job id")),
    request_body(content = Option<HeartbeatRequest>, description = "Optional: an empty body means all defaults"),
    responses((status = 200, body = HeartbeatAck), (status = 400, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
async fn heartbeat(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<HeartbeatAck>> {
    service(&p)?;
    let req: HeartbeatRequest = parse_optional_object(&body)?;
    let progress = req.progress.map(|v| (v, req.stage.as_deref()));
    Ok(axum::Json(s.jobs.heartbeat(&id, req.worker_id.as_deref(), req.lease_seconds, progress).await?))
}

/// Body of `POST /api/jobs/{id}/complete`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// The job's result: any JSON value.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub result: Option<serde_json::Value>,
    /// The claiming worker (checked when given).
    #[serde(default)]
    pub worker_id: Option<String>,
}

/// Completes a running job. Durable when answered.
#[utoipa::path(post, path = "/api/jobs/{id}/complete", tag = "jobs", params(("id" = String, Path, description = "job id")),
    request_body(content = Option<CompleteRequest>, description = "Optional: an empty body means all defaults"),
    responses((status = 200, body = Job), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody),
        (status = 413, body = crate::error::ErrorBody)))]
async fn complete(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<axum::Json<Job>> {
    service(&p)?;
    let req: CompleteRequest = parse_optional_object(&body)?;
    Ok(axum::Json(s.jobs.complete(&id, req.worker_id.as_deref(), req.result).await?))
}

/// One job of `POST /api/jobs/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteItem {
    /// The job's id.
    #[schema(min_length = 1)]
    pub id: String,
    /// The job's result: any JSON value.
    #[serde(default)]
    #[schema(value_type = Value)]
    pub result: Option<serde_json::Value>,
}

/// Body of `POST /api/jobs/complete`: the batch form of `/api/jobs/{id}/complete`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteBatchRequest {
    /// The claiming worker (checked against every job's lease when given).
    #[serde(default)]
    pub worker_id: Option<String>,
    /// 1 to 1000 running jobs, each id at most once.
    #[schema(min_items = 1, max_items = 1000)]
    pub jobs: Vec<CompleteItem>,
}

/// Why one job of a batch was not completed.
#[derive(Debug, Serialize, ToSchema)]
pub struct ItemError {
    /// The status a single `/complete` would have answered (404, 409, 413, 500).
    pub status: u16,
    /// Stable error code, e.g. `conflict`.
    pub code: &'static str,
    /// Human-readable message.
    pub message: String,
}

/// What happened to one job of a batch.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteItemResult {
    /// The job's id.
    pub id: String,
    /// Its status after the request (`completed`, or `cancelled` when it was cancelled
    /// while running); absent on error.
    pub status: Option<JobStatus>,
    /// Set when this job was not completed; the others are unaffected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ItemError>,
}

/// Answer of `POST /api/jobs/complete`.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompleteBatchResponse {
    /// Jobs that ended (completed or cancelled) by this request.
    pub completed: usize,
    /// One entry per requested job, in request order.
    pub results: Vec<CompleteItemResult>,
}

/// Completes many running jobs in one request and one durable write — the efficient
/// form for workers that claim with `max > 1`. Each job succeeds or fails on its own
/// (see `results`); 200 once every success is durable.
#[utoipa::path(post, path = "/api/jobs/complete", tag = "jobs", request_body = CompleteBatchRequest,
    responses((status = 200, body = CompleteBatchResponse), (status = 400, body = crate::error::ErrorBody)))]
async fn complete_batch(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<CompleteBatchRequest>,
) -> ApiResult<axum::Json<CompleteBatchResponse>> {
    service(&p)?;
    let ids: Vec<String> = req.jobs.iter().map(|j| j.id.clone()).collect();
    let results = s.jobs.complete_many(req.worker_id.as_deref(), req.jobs.into_iter().map(|j| (j.id, j.result)).collect()).await?;
    let mut completed = 0;
    let results = ids
        .into_iter()
        .zip(results)
        .map(|(id, r)| match r {
            Ok(job) => {
                completed += 1;
                CompleteItemResult { id, status: Some(job.status), error: None }
            }
            Err(e) => {
                let e = ApiError::from(e);
                CompleteItemResult {
                    id,
                    status: None,
                    error: Some(ItemError { status: e.status(), code: e.code.as_str(), message: e.message }),
                }
            }
        })
        .collect();
    Ok(axum::Json(CompleteBatchResponse { completed, results }))
}

/// Body of `POST /api/jobs/{id}/fail`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FailRequest {
    /// What went wrong.
    pub error: String,
    /// False makes the job dead at once (default true: retry while attempts remain).
    #[serde(default)]
    pub retry: Option<bool>,
    /// The claiming worker (checked when given).
    #[serde(default)]
    pub worker_id: Option<String>,
}

/// Fails a running job's attempt. Durable when answered.
#[utoipa::path(post, path = "/api/jobs/{id}/fail", tag = "jobs", params(("id" = String, Path, description = "job id")),
    request_body = FailRequest,
    responses((status = 200, body = Job), (status = 400, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody),
        (status = 409, body = crate::error::ErrorBody)))]
async fn fail(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    Json(req): Json<FailRequest>,
) -> ApiResult<axum::Json<Job>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.fail(&id, req.worker_id.as_deref(), &req.error, req.retry.unwrap_or(true)).await?))
}

/// Every queue: counts per status, completions in the last minute, oldest waiting age.
#[utoipa::path(get, path = "/api/queues", tag = "jobs", responses((status = 200, body = Vec<QueueInfo>)))]
async fn queues(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<axum::Json<Vec<QueueInfo>>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.queues().await?))
}

/// Pauses a queue: claims skip it until resumed (durable).
#[utoipa::path(post, path = "/api/queues/{queue}/pause", tag = "jobs", params(("queue" = String, Path, description = "queue name")),
    responses((status = 200, body = QueueInfo), (status = 400, body = crate::error::ErrorBody)))]
async fn pause(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(queue): Path<String>,
) -> ApiResult<axum::Json<QueueInfo>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.set_paused(&queue, true).await?))
}

/// Resumes a paused queue.
#[utoipa::path(post, path = "/api/queues/{queue}/resume", tag = "jobs", params(("queue" = String, Path, description = "queue name")),
    responses((status = 200, body = QueueInfo), (status = 400, body = crate::error::ErrorBody)))]
async fn resume(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(queue): Path<String>,
) -> ApiResult<axum::Json<QueueInfo>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.set_paused(&queue, false).await?))
}

/// Answer of a bulk operation on a queue.
#[derive(Serialize, ToSchema)]
pub struct BulkAnswer {
    /// The queue.
    pub queue: String,
    /// Jobs retried (`retry_dead`) or deleted (purge) by this request.
    pub count: usize,
    /// Jobs found but changed by someone else meanwhile, left as they are.
    pub skipped: usize,
    /// More jobs may match (each request acts on at most 1000): send it again.
    pub more: bool,
}

fn bulk_answer(queue: String, o: BulkOutcome) -> axum::Json<BulkAnswer> {
    axum::Json(BulkAnswer { queue, count: o.count, skipped: o.skipped, more: o.more })
}

/// Retries the dead jobs of a queue (attempts reset, ready now), at most 1000 per
/// request, newest first; `more` says when to send it again. Admin keys only.
#[utoipa::path(post, path = "/api/queues/{queue}/retry_dead", tag = "jobs", params(("queue" = String, Path, description = "queue name")),
    responses((status = 200, body = BulkAnswer), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn retry_dead(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(queue): Path<String>,
) -> ApiResult<axum::Json<BulkAnswer>> {
    service(&p)?;
    let o = s.jobs.retry_dead(&queue).await?;
    Ok(bulk_answer(queue, o))
}

/// Query of the purge.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PurgeParams {
    /// Which jobs to delete (required).
    #[param(inline)]
    pub status: PurgeStatus,
}

/// The final statuses a purge deletes.
#[derive(Debug, Clone, Copy, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PurgeStatus {
    /// Completed jobs.
    Completed,
    /// Dead jobs.
    Dead,
    /// Cancelled jobs.
    Cancelled,
}

/// Deletes the completed, dead or cancelled jobs of a queue (`?status=`), at most 1000
/// per request in one durable write; `more` says when to send it again. Admin keys only.
#[utoipa::path(delete, path = "/api/queues/{queue}/jobs", tag = "jobs", params(("queue" = String, Path, description = "queue name"), PurgeParams),
    responses((status = 200, body = BulkAnswer), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
async fn purge(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(queue): Path<String>,
    Query(q): Query<PurgeParams>,
) -> ApiResult<axum::Json<BulkAnswer>> {
    service(&p)?;
    let status = match q.status {
        PurgeStatus::Completed => JobStatus::Completed,
        PurgeStatus::Dead => JobStatus::Dead,
        PurgeStatus::Cancelled => JobStatus::Cancelled,
    };
    let o = s.jobs.purge(&queue, status).await?;
    Ok(bulk_answer(queue, o))
}

/// Creates or replaces a recurring schedule (cron with timezone).
#[utoipa::path(post, path = "/api/schedules", tag = "jobs", request_body = ScheduleRequest,
    responses((status = 201, body = Schedule), (status = 400, body = crate::error::ErrorBody)))]
async fn put_schedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<ScheduleRequest>,
) -> ApiResult<Response> {
    service(&p)?;
    reserved::refuse("job.name", &req.job.name)?;
    let sched = s.jobs.put_schedule(req).await?;
    Ok((StatusCode::CREATED, axum::Json(sched)).into_response())
}

/// Every schedule.
#[utoipa::path(get, path = "/api/schedules", tag = "jobs", responses((status = 200, body = Vec<Schedule>)))]
async fn list_schedules(State(s): State<AppState>, Extension(p): Extension<Principal>) -> ApiResult<axum::Json<Vec<Schedule>>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.schedules().await?))
}

/// One schedule.
#[utoipa::path(get, path = "/api/schedules/{name}", tag = "jobs", params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = Schedule), (status = 404, body = crate::error::ErrorBody)))]
async fn get_schedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Schedule>> {
    service(&p)?;
    Ok(axum::Json(s.jobs.schedule(&name).await?))
}

/// Deletes a schedule (jobs it enqueued are unaffected).
#[utoipa::path(delete, path = "/api/schedules/{name}", tag = "jobs", params(("name" = String, Path, description = "schedule name")),
    responses((status = 200, body = Success), (status = 404, body = crate::error::ErrorBody)))]
async fn delete_schedule(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(name): Path<String>,
) -> ApiResult<axum::Json<Success>> {
    service(&p)?;
    s.jobs.delete_schedule(&name).await?;
    Ok(axum::Json(Success { success: true }))
}
