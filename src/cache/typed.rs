//! Typed helpers on top of the byte-level API: values as JSON via serde, and
//! [`Cache::cached`], the counterpart of the seed's `@cached(ttl, tags)` decorator.

use super::{Cache, CacheError, CacheValue, SetReceipt};
use serde::{Serialize, de::DeserializeOwned};
use std::future::Future;
use std::time::Duration;

impl Cache {
    /// The value under `key` decoded from JSON, or None on a miss.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        match self.get(key).await? {
            Some(v) => v.to_json().map(Some),
            None => Ok(None),
        }
    }

    /// Stores `value` as JSON (`application/json`).
    pub async fn set_json<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
        ttl: Option<Duration>,
        tags: &[String],
    ) -> Result<SetReceipt, CacheError> {
        self.set(key, CacheValue::json(value)?, ttl, tags).await
    }

    /// Caches the result of an async computation, like the seed's decorator:
    ///
    /// ```no_run
    /// # async fn demo(cache: hearth::cache::Cache) -> Result<(), hearth::cache::CacheError> {
    /// #[derive(serde::Serialize, serde::Deserialize)]
    /// struct Transcript { id: String, text: String }
    ///
    /// let id = "42";
    /// let t: Transcript = cache
    ///     .cached(&format!("transcript:{id}"), Some(std::time::Duration::from_secs(3600)), &["transcripts"], || async {
    ///         // e.g. a database query
    ///         Ok::<_, anyhow::Error>(Transcript { id: id.into(), text: "...".into() })
    ///     })
    ///     .await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The value is stored as JSON; concurrent callers share one run of `compute` (single
    /// flight), and an error from `compute` is returned as [`CacheError::Factory`] without
    /// caching anything. A stored value that no longer decodes as `T` (the type changed)
    /// is recomputed and replaced.
    pub async fn cached<T, F, Fut, E>(&self, key: &str, ttl: Option<Duration>, tags: &[&str], compute: F) -> Result<T, CacheError>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: Into<anyhow::Error>,
    {
        let tags: Vec<String> = tags.iter().map(|t| t.to_string()).collect();
        if let Some(v) = self.get(key).await? {
            match v.to_json::<T>() {
                Ok(t) => return Ok(t),
                Err(e) => tracing::debug!(key, error = %e, "cached value no longer decodes; recomputing"),
            }
            self.delete(key).await?;
        }
        let v = self
            .get_or_set_tagged(key, ttl, &tags, || async move {
                let t = compute().await.map_err(Into::into)?;
                CacheValue::json(&t).map_err(anyhow::Error::from)
            })
            .await?;
        v.to_json()
    }
}
