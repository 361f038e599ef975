//! HTTP routes of the export module: exports as jobs (`/api/exports`), and the built-in
//! stored sources (`/api/transcripts`, `/api/documents`).
//!
//! Authorisation: API keys (and auth off) may act on every export; a user token may create
//! exports (they become the owner; no webhook callback) and list, read, download or delete
//! only its own. Stored sources need an API key. (The whole policy: `http/auth.rs`.)

use super::{
    AppState,
    auth::Principal,
    error::{ApiResult, Json, Query},
};
use crate::error::ApiError;
use crate::export::{Document, ExportCreated, ExportJob, ExportRequest, ExportStatus, ListFilter, StoredKind, Transcript};
use axum::{
    Extension,
    body::Body,
    extract::{Path, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Routes of the export module.
pub fn routes() -> OpenApiRouter<AppState> {
    describe_metrics();
    OpenApiRouter::new()
        .routes(routes!(create_export, list_exports))
        .routes(routes!(get_export, delete_export))
        .routes(routes!(download_export))
        .routes(routes!(create_transcript))
        .routes(routes!(get_transcript, delete_transcript))
        .routes(routes!(create_document))
        .routes(routes!(get_document, delete_document))
}

fn describe_metrics() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        ::metrics::describe_counter!("hearth_export_created_total", "Export requests accepted, by format.");
        ::metrics::describe_counter!("hearth_export_downloads_total", "Export files served.");
    });
}

/// The owner an export gets from its creator.
fn owner_of(p: &Principal) -> Option<String> {
    match p {
        Principal::User(u) => Some(u.clone()),
        _ => None,
    }
}

/// 403 unless `p` may act on `job` (its owner, or a service caller).
fn check_access(p: &Principal, job: &ExportJob) -> ApiResult<()> {
    match &job.user_id {
        _ if p.is_service() => Ok(()),
        Some(owner) => p.require_user(owner),
        None => Err(ApiError::new(crate::error::ErrorCode::Forbidden, "this export belongs to a service caller")),
    }
}

/// Starts an export job.
#[utoipa::path(
    post,
    path = "/api/exports",
    tag = "export",
    request_body = ExportRequest,
    responses(
        (status = 202, description = "Accepted; poll GET /api/exports/{id}", body = ExportCreated),
        (status = 400, description = "Unknown format or source type, missing or invalid source, bad filename or options", body = crate::error::ErrorBody),
        (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
    )
)]
async fn create_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Json(req): Json<ExportRequest>,
) -> ApiResult<(StatusCode, axum::Json<ExportCreated>)> {
    if let (Principal::User(_), Some(u)) = (&p, &req.notify_user_id) {
        p.require_user(u)?;
    }
    if let Principal::User(_) = &p {
        // A callback is a server-to-server request signed with the caller's secret; a
        // browser holding a user token has no use for one, and would make hearth send
        // requests wherever it likes.
        for (field, set) in [("webhook_url", req.webhook_url.is_some()), ("webhook_secret", req.webhook_secret.is_some())] {
            if set {
                return Err(ApiError {
                    code: crate::error::ErrorCode::Forbidden,
                    message: format!("{field}: a user token may not set a webhook callback; use an API key"),
                    field: Some(field.into()),
                });
            }
        }
    }
    let format = req.format.clone();
    let created = s.export.create(req, owner_of(&p)).await?;
    ::metrics::counter!("hearth_export_created_total", "format" => format).increment(1);
    Ok((StatusCode::ACCEPTED, axum::Json(created)))
}

/// States in the OpenAPI document the enabled formats and the rules of stored sources.
pub(super) fn refine(doc: &mut serde_json::Value, app: &crate::App) {
    use serde_json::json;
    let r = super::openapi::refine;
    r(doc, "/components/schemas/ExportRequest/properties/format", json!({"enum": app.export.renderer().format_names()}));
    r(doc, "/components/schemas/Document/properties/content", json!({"minLength": 1, "pattern": "\\S"}));
    // Ids of stored sources: at most 200 characters, no '/' or control characters.
    let id = json!({"maxLength": 200, "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]*$"});
    for source in ["Document", "Transcript"] {
        r(doc, &format!("/components/schemas/{source}/properties/id"), id.clone());
    }
    super::openapi::refine_param(
        doc,
        "/api/exports",
        "get",
        "status",
        json!({"enum": ["pending", "running", "completed", "failed", "cancelled"]}),
    );
}

/// Query of `GET /api/exports`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this source type (`transcript`, `document`, `batch`...).
    pub source_type: Option<String>,
    /// Only this status: pending, running, completed, failed, cancelled.
    pub status: Option<String>,
    /// At most this many, newest first (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
}

