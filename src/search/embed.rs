//! Text embedding: the [`Embedder`] trait and its default implementation, a local ONNX
//! model run by fastembed over a dynamically loaded ONNX Runtime.
//!
//! Invariant: loading never panics. fastembed panics when ONNX Runtime cannot be loaded,
//! so [`FastEmbedder::load`] checks every file first and calls `ort::init_from`, which
//! reports a missing or incompatible library as an error.

use super::error::SearchError;
use async_trait::async_trait;
use fastembed::{InitOptionsUserDefined, Pooling, QuantizationMode, TextEmbedding, TokenizerFiles, UserDefinedEmbeddingModel};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};

/// Turns texts into unit-length vectors.
///
/// Async so that a remote provider awaits its requests instead of holding a thread per
/// request. Implementations never block the async executor: CPU-bound ones run their work
/// on tokio's blocking pool ([`FastEmbedder`] does), remote ones await their I/O.
///
/// Invariants (checked by `search::conformance::embedder`): every vector has
/// [`Embedder::dimension`] floats and unit length; the same text gives the same vector;
/// `embed` returns one vector per text, in order.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// Embeds `texts`, one L2-normalised vector of [`Embedder::dimension`] floats per text.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SearchError>;

    /// Embeds one query. Implementations may use a separate, low-latency path so queries
    /// do not wait behind bulk indexing.
    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, SearchError> {
        self.embed(&[text.to_string()]).await?.pop().ok_or_else(|| SearchError::Embedding("no vector returned".into()))
    }

    /// Length of every vector.
    fn dimension(&self) -> usize;

    /// Identifies the model, so cached vectors of another model are never reused.
    fn model_id(&self) -> &str;

    /// How many tokens of `text` the model reads (after truncation to its limit), when
    /// the embedder can tell (the `usage` of `/v1/embeddings`).
    fn count_tokens(&self, text: &str) -> Option<usize> {
        let _ = text;
        None
    }
}

/// File name of the ONNX Runtime library looked up in the model directory (first found wins).
pub const ORT_LIBRARY_NAMES: &[&str] = &["libonnxruntime.so", "libonnxruntime.so.1.24.4"];

/// Files the local model needs in its directory besides the runtime library.
pub const MODEL_FILES: &[&str] = &["model.onnx", "tokenizer.json", "config.json", "special_tokens_map.json", "tokenizer_config.json"];

/// Checks `dir` for the model files and the runtime library; returns the library path or
/// an error naming the first missing file.
pub fn check_model_dir(dir: &Path) -> Result<PathBuf, SearchError> {
    for f in MODEL_FILES {
        let p = dir.join(f);
        if !p.is_file() {
            return Err(SearchError::Unavailable(format!("model file {} is missing (run `bash models/fetch.sh`)", p.display())));
        }
    }
    ORT_LIBRARY_NAMES.iter().map(|n| dir.join(n)).find(|p| p.is_file()).ok_or_else(|| {
        SearchError::Unavailable(format!(
            "ONNX Runtime library {} is missing (run `bash models/fetch.sh`)",
            dir.join(ORT_LIBRARY_NAMES[0]).display()
        ))
    })
}

/// Loads the model from `dir`, sharing one loaded instance per process and settings (many
/// services in one process, as in tests, then pay for one model).
pub fn load_shared(dir: &Path, max_seq_length: usize, batch_size: usize, model_name: &str) -> Result<Arc<FastEmbedder>, SearchError> {
    type Key = (PathBuf, usize, usize, String);
    static LOADED: std::sync::OnceLock<Mutex<HashMap<Key, Weak<FastEmbedder>>>> = std::sync::OnceLock::new();
    let key = (dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()), max_seq_length, batch_size, model_name.to_string());
    let cache = LOADED.get_or_init(Default::default);
    let mut map = cache.lock();
    if let Some(e) = map.get(&key).and_then(Weak::upgrade) {
        check_model_dir(dir)?;
        return Ok(e);
    }
    let e = Arc::new(FastEmbedder::load(dir, max_seq_length, batch_size, model_name)?);
    map.insert(key, Arc::downgrade(&e));
    Ok(e)
}

/// The default embedder: a sentence-transformers ONNX model with mean pooling.
///
/// Two sessions: one for queries (one thread, so a query never queues behind a bulk
/// batch) and one for indexing (all cores). The async [`Embedder`] methods run them on
/// tokio's blocking pool; the `_blocking` methods run them on the caller's thread.
pub struct FastEmbedder {
    sessions: Arc<Sessions>,
    dimension: usize,
    model_id: String,
}

struct Sessions {
    query: Mutex<TextEmbedding>,
    bulk: Mutex<TextEmbedding>,
    batch_size: usize,
}

