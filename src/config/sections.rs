//! The sections of the configuration that belong to no single module: the listener,
//! authentication, logging and the module switches. Each module's own section lives in
//! `src/<module>/config.rs`.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Listener and HTTP settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Address to listen on.
    pub bind: String,
    /// Directory holding the database and export files.
    pub data_dir: PathBuf,
    /// Largest accepted request body in bytes (JSON and raw).
    pub body_limit: usize,
    /// Seconds to wait for in-flight requests and jobs at shutdown.
    pub shutdown_grace_seconds: u64,
    /// Most open connections; further clients wait in the listen backlog.
    pub max_connections: usize,
    /// Seconds a client has to send a request's headers. The timer runs from the moment a
    /// connection is idle, so it also closes idle keep-alive connections (and connections
    /// that send nothing, or a header byte at a time).
    pub header_timeout_seconds: u64,
    /// Longest accepted request target (path and query) in bytes; longer: 414.
    pub max_uri_bytes: usize,
    /// Most bytes of request headers (names and values); more: 431.
    pub max_header_bytes: usize,
    /// Most open WebSocket/SSE streams per caller (API key, user token, or peer address
    /// when auth is off); more: 429.
    pub max_streams_per_caller: usize,
    /// Writes are refused (507 `storage_full`) while the data directory's filesystem has
    /// less free space than this; reads keep working. 0 disables the check.
    pub min_free_disk_bytes: u64,
    /// Host names (without port) this server answers to when authentication is off,
    /// besides loopback names and its bound address; other `Host` headers get 403
    /// (DNS rebinding). Ignored when API keys are configured.
    pub public_hosts: Vec<String>,
    /// Cross-origin access for browsers.
    pub cors: CorsConfig,
}

/// `server.cors`: which web origins (`https://app.example.com`) may call the API from a
/// browser. Empty (the default): CORS is off, and WebSocket/SSE upgrades and writes that
/// carry a foreign `Origin` are refused.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Allowed origins: `scheme://host[:port]`, no path.
    pub allowed_origins: Vec<String>,
}

impl CorsConfig {
    /// Every origin is `http(s)://host[:port]` with nothing after it.
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        for (i, o) in self.allowed_origins.iter().enumerate() {
            let ok = url::Url::parse(o).ok().is_some_and(|u| {
                matches!(u.scheme(), "http" | "https")
                    && u.host_str().is_some()
                    && u.path() == "/"
                    && u.query().is_none()
                    && u.username().is_empty()
                    && !o.trim_end_matches('/').ends_with(':')
                    && o.trim_end_matches('/').matches('/').count() == 2
            });
            if !ok {
                return Err(super::ConfigError::invalid(
                    &format!("server.cors.allowed_origins[{i}]"),
                    format!("'{o}' is not an origin like https://app.example.com or http://localhost:3000"),
                ));
            }
        }
        Ok(())
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            body_limit: 10 * 1024 * 1024,
            shutdown_grace_seconds: 30,
            max_connections: 8192,
            header_timeout_seconds: 10,
            max_uri_bytes: 8 * 1024,
            max_header_bytes: 16 * 1024,
            max_streams_per_caller: 256,
            min_free_disk_bytes: 32 * 1024 * 1024,
            public_hosts: Vec::new(),
            cors: CorsConfig::default(),
        }
    }
}

/// Authentication settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Accepted API keys.
    pub api_keys: Vec<ApiKeyConfig>,
    /// Explicitly serve without keys on a non-loopback address.
    pub disabled: bool,
    /// Secret for signing user tokens; derived from the first admin key when unset.
    pub token_secret: Option<String>,
    /// Longest lifetime of a minted user token, seconds.
    pub max_token_ttl_seconds: Option<u64>,
}

/// One API key.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    /// The secret key, sent as `Authorization: Bearer <key>`.
    pub key: String,
    /// What the key may do.
    #[serde(default)]
    pub scope: KeyScope,
    /// A label for logs.
    #[serde(default)]
    pub name: Option<String>,
}

