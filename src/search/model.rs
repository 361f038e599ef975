//! Request and response types of the search API, and their validation.

use super::config::SearchConfig;
use super::error::SearchError;
use super::filter::Filter;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A document to index (seed `SearchDocument`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SearchDocument)]
pub struct Document {
    /// Caller-chosen id; indexing an existing id replaces it.
    pub id: String,
    /// The text to search.
    pub content: String,
    /// Metadata returned with results and usable in filters.
    #[serde(default)]
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
}

/// Largest id accepted, bytes.
pub const MAX_ID_BYTES: usize = 512;

impl Document {
    /// Checks the document; `prefix` is prepended to field names (`documents[3].`).
    pub fn validate(&self, prefix: &str, cfg: &SearchConfig) -> Result<(), SearchError> {
        if self.id.trim().is_empty() {
            return Err(SearchError::invalid(format!("{prefix}id"), "must not be empty"));
        }
        if self.id.len() > MAX_ID_BYTES {
            return Err(SearchError::invalid(format!("{prefix}id"), format!("must be at most {MAX_ID_BYTES} bytes")));
        }
        if self.content.trim().is_empty() {
            return Err(SearchError::invalid(format!("{prefix}content"), "must not be empty"));
        }
        if self.content.len() > cfg.max_content_bytes {
            return Err(SearchError::invalid(
                format!("{prefix}content"),
                format!("is {} bytes; the limit is {} (search.max_content_bytes)", self.content.len(), cfg.max_content_bytes),
            ));
        }
        Ok(())
    }
}

/// A batch of documents.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// The documents.
    pub documents: Vec<Document>,
}

/// Which retrievers a query uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// BM25 only.
    Keyword,
    /// Vectors only.
    Semantic,
    /// Both, fused.
    Hybrid,
}

/// How keyword and semantic results are combined.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, utoipa::ToSchema)]
#[serde(tag = "method", rename_all = "lowercase")]
pub enum Fusion {
    /// Reciprocal rank fusion: sum of `weight / (k + rank)`.
    Rrf {
        /// Rank constant.
        k: f32,
        /// Keyword weight.
        keyword_weight: f32,
        /// Semantic weight.
        semantic_weight: f32,
    },
    /// Min-max normalised scores, `semantic_ratio * semantic + (1 - semantic_ratio) * keyword`.
    Weighted {
        /// Share of the semantic score, 0..=1.
        semantic_ratio: f32,
    },
}

/// `POST /api/search` body.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SearchRequest {
    /// The query text.
    pub query: String,
    /// Metadata filters (see `search::filter`).
    #[schema(value_type = Option<Object>)]
    pub filters: Option<Value>,
    /// Results wanted (1..=max_limit, default 10).
    pub limit: Option<i64>,
    /// Minimum score.
    pub threshold: Option<f32>,
    /// Seed flag: `true` = hybrid, `false` = semantic only; `mode` wins when both are given.
    pub hybrid: Option<bool>,
    /// `keyword`, `semantic` or `hybrid`.
    pub mode: Option<String>,
    /// `{method: rrf, k?, weights?: {keyword, semantic}}` or `{method: weighted, semantic_ratio?}`.
    #[schema(value_type = Option<Object>)]
    pub fusion: Option<Value>,
    /// Wrap matching terms of the snippet in `<em>`…`</em>`.
    pub highlight: Option<bool>,
}

/// A validated query.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchQuery {
    /// Query text (after expansion).
    pub query: String,
    /// Retrievers.
    pub mode: Mode,
    /// Fusion (hybrid only).
    pub fusion: Fusion,
    /// Results wanted.
    pub limit: usize,
    /// Minimum score.
    pub threshold: Option<f32>,
    /// Filter.
    pub filter: Filter,
    /// Highlight snippets.
    pub highlight: bool,
    /// Whether keyword results may stand in when semantic search is unavailable (the
    /// model is missing): true unless the request asked for semantic search by name
    /// (`mode: semantic` or `hybrid: false`), which then answers 503.
    pub keyword_fallback: bool,
}

impl SearchRequest {
    /// Validates against the configuration, naming the offending field on error.
    pub fn validate(&self, cfg: &SearchConfig) -> Result<SearchQuery, SearchError> {
        let query = self.query.trim();
        if query.is_empty() {
            return Err(SearchError::invalid("query", "must not be empty"));
        }
        if query.len() > 4096 {
            return Err(SearchError::invalid("query", "must be at most 4096 bytes"));
        }
        let limit = match self.limit {
            None => cfg.search.default_limit,
            Some(l) if l <= 0 => return Err(SearchError::invalid("limit", "must be at least 1")),
            Some(l) if l as u64 > cfg.search.max_limit as u64 => {
                return Err(SearchError::invalid("limit", format!("must be at most {}", cfg.search.max_limit)));
            }
            Some(l) => l as usize,
        };
        let keyword_fallback = !matches!((self.mode.as_deref(), self.hybrid), (Some("semantic"), _) | (None, Some(false)));
        let mode = match self.mode.as_deref() {
            Some("keyword") => Mode::Keyword,
            Some("semantic") => Mode::Semantic,
            Some("hybrid") => Mode::Hybrid,
            Some(other) => return Err(SearchError::invalid("mode", format!("unknown mode '{other}'; use keyword, semantic or hybrid"))),
            None => match self.hybrid {
                Some(true) => Mode::Hybrid,
                Some(false) => Mode::Semantic,
                None if cfg.search.enable_hybrid => Mode::Hybrid,
                None => Mode::Semantic,
            },
        };
        if let Some(t) = self.threshold
            && !t.is_finite()
        {
            return Err(SearchError::invalid("threshold", "must be a finite number"));
        }
        let filter = match &self.filters {
            None | Some(Value::Null) => Filter::default(),
            Some(Value::Object(m)) => Filter::parse(m)?,
            Some(_) => return Err(SearchError::invalid("filters", "must be an object of metadata conditions")),
        };
        Ok(SearchQuery {
            query: query.to_string(),
            mode,
            fusion: parse_fusion(self.fusion.as_ref(), cfg)?,
            limit,
            threshold: self.threshold.or(cfg.search.default_threshold),
            filter,
            highlight: self.highlight.unwrap_or(false),
            keyword_fallback,
        })
    }
}

