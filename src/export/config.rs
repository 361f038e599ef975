//! Configuration of exports (`export:` in hearth.yaml).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Settings for exports (seed "Export Module").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// The backend of export records and stored sources: `embedded` (hearth's database)
    /// or `redis` (the cluster's, so every node lists and serves them). Export files are
    /// `storage`: with several nodes it must be shared too.
    pub store: crate::cluster::StoreKind,
    /// Where export files are written.
    pub storage: StorageConfig,
    /// Per-format settings; formats not listed are enabled with defaults.
    pub formats: BTreeMap<String, FormatConfig>,
    /// Limits for export jobs.
    pub jobs: ExportJobsConfig,
    /// Font file for PDF output (a Unicode TrueType font); when unset hearth searches
    /// `templates/fonts/` and the common system font directories.
    pub pdf_font: Option<String>,
    /// Directory of export templates (`<format>/<name>.j2`); built-in defaults are used
    /// for files it does not have.
    pub template_dir: String,
    /// Directory searched for a PDF font when `pdf_font` is unset (see `templates/fonts/README.md`).
    pub font_dir: String,
}

impl Default for ExportConfig {
    fn default() -> Self {
        ExportConfig {
            store: crate::cluster::StoreKind::Embedded,
            storage: StorageConfig::default(),
            formats: BTreeMap::new(),
            jobs: ExportJobsConfig::default(),
            pdf_font: None,
            template_dir: "./templates/exports".into(),
            font_dir: "./templates/fonts".into(),
        }
    }
}

impl ExportConfig {
    /// Checks what serde cannot: the storage backend is one this build has, what it needs
    /// is set, and no key of another backend is set (refused rather than ignored).
    pub fn validate(&self) -> Result<(), crate::config::error::ConfigError> {
        use crate::config::error::ConfigError;
        let st = &self.storage;
        st.validate()?;
        if st.kind == "local" {
            for (key, set) in [
                ("export.storage.bucket", st.bucket.is_some()),
                ("export.storage.region", st.region.is_some()),
                ("export.storage.endpoint", st.endpoint.is_some()),
                ("export.storage.access_key_id", st.access_key_id.is_some()),
                ("export.storage.secret_access_key", st.secret_access_key.is_some()),
            ] {
                if set {
                    return Err(ConfigError::invalid(key, "applies to s3 storage (export.storage.type: s3); remove it or choose s3"));
                }
            }
        }
        if st.public_url.is_some() {
            return Err(ConfigError::invalid("export.storage.public_url", "is not supported yet: downloads go through hearth; remove it"));
        }
        Ok(())
    }
}

/// Export storage backend.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (default) or `s3` (S3 or an S3-compatible server).
    #[serde(rename = "type")]
    pub kind: String,
    /// `local`: the directory (relative paths are under the data dir); `s3`: the key
    /// prefix in the bucket. Default `exports`.
    pub path: String,
    /// `s3`: the endpoint of an S3-compatible server (`AWS_ENDPOINT_URL`); AWS when unset.
    pub endpoint: Option<String>,
    /// `s3`: path-style requests (`endpoint/bucket/key`), which most S3-compatible servers
    /// want.
    pub path_style: bool,
    /// S3 bucket (`AWS_BUCKET`).
    pub bucket: Option<String>,
    /// S3 region (`AWS_REGION`).
    pub region: Option<String>,
    /// S3 access key id (`AWS_ACCESS_KEY_ID`).
    pub access_key_id: Option<String>,
    /// S3 secret (`AWS_SECRET_ACCESS_KEY`).
    pub secret_access_key: Option<String>,
    /// Public base URL of stored files.
    pub public_url: Option<String>,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            kind: "local".into(),
            path: "exports".into(),
            endpoint: None,
            path_style: false,
            bucket: None,
            region: None,
            access_key_id: None,
            secret_access_key: None,
            public_url: None,
        }
    }
}

impl StorageConfig {
    /// Checks what serde cannot: the backend's name and what it needs.
    pub fn validate(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        match self.kind.as_str() {
            "local" => Ok(()),
            "s3" if self.bucket.as_deref().is_none_or(str::is_empty) => {
                Err(ConfigError::invalid("export.storage.bucket", "is required with type s3 (or AWS_BUCKET)"))
            }
            "s3" => match &self.endpoint {
                Some(e) if !(e.starts_with("http://") || e.starts_with("https://")) => {
                    Err(ConfigError::invalid("export.storage.endpoint", "must be an http(s) URL"))
                }
                _ => Ok(()),
            },
            other => Err(ConfigError::invalid("export.storage.type", format!("unknown storage '{other}': use 'local' or 's3'"))),
        }
    }
}

/// Settings for one format.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct FormatConfig {
    /// Whether the format may be requested.
    pub enabled: bool,
    /// JSON only: pretty-print.
    pub pretty: bool,
    /// Directory searched first for this format's templates (`<dir>/<name>.j2`).
    pub template_dir: Option<String>,
}

impl Default for FormatConfig {
    fn default() -> Self {
        FormatConfig { enabled: true, pretty: true, template_dir: None }
    }
}

/// Limits of export jobs.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ExportJobsConfig {
    /// Seconds an export may run.
    pub timeout: u64,
    /// Largest output file in bytes.
    pub max_size: u64,
    /// Most sources in one batch export.
    pub max_batch: usize,
    /// Largest source (its JSON form) one export may read, in bytes; checked when the
    /// request is accepted (413 naming the source's field) and again by the job.
    pub max_source_bytes: u64,
    /// Most source bytes one batch export may read in total; 413 naming `batch`.
    pub max_batch_source_bytes: u64,
}

impl Default for ExportJobsConfig {
    fn default() -> Self {
        ExportJobsConfig {
            timeout: 300,
            max_size: 1_073_741_824,
            max_batch: 100,
            max_source_bytes: 16 << 20,
            max_batch_source_bytes: 64 << 20,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn the_store_is_embedded_unless_named_otherwise_and_unknown_backends_are_refused() {
        use crate::cluster::StoreKind;
        assert_eq!(Config::from_yaml("").unwrap().export.store, StoreKind::Embedded);
        let c = Config::from_yaml("export: {store: redis}\nredis: {url: 'redis://127.0.0.1:6399'}").unwrap();
        assert_eq!(c.export.store, StoreKind::Redis);
        let err = Config::from_yaml("export: {store: redis}").unwrap_err().to_string();
        assert!(err.contains("export.store") && err.contains("REDIS_URL"), "{err}");
        let err = Config::from_yaml("export: {store: cassandra}").unwrap_err().to_string();
        assert!(err.contains("export.store") && err.contains("embedded"), "{err}");
        let err = Config::from_yaml("export: {storage: {type: s3}}").unwrap_err().to_string();
        assert!(err.contains("export.storage.bucket"), "{err}");
        let err = Config::from_yaml("export: {storage: {type: gcs}}").unwrap_err().to_string();
        assert!(err.contains("export.storage.type"), "{err}");
        assert!(Config::from_yaml("export: {storage: {type: s3, bucket: b, endpoint: 'http://127.0.0.1:9000', path_style: true}}").is_ok());
    }
}
