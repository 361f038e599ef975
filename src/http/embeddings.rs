//! `POST /v1/embeddings`: hearth's local model behind OpenAI's embeddings API, so that any
//! application (or another hearth, `search.embeddings.provider: openai`) can use this node
//! as an offline embedding server. Same authentication as the rest of the API; a
//! read-only key may call it (it changes nothing).
//!
//! Accepted as OpenAI does: `input` one string or up to 2,048 strings (token arrays are
//! not accepted), any `model` name (the answer names hearth's model), `encoding_format`
//! `float` (default) or `base64` (little-endian f32), `dimensions` only if equal to the
//! model's. An input longer than the model's token limit is truncated, and `usage`
//! counts the tokens actually embedded.

use super::AppState;
use crate::error::{ApiError, ErrorBody};
use crate::http::error::{ApiResult, Json};
use crate::search::openai::MAX_INPUTS;
use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

/// Longest input text, in bytes (the model reads its first 256 tokens anyway).
pub const MAX_INPUT_BYTES: usize = 64 * 1024;

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(embeddings))
}

/// One text or several.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    One(String),
    /// Up to 2,048 texts.
    Many(Vec<String>),
}

/// `POST /v1/embeddings` (OpenAI's request shape).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct EmbeddingsRequest {
    /// The text(s) to embed: a non-empty string, or 1–2,048 non-empty strings.
    pub input: EmbeddingInput,
    /// Any name; the answer names the model that embedded.
    #[serde(default)]
    pub model: Option<String>,
    /// `float` (default) or `base64`.
    #[serde(default)]
    pub encoding_format: Option<String>,
    /// Must equal the model's dimension when given (hearth's model cannot shorten vectors).
    #[serde(default)]
    pub dimensions: Option<usize>,
    /// Ignored (OpenAI's end-user id).
    #[serde(default)]
    pub user: Option<String>,
}

/// A vector as floats or as base64 of little-endian f32s.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: float`.
    Float(Vec<f32>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// One vector of the answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbeddingItem {
    /// Always `embedding`.
    pub object: &'static str,
    /// Position of its input.
    pub index: usize,
    /// The unit-length vector.
    pub embedding: EmbeddingVector,
}

/// Tokens read.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbeddingUsage {
    /// Tokens embedded (after truncation), over all inputs.
    pub prompt_tokens: usize,
    /// Same as `prompt_tokens`.
    pub total_tokens: usize,
}

/// The answer (OpenAI's shape).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct EmbeddingsResponse {
    /// Always `list`.
    pub object: &'static str,
    /// One vector per input, in order.
    pub data: Vec<EmbeddingItem>,
    /// The model that embedded (hearth's model id).
    pub model: String,
    /// Tokens read.
    pub usage: EmbeddingUsage,
}

/// Checks the request; returns the texts and whether base64 was asked for.
fn validate(req: EmbeddingsRequest, dimension: usize) -> Result<(Vec<String>, bool), ApiError> {
    let texts = match req.input {
        EmbeddingInput::One(t) => vec![t],
        EmbeddingInput::Many(v) => v,
    };
    if texts.is_empty() {
        return Err(ApiError::invalid("input", "must hold at least one text"));
    }
    if texts.len() > MAX_INPUTS {
        return Err(ApiError::invalid("input", format!("at most {MAX_INPUTS} texts per request, got {}", texts.len())));
    }
    for (i, t) in texts.iter().enumerate() {
        if t.trim().is_empty() {
            return Err(ApiError::invalid(format!("input[{i}]"), "must not be empty"));
        }
        if t.len() > MAX_INPUT_BYTES {
            return Err(ApiError::too_large(format!("input[{i}]"), format!("{} bytes, more than {MAX_INPUT_BYTES}", t.len())));
        }
    }
    let base64 = match req.encoding_format.as_deref() {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => return Err(ApiError::invalid("encoding_format", format!("'{other}' is not 'float' or 'base64'"))),
    };
    if let Some(d) = req.dimensions
        && d != dimension
    {
        return Err(ApiError::invalid("dimensions", format!("this model gives {dimension} dimensions; {d} cannot be served")));
    }
    Ok((texts, base64))
}

/// Embed texts with this node's model (OpenAI-compatible).
#[utoipa::path(post, path = "/v1/embeddings", tag = "search", request_body = EmbeddingsRequest,
    responses(
        (status = 200, description = "One unit vector per input", body = EmbeddingsResponse),
        (status = 400, description = "Invalid request; `field` names the offending field", body = ErrorBody),
        (status = 413, description = "An input is longer than 64 KiB", body = ErrorBody),
        (status = 503, description = "The embedding model is not available", body = ErrorBody),
    ))]
async fn embeddings(State(s): State<AppState>, Json(req): Json<EmbeddingsRequest>) -> ApiResult<Json<EmbeddingsResponse>> {
    let embedder = s.search.loaded_embedder().await?;
    let (texts, base64) = validate(req, embedder.dimension())?;
    let vectors = embedder.embed(&texts).await?;
    let tokens: usize = texts.iter().map(|t| embedder.count_tokens(t).unwrap_or_else(|| t.split_whitespace().count())).sum();
    let data = vectors
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = match base64 {
                false => EmbeddingVector::Float(v),
                true => EmbeddingVector::Base64(
                    base64::engine::general_purpose::STANDARD.encode(v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>()),
                ),
            };
            EmbeddingItem { object: "embedding", index, embedding }
        })
        .collect();
    Ok(Json(EmbeddingsResponse {
        object: "list",
        data,
        model: embedder.model_id().to_string(),
        usage: EmbeddingUsage { prompt_tokens: tokens, total_tokens: tokens },
    }))
}