/// The scope of an API key.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum KeyScope {
    /// Everything.
    #[default]
    Admin,
    /// GET and HEAD requests and WebSocket/SSE streams only.
    ReadOnly,
}

/// Logging (seed "Debug Mode"). Level names are case-insensitive (`DEBUG` = `debug`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Default level: error, warn, info, debug, trace, off.
    pub level: String,
    /// Per-module levels, e.g. `job_queue: debug` (modules: progress, notification,
    /// job_queue, cache, export, search, http, store, events, webhooks).
    pub modules: BTreeMap<String, String>,
    /// `text` (one line per event; ANSI colours only when standard output is a terminal
    /// and `NO_COLOR` is unset) or `json` (one JSON object per line, for log shippers).
    pub format: LogFormat,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig { level: "info".into(), modules: BTreeMap::new(), format: LogFormat::Text }
    }
}

/// The level names `tracing` knows.
const LEVELS: [&str; 6] = ["error", "warn", "info", "debug", "trace", "off"];

/// `logging.modules` names and the code (tracing target) each stands for.
const LOG_TARGETS: [(&str, &str); 12] = [
    ("progress", "hearth::progress"),
    ("notification", "hearth::notify"),
    ("notify", "hearth::notify"),
    ("job_queue", "hearth::jobs"),
    ("jobs", "hearth::jobs"),
    ("cache", "hearth::cache"),
    ("export", "hearth::export"),
    ("search", "hearth::search"),
    ("http", "hearth::http"),
    ("store", "hearth::store"),
    ("events", "hearth::events"),
    ("webhooks", "hearth::webhooks"),
];

impl LoggingConfig {
    /// Lower-cases the level names, so `DEBUG` works as in the seed.
    pub fn normalize(&mut self) {
        self.level.make_ascii_lowercase();
        self.modules.values_mut().for_each(|l| l.make_ascii_lowercase());
    }

    /// Known levels and module names.
    pub fn validate(&self) -> Result<(), super::ConfigError> {
        if !LEVELS.contains(&self.level.as_str()) {
            return Err(super::ConfigError::invalid("logging.level", format!("must be one of {LEVELS:?}")));
        }
        for (m, l) in &self.modules {
            if !LOG_TARGETS.iter().any(|(name, _)| name == m) {
                let names: Vec<&str> = LOG_TARGETS.iter().map(|(n, _)| *n).collect();
                return Err(super::ConfigError::invalid(
                    &format!("logging.modules.{m}"),
                    format!("unknown module; one of {}", names.join(", ")),
                ));
            }
            if !LEVELS.contains(&l.as_str()) {
                return Err(super::ConfigError::invalid(&format!("logging.modules.{m}"), format!("must be one of {LEVELS:?}")));
            }
        }
        Ok(())
    }

    /// The `tracing` filter directives: the default level, quieter dependencies, then
    /// each module's level on its code.
    pub fn directives(&self) -> String {
        let mut d = vec![self.level.clone(), "tantivy=warn".into(), "ort=warn".into(), "hnsw_rs=warn".into()];
        for (module, level) in &self.modules {
            if let Some((_, target)) = LOG_TARGETS.iter().find(|(name, _)| name == module) {
                d.push(format!("{target}={level}"));
            }
        }
        d.join(",")
    }
}

/// `modules.<name>.enabled` switches.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct ModulesConfig {
    /// Progress tracking.
    pub progress: ModuleToggle,
    /// Notifications.
    pub notification: ModuleToggle,
    /// Job queue.
    pub job_queue: ModuleToggle,
    /// Cache.
    pub cache: ModuleToggle,
    /// Export.
    pub export: ModuleToggle,
    /// Search.
    pub search: ModuleToggle,
}

/// One module switch. The seed's short forms beside `enabled` (`storage`, `broker`...)
/// are mapped onto the full keys before the file is typed (see `config/seed.rs`).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct ModuleToggle {
    /// Whether the module's routes are served.
    pub enabled: bool,
}

impl Default for ModuleToggle {
    fn default() -> Self {
        ModuleToggle { enabled: true }
    }
}
