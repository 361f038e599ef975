//! An [`Embedder`] that calls an OpenAI-compatible embeddings API
//! (`search.embeddings.provider: openai`): OpenAI itself, or any server that speaks
//! `POST {base_url}/embeddings` — another hearth among them (`/v1/embeddings`).
//!
//! - **Batches** of at most `batch_size` texts (the API takes up to 2,048 per request).
//! - **Retries** 429 and 5xx answers and transport errors with exponential backoff (a
//!   `Retry-After` in seconds is honoured, capped), up to [`ATTEMPTS`] times; other 4xx
//!   answers come back with the server's message (401/403: semantic search unavailable,
//!   the credentials are wrong; others: the caller's input was refused, a 400).
//! - **Checks** every vector's length against `dimension` (an error naming both) and
//!   re-normalises it: the indexes compare vectors by inner product.

use super::embed::{Embedder, normalize};
use super::error::SearchError;
use async_trait::async_trait;
use serde::Deserialize;
use std::time::Duration;

/// Most requests per batch (the first and the retries).
const ATTEMPTS: u32 = 5;
/// Longest wait between attempts, whatever `Retry-After` says.
const MAX_BACKOFF: Duration = Duration::from_secs(20);
/// Most texts one request may carry (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// The client's settings (from `search.embeddings`).
#[derive(Debug, Clone)]
pub struct OpenAiSettings {
    /// Base URL up to and including the version, e.g. `https://api.openai.com/v1`.
    pub base_url: String,
    /// The model the server is asked for.
    pub model: String,
    /// The length every vector must have.
    pub dimension: usize,
    /// Texts per request (1–2,048).
    pub batch_size: usize,
    /// `Authorization: Bearer` token (`OPENAI_API_KEY`), if the server needs one.
    pub api_key: Option<String>,
    /// Timeout of one request.
    pub timeout: Duration,
}

/// The remote embedder.
pub struct OpenAiEmbedder {
    http: reqwest::Client,
    url: String,
    settings: OpenAiSettings,
    model_id: String,
}

#[derive(Deserialize)]
struct Reply {
    data: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    index: usize,
    embedding: Vec<f32>,
}

impl OpenAiEmbedder {
    /// A client for `settings` (no request is made until the first embedding).
    pub fn new(settings: OpenAiSettings) -> Result<OpenAiEmbedder, SearchError> {
        let http = reqwest::Client::builder()
            .timeout(settings.timeout)
            .build()
            .map_err(|e| SearchError::Unavailable(format!("embeddings client: {e}")))?;
        let base = settings.base_url.trim_end_matches('/');
        let url = format!("{base}/embeddings");
        let model_id = format!("openai:{base}:{}", settings.model);
        Ok(OpenAiEmbedder {
            http,
            url,
            settings: OpenAiSettings { batch_size: settings.batch_size.clamp(1, MAX_INPUTS), ..settings },
            model_id,
        })
    }

    /// Embeds one probe text to check the server's vectors against `dimension`. Called at
    /// start: `Err` only when the server answered and its vectors do not fit (a server
    /// that cannot be reached now may be later; that is logged and not an error).
    pub async fn probe(&self) -> Result<(), SearchError> {
        match self.request(&["dimension probe".to_string()]).await {
            Ok(reply) => self.vectors(reply, 1).map(|_| ()),
            Err(e) => {
                tracing::warn!(error = %e, url = %self.url, "embeddings API not reachable at start; semantic search will use it when it is");
                Ok(())
            }
        }
    }

    /// One request, retried on 429/5xx and transport errors.
    async fn request(&self, texts: &[String]) -> Result<Reply, SearchError> {
        let body = serde_json::json!({ "input": texts, "model": self.settings.model, "encoding_format": "float" });
        let mut wait = Duration::from_millis(200);
        let mut last = String::new();
        for attempt in 1..=ATTEMPTS {
            let mut req = self.http.post(&self.url).json(&body);
            if let Some(key) = &self.settings.api_key {
                req = req.bearer_auth(key);
            }
            let retry_after = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    return resp.json().await.map_err(|e| SearchError::Unavailable(format!("{}: unreadable answer: {e}", self.url)));
                }
                Ok(resp) => {
                    let status = resp.status();
                    let after = resp.headers().get("retry-after").and_then(|v| v.to_str().ok()).and_then(|s| s.parse::<u64>().ok());
                    let text = resp.text().await.unwrap_or_default();
                    let message = serde_json::from_str::<serde_json::Value>(&text)
                        .ok()
                        .and_then(|v| v["error"]["message"].as_str().map(str::to_string))
                        .unwrap_or(text);
                    if matches!(status.as_u16(), 401 | 403) {
                        return Err(SearchError::Unavailable(format!("{} refused the credentials ({status}): {message}", self.url)));
                    }
                    if status.as_u16() != 429 && !status.is_server_error() {
                        return Err(SearchError::Refused(format!("{} answered {status}: {message}", self.url)));
                    }
                    last = format!("{} answered {status}: {message}", self.url);
                    after.map(Duration::from_secs)
                }
                Err(e) => {
                    last = format!("{}: {e}", self.url);
                    None
                }
            };
            if attempt == ATTEMPTS {
                break;
            }
            tokio::time::sleep(retry_after.unwrap_or(wait).min(MAX_BACKOFF)).await;
            wait = (wait * 2).min(MAX_BACKOFF);
        }
        Err(SearchError::Unavailable(format!("embeddings API unavailable after {ATTEMPTS} attempts: {last}")))
    }

    /// The vectors of `reply`, in input order, checked and normalised.
    fn vectors(&self, reply: Reply, want: usize) -> Result<Vec<Vec<f32>>, SearchError> {
        if reply.data.len() != want {
            return Err(SearchError::Unavailable(format!("{} returned {} vectors for {want} inputs", self.url, reply.data.len())));
        }
        let mut out: Vec<Option<Vec<f32>>> = vec![None; want];
        for item in reply.data {
            if item.embedding.len() != self.settings.dimension {
                return Err(SearchError::Unavailable(format!(
                    "model '{}' at {} gives vectors of {} dimensions; search.embeddings.dimension is {}",
                    self.settings.model,
                    self.url,
                    item.embedding.len(),
                    self.settings.dimension
                )));
            }
            let slot = out
                .get_mut(item.index)
                .ok_or_else(|| SearchError::Unavailable(format!("{}: index {} out of range", self.url, item.index)))?;
            *slot = Some(normalize(item.embedding));
        }
        out.into_iter().map(|v| v.ok_or_else(|| SearchError::Unavailable(format!("{}: an input got no vector", self.url)))).collect()
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SearchError> {
        let mut out = Vec::with_capacity(texts.len());
        for chunk in texts.chunks(self.settings.batch_size) {
            let reply = self.request(chunk).await?;
            out.extend(self.vectors(reply, chunk.len())?);
        }
        Ok(out)
    }

    fn dimension(&self) -> usize {
        self.settings.dimension
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }
}
