//! Configuration of search (`search:` in hearth.yaml).

use serde::{Deserialize, Serialize};

/// Settings for hybrid search (seed "Search Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct SearchConfig {
    /// Vector store: `embedded` (HNSW, default) or `qdrant` (reserved for the adapter).
    pub vector_db: VectorDbConfig,
    /// Embedding model.
    pub embeddings: EmbeddingsConfig,
    /// Query defaults.
    pub search: QueryDefaults,
    /// Chunking of long content.
    pub chunking: ChunkingConfig,
    /// Largest document content accepted, bytes.
    pub max_content_bytes: usize,
}

impl Default for SearchConfig {
    fn default() -> Self {
        SearchConfig {
            vector_db: VectorDbConfig::default(),
            embeddings: EmbeddingsConfig::default(),
            search: QueryDefaults::default(),
            chunking: ChunkingConfig::default(),
            max_content_bytes: 1024 * 1024,
        }
    }
}

/// Vector store settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct VectorDbConfig {
    /// `embedded` or `qdrant`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Qdrant URL (`QDRANT_URL`).
    pub url: Option<String>,
    /// Qdrant API key (`QDRANT_API_KEY`).
    pub api_key: Option<String>,
    /// Collection name.
    pub collection: String,
    /// Below this many chunks an exact scan replaces the HNSW graph.
    pub exact_below: usize,
}

impl Default for VectorDbConfig {
    fn default() -> Self {
        VectorDbConfig { kind: "embedded".into(), url: None, api_key: None, collection: "documents".into(), exact_below: 2000 }
    }
}

/// Embedding settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct EmbeddingsConfig {
    /// `local` (fastembed ONNX, default) or `openai` (reserved for the adapter).
    pub provider: String,
    /// Model name, informational for `local`.
    pub model: String,
    /// Directory with model.onnx, tokenizer files and the ONNX Runtime library.
    pub model_dir: String,
    /// Vector dimension.
    pub dimension: usize,
    /// Texts per embedding batch.
    pub batch_size: usize,
    /// Maximum tokens per text.
    pub max_seq_length: usize,
    /// API key for remote providers (`OPENAI_API_KEY`).
    pub api_key: Option<String>,
}

impl Default for EmbeddingsConfig {
    fn default() -> Self {
        EmbeddingsConfig {
            provider: "local".into(),
            model: "all-MiniLM-L6-v2".into(),
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
}

impl Default for QueryDefaults {
    fn default() -> Self {
        QueryDefaults { default_limit: 10, max_limit: 1000, default_threshold: None, enable_hybrid: true, enable_reranking: false }
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