impl FastEmbedder {
    /// Loads the model from `dir`. Fails (never panics) when a file or the runtime is
    /// missing or unusable; the error names the file.
    pub fn load(dir: &Path, max_seq_length: usize, batch_size: usize, model_name: &str) -> Result<FastEmbedder, SearchError> {
        let lib = check_model_dir(dir)?;
        let _ =
            ort::init_from(&lib).map_err(|e| SearchError::Unavailable(format!("cannot load ONNX Runtime from {}: {e}", lib.display())))?;
        let read = |f: &str| {
            std::fs::read(dir.join(f)).map_err(|e| SearchError::Unavailable(format!("cannot read {}: {e}", dir.join(f).display())))
        };
        let onnx = read("model.onnx")?;
        let tokenizer = TokenizerFiles {
            tokenizer_file: read("tokenizer.json")?,
            config_file: read("config.json")?,
            special_tokens_map_file: read("special_tokens_map.json")?,
            tokenizer_config_file: read("tokenizer_config.json")?,
        };
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let session = |threads: usize| -> Result<TextEmbedding, SearchError> {
            let model = UserDefinedEmbeddingModel::new(onnx.clone(), tokenizer.clone())
                .with_pooling(Pooling::Mean)
                .with_quantization(QuantizationMode::None);
            let opts = InitOptionsUserDefined::new().with_max_length(max_seq_length).with_intra_threads(threads);
            TextEmbedding::try_new_from_user_defined(model, opts)
                .map_err(|e| SearchError::Unavailable(format!("cannot load model {}: {e}", dir.join("model.onnx").display())))
        };
        let sessions = Sessions { query: Mutex::new(session(1)?), bulk: Mutex::new(session(cores)?), batch_size: batch_size.max(1) };
        let mut me = FastEmbedder {
            sessions: Arc::new(sessions),
            dimension: 0,
            model_id: format!("{model_name}@{}", hex::encode(&sha256(&onnx)[..8])),
        };
        me.dimension = me.embed_query_blocking("dimension probe")?.len();
        Ok(me)
    }

    /// [`Embedder::embed`] on the caller's thread (blocking, CPU-bound).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SearchError> {
        self.sessions.embed(texts)
    }

    /// [`Embedder::embed_query`] on the caller's thread (blocking, CPU-bound).
    pub fn embed_query_blocking(&self, text: &str) -> Result<Vec<f32>, SearchError> {
        self.sessions.embed_query(text)
    }
}

impl Sessions {
    fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SearchError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let out = self.bulk.lock().embed(texts, Some(self.batch_size)).map_err(|e| SearchError::Embedding(e.to_string()))?;
        Ok(out.into_iter().map(normalize).collect())
    }

    fn embed_query(&self, text: &str) -> Result<Vec<f32>, SearchError> {
        let mut out = self.query.lock().embed([text], None).map_err(|e| SearchError::Embedding(e.to_string()))?;
        out.pop().map(normalize).ok_or_else(|| SearchError::Embedding("no vector returned".into()))
    }
}

/// Runs `f` on tokio's blocking pool.
async fn on_blocking_pool<T: Send + 'static>(f: impl FnOnce() -> Result<T, SearchError> + Send + 'static) -> Result<T, SearchError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| SearchError::Embedding(format!("embedding task failed: {e}")))?
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

#[async_trait]
impl Embedder for FastEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, SearchError> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let (sessions, texts) = (self.sessions.clone(), texts.to_vec());
        on_blocking_pool(move || sessions.embed(&texts)).await
    }

    async fn embed_query(&self, text: &str) -> Result<Vec<f32>, SearchError> {
        let (sessions, text) = (self.sessions.clone(), text.to_string());
        on_blocking_pool(move || sessions.embed_query(&text)).await
    }

    fn dimension(&self) -> usize {
        self.dimension
    }

    fn model_id(&self) -> &str {
        &self.model_id
    }

    fn count_tokens(&self, text: &str) -> Option<usize> {
        // The query session's tokenizer truncates at the model's limit, as embedding does.
        self.sessions.query.lock().tokenizer.encode(text, true).ok().map(|e| e.len())
    }
}

/// Scales `v` to unit length (a zero vector stays zero).
pub fn normalize(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if n > 0.0 {
        v.iter_mut().for_each(|x| *x /= n);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_local_model_keeps_the_embedder_contract() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
        let e = load_shared(&dir, 256, 100, "all-MiniLM-L6-v2").expect("the model in models/ (run `bash models/fetch.sh`)");
        assert_eq!(e.dimension(), 384);
        crate::search::conformance::embedder(&*e).await;
    }
}
