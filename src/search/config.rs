//! Configuration of search (`search:` in hearth.yaml).

use crate::config::error::ConfigError;
use serde::{Deserialize, Serialize};

/// Settings for hybrid search (seed "Search Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// The search store (`type`: `embedded`, the only one in this build) and its settings.
    pub vector_db: VectorDbConfig,
    /// Embedding model.
    pub embeddings: EmbeddingsConfig,
    /// Query defaults.
    pub search: QueryDefaults,
    /// Chunking of long content.
    pub chunking: ChunkingConfig,
    /// How keyword and semantic results are fused when the request does not say.
    pub fusion: FusionDefaults,
    /// Largest document content accepted, bytes.
    pub max_content_bytes: usize,
    /// Largest number of documents in one `POST /api/search/index/batch`.
    pub max_batch_docs: usize,
    /// Batches with more documents than this run as a background job with progress.
    pub batch_job_above: usize,
}

impl SearchConfig {
    /// Checks what serde cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.vector_db.kind != "embedded" {
            return Err(ConfigError::invalid(
                "search.vector_db.type",
                format!("the '{}' search store is not supported yet (not in this build); use embedded", self.vector_db.kind),
            ));
        }
        let e = &self.embeddings;
        if !["local", "openai"].contains(&e.provider.as_str()) {
            return Err(ConfigError::invalid(
                "search.embeddings.provider",
                format!(
                    "the '{}' embedding provider is not supported yet; use local (the ONNX model in search.embeddings.model_dir) or openai (an OpenAI-compatible API)",
                    e.provider
                ),
            ));
        }
        // Keys of the stores and providers above: refused rather than ignored.
        let v = &self.vector_db;
        for (key, set) in [
            ("search.vector_db.url", v.url.is_some()),
            ("search.vector_db.api_key", v.api_key.is_some()),
            ("search.vector_db.collection", v.collection != VectorDbConfig::default().collection),
            ("search.embeddings.api_key", e.provider == "local" && e.api_key.is_some()),
        ] {
            if set {
                return Err(ConfigError::invalid(
                    key,
                    "applies to a remote store or provider, which this configuration does not use; remove it",
                ));
            }
        }
        let local = EmbeddingsConfig::default();
        if e.provider == "local" && e.model != local.model {
            return Err(ConfigError::invalid(
                "search.embeddings.model",
                format!(
                    "the local provider runs the model in model_dir ({}); choosing a model by name needs provider: openai",
                    local.model
                ),
            ));
        }
        if e.provider == "local" && e.dimension != local.dimension {
            return Err(ConfigError::invalid(
                "search.embeddings.dimension",
                format!(
                    "the local model gives {}-dimensional vectors; the dimension is configurable only with provider: openai",
                    local.dimension
                ),
            ));
        }
        if e.provider == "openai" && !e.base_url.starts_with("http") {
            return Err(ConfigError::invalid("search.embeddings.base_url", "must be an http(s) URL such as https://api.openai.com/v1"));
        }
        if e.provider == "openai" && !(1..=super::openai::MAX_INPUTS).contains(&e.batch_size) {
            return Err(ConfigError::invalid("search.embeddings.batch_size", "must be from 1 to 2048 with the openai provider"));
        }
        if self.chunking.overlap >= self.chunking.size {
            return Err(ConfigError::invalid("search.chunking.overlap", "must be smaller than search.chunking.size"));
        }
        Ok(())
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            vector_db: VectorDbConfig::default(),
            embeddings: EmbeddingsConfig::default(),
            search: QueryDefaults::default(),
            chunking: ChunkingConfig::default(),
            fusion: FusionDefaults::default(),
            max_content_bytes: 1024 * 1024,
            max_batch_docs: 10_000,
            batch_job_above: 100,
        }
    }
}

/// Vector store settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VectorDbConfig {
    /// Which store holds documents, keyword index and vectors: `embedded` (redb +
    /// tantivy + HNSW in the data directory). Other names are refused at load.
    #[serde(rename = "type")]
    pub kind: String,
    /// Qdrant URL (`QDRANT_URL`): refused until a Qdrant store exists.
    pub url: Option<String>,
    /// Qdrant API key (`QDRANT_API_KEY`): refused until a Qdrant store exists.
    pub api_key: Option<String>,
    /// Collection name of a remote store: `documents` (others are refused).
    pub collection: String,
    /// Below this many chunks an exact scan replaces the HNSW graph. Measured (bench,
    /// 384-d, 100 candidates, AVX2): exact 0.32 ms vs graph 0.86 ms at 10k chunks, exact
    /// 8.0 ms vs graph 2.0 ms at 100k; the exact scan is linear, so they cross near 25k.
    pub exact_below: usize,
    /// HNSW: links per node (hnsw_rs `max_nb_connection`).
    pub hnsw_m: usize,
    /// HNSW: candidate list size while building.
    pub hnsw_ef_construction: usize,
    /// HNSW: candidate list size while searching (raised to the number of results asked).
    pub hnsw_ef_search: usize,
    /// Rebuild the graph in the background when deleted (tombstoned) chunks exceed this
    /// fraction of the graph.
    pub rebuild_tombstone_ratio: f32,
}

