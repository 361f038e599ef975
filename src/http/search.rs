//! HTTP routes of the search module (seed "6. Search Module").

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::http::error::{ApiResult, Json, Query};
use crate::search::SearchStats;
use crate::search::model::{BatchRequest, Document, SearchRequest, SearchResult, SimilarParams};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Serialize;
use utoipa_axum::{router::OpenApiRouter, routes};

/// States the configured result bound in the OpenAPI document.
pub(super) fn refine(doc: &mut serde_json::Value, config: &crate::Config) {
    use serde_json::json;
    let (r, cfg) = (super::openapi::refine, &config.search);
    let max = json!({"maximum": cfg.search.max_limit});
    super::openapi::refine_param(doc, "/api/search/{id}/similar", "get", "limit", max.clone());
    let not_blank = |max: usize| json!({"minLength": 1, "maxLength": max, "pattern": "\\S"});
    r(doc, "/components/schemas/SearchDocument/properties/id", not_blank(crate::search::MAX_ID_BYTES));
    r(doc, "/components/schemas/SearchDocument/properties/content", not_blank(cfg.max_content_bytes));
    r(doc, "/components/schemas/BatchRequest/properties/documents", json!({"minItems": 1, "maxItems": cfg.max_batch_docs}));
    r(doc, "/components/schemas/SearchRequest/properties/query", not_blank(4096));
    r(doc, "/components/schemas/SearchRequest/properties/mode", json!({"enum": ["keyword", "semantic", "hybrid", null]}));
    r(doc, "/components/schemas/SearchRequest/properties/limit", json!({"minimum": 1, "maximum": cfg.search.max_limit}));
}

/// Routes of the search module.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(search))
        .routes(routes!(index_document))
        .routes(routes!(index_batch))
        .routes(routes!(stats))
        .routes(routes!(delete_document))
        .routes(routes!(similar))
}

/// `{"success": true}`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Success {
    /// Always true.
    pub success: bool,
}

/// Answer to a batch: indexed at once, or queued as a job.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BatchAnswer {
    /// True when the batch was accepted.
    pub success: bool,
    /// Documents indexed (synchronous batches).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub indexed: Option<usize>,
    /// The indexing job (large batches); follow it at `/api/jobs/{job_id}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
}

/// Search indexed documents (keyword, semantic or hybrid).
#[utoipa::path(post, path = "/api/search", tag = "search", request_body = SearchRequest,
    responses(
        (status = 200, description = "Results, best first", body = Vec<SearchResult>),
        (status = 400, description = "Invalid request; `field` names the offending field", body = ErrorBody),
        (status = 503, description = "Semantic search unavailable (model missing); the message names the file", body = ErrorBody),
    ))]
async fn search(State(s): State<AppState>, Json(req): Json<SearchRequest>) -> ApiResult<Json<Vec<SearchResult>>> {
    Ok(Json(s.search.search(&req).await?))
}

/// Index (or re-index) one document; answers once it is durable and searchable.
#[utoipa::path(post, path = "/api/search/index", tag = "search", request_body = Document,
    responses(
        (status = 200, description = "Indexed and searchable", body = Success),
        (status = 400, description = "Invalid document", body = ErrorBody),
    ))]
async fn index_document(State(s): State<AppState>, Json(doc): Json<Document>) -> ApiResult<Json<Success>> {
    s.search.index(doc).await?;
    Ok(Json(Success { success: true }))
}

/// Index many documents. Batches above `search.batch_job_above` documents run as a job
/// (`search.index_batch`) with progress, answered 202 with its id.
#[utoipa::path(post, path = "/api/search/index/batch", tag = "search", request_body = BatchRequest,
    responses(
        (status = 200, description = "Indexed and searchable", body = BatchAnswer),
        (status = 202, description = "Queued as a job", body = BatchAnswer),
        (status = 400, description = "Invalid document; `field` is `documents[i].…`", body = ErrorBody),
    ))]
async fn index_batch(State(s): State<AppState>, Json(req): Json<BatchRequest>) -> ApiResult<(StatusCode, Json<BatchAnswer>)> {
    s.search.validate_batch(&req.documents)?;
    if req.documents.len() > s.search.config().batch_job_above {
        let job_id = s.search.enqueue_batch(req.documents).await?;
        return Ok((StatusCode::ACCEPTED, Json(BatchAnswer { success: true, indexed: None, job_id: Some(job_id) })));
    }
    let n = s.search.index_batch(req.documents, None).await?;
    Ok((StatusCode::OK, Json(BatchAnswer { success: true, indexed: Some(n), job_id: None })))
}

/// Index statistics.
#[utoipa::path(get, path = "/api/search/stats", tag = "search",
    responses((status = 200, description = "Counts and model state", body = SearchStats)))]
async fn stats(State(s): State<AppState>) -> ApiResult<Json<SearchStats>> {
    Ok(Json(s.search.stats().await))
}

/// Delete a document.
#[utoipa::path(delete, path = "/api/search/{id}", tag = "search",
    params(("id" = String, Path, description = "Document id")),
    responses(
        (status = 200, description = "Deleted", body = Success),
        (status = 404, description = "No such document", body = ErrorBody),
    ))]
async fn delete_document(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Success>> {
    s.search.delete(&id).await?;
    Ok(Json(Success { success: true }))
}

/// Documents similar to one (never the document itself).
#[utoipa::path(get, path = "/api/search/{id}/similar", tag = "search",
    params(("id" = String, Path, description = "Document id"), SimilarParams),
    responses(
        (status = 200, description = "Similar documents, best first", body = Vec<SearchResult>),
        (status = 400, description = "Invalid limit", body = ErrorBody),
        (status = 404, description = "No such document", body = ErrorBody),
        (status = 503, description = "Semantic search unavailable", body = ErrorBody),
    ))]
async fn similar(State(s): State<AppState>, Path(id): Path<String>, Query(p): Query<SimilarParams>) -> ApiResult<Json<Vec<SearchResult>>> {
    let max = s.search.config().search.max_limit;
    let limit = match p.limit {
        None => s.search.config().search.default_limit,
        Some(l) if l <= 0 => return Err(ApiError::invalid_query("limit", "must be at least 1")),
        Some(l) if l as u64 > max as u64 => return Err(ApiError::invalid_query("limit", format!("must be at most {max}"))),
        Some(l) => l as usize,
    };
    Ok(Json(s.search.similar(&id, limit).await?))
}