/// Lists exports, newest first.
#[utoipa::path(
    get,
    path = "/api/exports",
    tag = "export",
    params(ListParams),
    responses(
        (status = 200, description = "Exports", body = Vec<ExportJob>),
        (status = 400, description = "Invalid status or limit", body = crate::error::ErrorBody),
    )
)]
async fn list_exports(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Query(q): Query<ListParams>,
) -> ApiResult<axum::Json<Vec<ExportJob>>> {
    let status = match q.status.as_deref() {
        None => None,
        Some(st) => Some(
            ExportStatus::parse(st)
                .ok_or_else(|| ApiError::invalid_query("status", "must be pending, running, completed, failed or cancelled"))?,
        ),
    };
    let limit = q.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid_query("limit", "must be 1..=1000"));
    }
    let user_id = if p.is_service() { None } else { Some(owner_of(&p).unwrap_or_default()) };
    Ok(axum::Json(s.export.list(ListFilter { source_type: q.source_type, status, user_id, limit }).await?))
}

/// One export's status.
#[utoipa::path(
    get,
    path = "/api/exports/{id}",
    tag = "export",
    params(("id" = String, Path, description = "Export id (= job id = progress id)")),
    responses(
        (status = 200, description = "The export", body = ExportJob),
        (status = 403, description = "Not yours", body = crate::error::ErrorBody),
        (status = 404, description = "No such export", body = crate::error::ErrorBody),
    )
)]
async fn get_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<ExportJob>> {
    let job = s.export.get(&id).await?;
    check_access(&p, &job)?;
    Ok(axum::Json(job))
}

/// Answer of `DELETE /api/exports/{id}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeleteResponse {
    /// Always true.
    pub success: bool,
    /// `cancelled` when a pending/running export was cancelled (the record stays);
    /// otherwise the status the deleted export had.
    pub status: ExportStatus,
}

/// Cancels a pending or running export, or deletes a finished one with its file.
#[utoipa::path(
    delete,
    path = "/api/exports/{id}",
    tag = "export",
    params(("id" = String, Path, description = "Export id")),
    responses(
        (status = 200, description = "Cancelled or deleted", body = DeleteResponse),
        (status = 403, description = "Not yours", body = crate::error::ErrorBody),
        (status = 404, description = "No such export", body = crate::error::ErrorBody),
    )
)]
async fn delete_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<axum::Json<DeleteResponse>> {
    let job = s.export.get(&id).await?;
    check_access(&p, &job)?;
    let status = s.export.delete(&id).await?;
    Ok(axum::Json(DeleteResponse { success: true, status }))
}

/// Downloads a completed export.
#[utoipa::path(
    get,
    path = "/api/exports/{id}/download",
    tag = "export",
    params(("id" = String, Path, description = "Export id")),
    responses(
        (status = 200, description = "The file, with Content-Disposition: attachment and an ETag", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 304, description = "If-None-Match matched the ETag"),
        (status = 403, description = "Not yours", body = crate::error::ErrorBody),
        (status = 404, description = "No such export", body = crate::error::ErrorBody),
        (status = 409, description = "Not completed (yet)", body = crate::error::ErrorBody),
    )
)]
async fn download_export(
    State(s): State<AppState>,
    Extension(p): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let job = s.export.get(&id).await?;
    check_access(&p, &job)?;
    let etag = job.etag.clone().unwrap_or_default();
    if !etag.is_empty()
        && headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
        && job.status == ExportStatus::Completed
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let dl = s.export.download(&id).await?;
    ::metrics::counter!("hearth_export_downloads_total").increment(1);
    let stream = futures::stream::unfold(dl.reader, |mut r| async move {
        use tokio::io::AsyncReadExt;
        let mut buf = vec![0u8; 64 * 1024];
        match r.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((Ok::<_, std::io::Error>(bytes::Bytes::from(buf)), r))
            }
            Err(e) => Some((Err(e), r)),
        }
    });
    let hv = |v: &str| HeaderValue::from_str(v).map_err(|e| ApiError::internal(format!("header: {e}")));
    let mut resp = Response::new(Body::from_stream(stream));
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&dl.job.content_type)?);
    h.insert(header::CONTENT_DISPOSITION, hv(&crate::export::storage::content_disposition(&dl.job.filename))?);
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(dl.len));
    if !etag.is_empty() {
        h.insert(header::ETAG, hv(&etag)?);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"));
    Ok(resp)
}

// ---- stored sources: one generic handler set, routed once per kind ------------------