/// The configured default fusion.
pub fn default_fusion(cfg: &SearchConfig) -> Fusion {
    let f = &cfg.fusion;
    if f.method == "rrf" {
        Fusion::Rrf { k: f.rrf_k, keyword_weight: f.keyword_weight, semantic_weight: f.semantic_weight }
    } else {
        Fusion::Weighted { semantic_ratio: f.semantic_ratio }
    }
}

fn num(obj: &Map<String, Value>, key: &str, field: &str, min: f32, max: f32) -> Result<Option<f32>, SearchError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_f64() {
            Some(x) if (min as f64..=max as f64).contains(&x) => Ok(Some(x as f32)),
            _ => Err(SearchError::invalid(field, format!("must be a number in {min}..={max}"))),
        },
    }
}

fn parse_fusion(v: Option<&Value>, cfg: &SearchConfig) -> Result<Fusion, SearchError> {
    let Some(v) = v.filter(|v| !v.is_null()) else { return Ok(default_fusion(cfg)) };
    let Some(obj) = v.as_object() else { return Err(SearchError::invalid("fusion", "must be an object with a method")) };
    let method = obj.get("method").and_then(Value::as_str).unwrap_or("");
    match method {
        "rrf" => {
            for k in obj.keys() {
                if !["method", "k", "weights"].contains(&k.as_str()) {
                    return Err(SearchError::invalid(format!("fusion.{k}"), "unknown field; rrf takes k and weights"));
                }
            }
            let k = num(obj, "k", "fusion.k", 0.0, 1e6)?.unwrap_or(cfg.fusion.rrf_k);
            let (mut kw, mut sw) = (cfg.fusion.keyword_weight, cfg.fusion.semantic_weight);
            match obj.get("weights") {
                None | Some(Value::Null) => {}
                Some(Value::Object(w)) => {
                    for key in w.keys() {
                        if key != "keyword" && key != "semantic" {
                            return Err(SearchError::invalid(format!("fusion.weights.{key}"), "unknown weight; use keyword and semantic"));
                        }
                    }
                    kw = num(w, "keyword", "fusion.weights.keyword", 0.0, 1e6)?.unwrap_or(kw);
                    sw = num(w, "semantic", "fusion.weights.semantic", 0.0, 1e6)?.unwrap_or(sw);
                }
                Some(_) => return Err(SearchError::invalid("fusion.weights", "must be an object {keyword, semantic}")),
            }
            Ok(Fusion::Rrf { k, keyword_weight: kw, semantic_weight: sw })
        }
        "weighted" => {
            for k in obj.keys() {
                if k != "method" && k != "semantic_ratio" {
                    return Err(SearchError::invalid(format!("fusion.{k}"), "unknown field; weighted takes semantic_ratio"));
                }
            }
            let r = num(obj, "semantic_ratio", "fusion.semantic_ratio", 0.0, 1.0)?.unwrap_or(cfg.fusion.semantic_ratio);
            Ok(Fusion::Weighted { semantic_ratio: r })
        }
        other => Err(SearchError::invalid("fusion.method", format!("unknown fusion method '{other}'; use rrf or weighted"))),
    }
}

/// Per-retriever scores of a result's best chunks.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct Scores {
    /// BM25 score of the best keyword chunk (null: not among keyword candidates).
    pub keyword: Option<f32>,
    /// Cosine similarity of the best semantic chunk (null: not among semantic candidates).
    pub semantic: Option<f32>,
}

/// One search result (seed `SearchResult`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, utoipa::ToSchema)]
pub struct SearchResult {
    /// Document id.
    pub id: String,
    /// Final score (mode-dependent: BM25, cosine, or the fused score).
    pub score: f32,
    /// The best chunk, highlighted on request.
    pub content: String,
    /// The document's metadata.
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    /// Per-retriever scores.
    pub scores: Scores,
    /// Set when the result comes from keyword search standing in for semantic or hybrid
    /// search: why semantic search is unavailable (e.g. the model file is missing).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub degraded: Option<String>,
}

/// `GET /api/search/{id}/similar` query string.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SimilarParams {
    /// Results wanted (default `search.default_limit`, at most `search.max_limit`).
    #[param(minimum = 1)]
    pub limit: Option<i64>,
}