impl Default for VectorDbConfig {
    fn default() -> Self {
        VectorDbConfig {
            kind: "embedded".into(),
            url: None,
            api_key: None,
            collection: "documents".into(),
            exact_below: 20_000,
            hnsw_m: 16,
            hnsw_ef_construction: 200,
            hnsw_ef_search: 64,
            rebuild_tombstone_ratio: 0.2,
        }
    }
}

/// Embedding settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// `local` (fastembed ONNX, default) or `openai` (an OpenAI-compatible embeddings API
    /// at `base_url`: OpenAI, or another hearth's `/v1/embeddings`).
    pub provider: String,
    /// Model name: informational for `local`, the model asked for with `openai`.
    pub model: String,
    /// `openai`: the API's base URL, up to the version (`https://api.openai.com/v1`; for
    /// a hearth, `http://host:port/v1`).
    pub base_url: String,
    /// `openai`: timeout of one request, milliseconds.
    pub timeout_ms: u64,
    /// Directory with model.onnx, tokenizer files and the ONNX Runtime library.
    pub model_dir: String,
    /// Vector dimension: 384, the local model's (others are refused).
    pub dimension: usize,
    /// Texts per embedding batch.
    pub batch_size: usize,
    /// Maximum tokens per text.
    pub max_seq_length: usize,
    /// API key for remote providers (`OPENAI_API_KEY`): refused until one exists.
    pub api_key: Option<String>,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        EmbeddingsConfig {
            provider: "local".into(),
            model: "all-MiniLM-L6-v2".into(),
            base_url: "https://api.openai.com/v1".into(),
            timeout_ms: 30_000,
            model_dir: "./models".into(),
            dimension: 384,
            batch_size: 100,
            max_seq_length: 256,
            api_key: None,
        }
    }
}

/// Query defaults.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct QueryDefaults {
    /// Results when the request gives no limit.
    pub default_limit: usize,
    /// Largest limit accepted.
    pub max_limit: usize,
    /// Minimum score when the request gives no threshold (null: none).
    pub default_threshold: Option<f32>,
    /// Whether hybrid is the default mode.
    pub enable_hybrid: bool,
    /// Whether the reranking extension point is used.
    pub enable_reranking: bool,
    /// Chunks each retriever contributes to fusion (at least the limit asked).
    pub candidates: usize,
}

impl Default for QueryDefaults {
    fn default() -> Self {
        QueryDefaults {
            default_limit: 10,
            max_limit: 1000,
            default_threshold: None,
            enable_hybrid: true,
            enable_reranking: false,
            candidates: 100,
        }
    }
}

/// Chunking settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ChunkingConfig {
    /// Target chunk size in characters.
    pub size: usize,
    /// Overlap between consecutive chunks in characters.
    pub overlap: usize,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        ChunkingConfig { size: 800, overlap: 100 }
    }
}

/// Default fusion of keyword and semantic results (see `search::fusion`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FusionDefaults {
    /// `weighted` (min-max normalised weighted sum) or `rrf` (reciprocal rank fusion).
    pub method: String,
    /// Weighted: share of the semantic score, 0..=1 (Meilisearch's `semanticRatio`).
    pub semantic_ratio: f32,
    /// RRF: the rank constant k.
    pub rrf_k: f32,
    /// RRF: weight of the keyword ranking.
    pub keyword_weight: f32,
    /// RRF: weight of the semantic ranking.
    pub semantic_weight: f32,
}

impl Default for FusionDefaults {
    fn default() -> Self {
        // Measured with `hearth eval` on tests/api/search/eval (nDCG@10): weighted 0.3 -> 0.947,
        // 0.5 -> 0.981, 0.75 -> 0.994, 0.9 -> 0.995; rrf k=60 -> 0.956 (below semantic alone,
        // 0.984; keyword alone 0.927). 0.75 sits on the plateau and keeps exact terms weighty.
        FusionDefaults { method: "weighted".into(), semantic_ratio: 0.75, rrf_k: 60.0, keyword_weight: 1.0, semantic_weight: 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_not_in_this_build_is_refused_naming_the_key() {
        assert!(SearchConfig::default().validate().is_ok(), "embedded is the default and is accepted");
        let mut cfg = SearchConfig::default();
        cfg.vector_db.kind = "qdrant".into();
        match cfg.validate() {
            Err(ConfigError::Invalid { key, message }) => {
                assert_eq!(key, "search.vector_db.type");
                assert!(message.contains("'qdrant'") && message.contains("not supported yet"), "{message}");
            }
            other => panic!("expected an invalid key, got {other:?}"),
        }
    }
}