/// Stores a transcript or document (`K`): validated, id assigned when empty.
async fn create_stored<K: StoredKind>(s: AppState, p: Principal, v: serde_json::Value) -> ApiResult<(StatusCode, axum::Json<K>)> {
    require_service(&p)?;
    Ok((StatusCode::CREATED, axum::Json(s.export.save_stored::<K>(v).await?)))
}

/// A stored transcript or document (`K`).
async fn get_stored<K: StoredKind>(s: AppState, p: Principal, id: String) -> ApiResult<axum::Json<K>> {
    require_service(&p)?;
    Ok(axum::Json(s.export.get_stored::<K>(&id).await?))
}

/// Deletes a stored transcript or document (`K`).
async fn delete_stored<K: StoredKind>(s: AppState, p: Principal, id: String) -> ApiResult<axum::Json<Deleted>> {
    require_service(&p)?;
    s.export.delete_stored::<K>(&id).await?;
    Ok(axum::Json(Deleted { success: true }))
}

/// The routes of one stored kind: each handler is the generic one above; the macro only
/// names it (the OpenAPI operation id) and describes it for `/openapi.json`.
macro_rules! stored_routes {
    (
        $kind:ident at $path:tt and $item_path:tt, id $id_doc:tt;
        create $create:ident: $create_doc:tt, invalid $invalid:tt;
        get $get:ident: $get_doc:tt, found $found:tt, missing $missing:tt;
        delete $delete:ident: $delete_doc:tt;
    ) => {
        #[doc = $create_doc]
        #[utoipa::path(
                                                            post,
                                                            path = $path,
                                                            tag = "export",
                                                            request_body = $kind,
                                                            responses(
                                                                (status = 201, description = "Stored", body = $kind),
                                                                (status = 400, description = $invalid, body = crate::error::ErrorBody),
                                                                (status = 403, description = "Not allowed", body = crate::error::ErrorBody),
                                                            )
                                                        )]
        async fn $create(
            State(s): State<AppState>,
            Extension(p): Extension<Principal>,
            Json(v): Json<serde_json::Value>,
        ) -> ApiResult<(StatusCode, axum::Json<$kind>)> {
            create_stored::<$kind>(s, p, v).await
        }

        #[doc = $get_doc]
        #[utoipa::path(
                                                            get,
                                                            path = $item_path,
                                                            tag = "export",
                                                            params(("id" = String, Path, description = $id_doc)),
                                                            responses(
                                                                (status = 200, description = $found, body = $kind),
                                                                (status = 404, description = $missing, body = crate::error::ErrorBody),
                                                            )
                                                        )]
        async fn $get(
            State(s): State<AppState>,
            Extension(p): Extension<Principal>,
            Path(id): Path<String>,
        ) -> ApiResult<axum::Json<$kind>> {
            get_stored::<$kind>(s, p, id).await
        }

        #[doc = $delete_doc]
        #[utoipa::path(
                                                            delete,
                                                            path = $item_path,
                                                            tag = "export",
                                                            params(("id" = String, Path, description = $id_doc)),
                                                            responses(
                                                                (status = 200, description = "Deleted", body = Deleted),
                                                                (status = 404, description = $missing, body = crate::error::ErrorBody),
                                                            )
                                                        )]
        async fn $delete(
            State(s): State<AppState>,
            Extension(p): Extension<Principal>,
            Path(id): Path<String>,
        ) -> ApiResult<axum::Json<Deleted>> {
            delete_stored::<$kind>(s, p, id).await
        }
    };
}

stored_routes! {
    Transcript at "/api/transcripts" and "/api/transcripts/{id}", id "Transcript id";
    create create_transcript: "Stores a transcript (validated; segments sorted by start).",
        invalid "Invalid segment (field named, e.g. segments[2].end)";
    get get_transcript: "A stored transcript.", found "The transcript", missing "No such transcript";
    delete delete_transcript: "Deletes a stored transcript.";
}

stored_routes! {
    Document at "/api/documents" and "/api/documents/{id}", id "Document id";
    create create_document: "Stores a document.", invalid "Invalid document (field named)";
    get get_document: "A stored document.", found "The document", missing "No such document";
    delete delete_document: "Deletes a stored document.";
}

/// Answer of a delete.
#[derive(Debug, Serialize, ToSchema)]
pub struct Deleted {
    /// Always true.
    pub success: bool,
}

/// Stored sources are shared data: only API-key callers (or auth off) may touch them.
fn require_service(p: &Principal) -> ApiResult<()> {
    if p.is_service() { Ok(()) } else { Err(ApiError::new(crate::error::ErrorCode::Forbidden, "stored sources need an API key")) }
}
