//! Export files in S3 or an S3-compatible server (`export.storage.type: s3`), through
//! `object_store` (its reqwest and rustls are hearth's own).
//!
//! - **Never a partial object.** A `put` is one S3 PUT, which replaces the object whole;
//!   a large staged file (a batch zip) goes up as a multipart upload, which becomes
//!   visible only when it completes and is aborted when it fails.
//! - **Keys** are `<export.storage.path>/<key>` in the bucket (`exports/<id>.pdf`), the
//!   same plain names every backend checks ([`valid_key`]).
//! - **Downloads stream** through hearth (the object's body is passed on as it arrives).
//! - **Settings**: `bucket` (`AWS_BUCKET`), `region` (`AWS_REGION`), `endpoint`
//!   (`AWS_ENDPOINT_URL`, for S3-compatible servers), `path_style` (path-style requests,
//!   which most S3-compatible servers want), `access_key_id` / `secret_access_key`
//!   (`AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`; otherwise the usual AWS environment).

use super::config::StorageConfig;
use super::error::ExportError;
use super::storage::{ExportStorage, Reader, valid_key};
use async_trait::async_trait;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, PutPayload, WriteMultipart};
use std::sync::Arc;
use tokio::io::AsyncReadExt;

/// Files above this go up as a multipart upload, in parts of this size.
const PART_BYTES: usize = 8 << 20;

/// The S3 backend.
#[derive(Clone)]
pub struct S3Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    bucket: String,
}

impl std::fmt::Debug for S3Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Storage").field("bucket", &self.bucket).field("prefix", &self.prefix).finish()
    }
}

fn backend(e: object_store::Error) -> ExportError {
    ExportError::Io(format!("s3: {e}"))
}

impl S3Storage {
    /// The backend `cfg` describes (no request is made yet).
    pub fn new(cfg: &StorageConfig) -> Result<S3Storage, ExportError> {
        let bucket = cfg.bucket.clone().ok_or_else(|| ExportError::Io("export.storage.bucket is required with type s3".into()))?;
        let mut b = AmazonS3Builder::from_env().with_bucket_name(&bucket);
        if let Some(r) = &cfg.region {
            b = b.with_region(r);
        }
        if let Some(e) = &cfg.endpoint {
            b = b.with_endpoint(e).with_allow_http(e.starts_with("http://"));
        }
        if cfg.path_style {
            b = b.with_virtual_hosted_style_request(false);
        }
        if let (Some(id), Some(secret)) = (&cfg.access_key_id, &cfg.secret_access_key) {
            b = b.with_access_key_id(id).with_secret_access_key(secret);
        }
        let store = b.build().map_err(|e| ExportError::Io(format!("export.storage (s3): {e}")))?;
        let prefix = cfg.path.trim_matches('/').to_string();
        Ok(S3Storage { store: Arc::new(store), prefix, bucket })
    }

    fn path(&self, key: &str) -> Result<ObjectPath, ExportError> {
        if !valid_key(key) {
            return Err(ExportError::Io(format!("invalid storage key {key:?}")));
        }
        Ok(match self.prefix.is_empty() {
            true => ObjectPath::from(key),
            false => ObjectPath::from(format!("{}/{key}", self.prefix)),
        })
    }
}

#[async_trait]
impl ExportStorage for S3Storage {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        let path = self.path(key)?;
        self.store.put(&path, PutPayload::from(bytes)).await.map_err(backend)?;
        Ok(())
    }

    async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<(), ExportError> {
        let path = self.path(key)?;
        let mut f = tokio::fs::File::open(file).await?;
        if f.metadata().await?.len() <= PART_BYTES as u64 {
            let mut bytes = Vec::new();
            f.read_to_end(&mut bytes).await?;
            return self.put(key, bytes).await;
        }
        let upload = self.store.put_multipart(&path).await.map_err(backend)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_BYTES);
        let mut buf = vec![0u8; PART_BYTES];
        loop {
            let n = match f.read(&mut buf).await {
                Ok(n) => n,
                Err(e) => {
                    let _ = writer.abort().await;
                    return Err(e.into());
                }
            };
            if n == 0 {
                break;
            }
            writer.write(&buf[..n]);
        }
        writer.finish().await.map_err(backend)?;
        Ok(())
    }

    async fn open(&self, key: &str) -> Result<Option<(Reader, u64)>, ExportError> {
        let path = self.path(key)?;
        match self.store.get(&path).await {
            Ok(got) => {
                let len = got.meta.size;
                let stream = got.into_stream().map_err(std::io::Error::other);
                Ok(Some((Box::pin(tokio_util::io::StreamReader::new(stream)), len)))
            }
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(backend(e)),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ExportError> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(backend(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::test_s3::S3Server;

    /// Fresh buckets on one moto server; a re-open is a new client on the same bucket.
    struct OnMoto {
        server: S3Server,
        bucket: usize,
    }

    impl OnMoto {
        fn storage(&self) -> S3Storage {
            S3Storage::new(&self.server.config(&format!("hearth-{}", self.bucket))).expect("s3 settings")
        }
    }

    #[async_trait]
    impl crate::conformance::Harness<S3Storage> for OnMoto {
        async fn fresh(&mut self) -> S3Storage {
            self.bucket += 1;
            self.server.create_bucket(&format!("hearth-{}", self.bucket)).await;
            self.storage()
        }

        async fn reopen(&mut self, backend: S3Storage) -> S3Storage {
            drop(backend);
            self.storage()
        }
    }

    #[tokio::test]
    async fn the_s3_storage_passes_the_conformance_suite_against_a_real_s3_server() {
        crate::export::conformance::files::run(OnMoto { server: S3Server::start(), bucket: 0 }).await;
    }

    #[tokio::test]
    async fn a_large_staged_file_goes_up_in_parts_and_comes_back_whole() {
        let mut h = OnMoto { server: S3Server::start(), bucket: 0 };
        let s = crate::conformance::Harness::fresh(&mut h).await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("big.zip");
        let bytes: Vec<u8> = (0..(PART_BYTES * 2 + 12345)).map(|i| (i % 253) as u8).collect();
        std::fs::write(&file, &bytes).unwrap();
        s.put_file("big.zip", &file).await.expect("multipart upload");
        let (mut r, len) = s.open("big.zip").await.unwrap().expect("stored");
        let mut back = Vec::new();
        r.read_to_end(&mut back).await.unwrap();
        assert_eq!((len as usize, back == bytes), (bytes.len(), true), "the object is the whole file");
    }
}
