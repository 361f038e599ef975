//! Configuration: YAML file < environment < CLI flags.
//!
//! The file is `hearth.yaml` in the working directory when present, or the path given
//! with `--config`. Its shape follows the seed's `config/modules.yaml`: a `modules:` map
//! of `<name>.enabled` switches plus one section per module. Every struct denies unknown
//! keys, so a typo stops the start with a message naming the key.
//!
//! Environment overrides, applied to the parsed YAML tree before it is typed:
//! - `HEARTH__SECTION__KEY=value` sets `section.key` (any depth; `__` separates levels;
//!   the value is parsed as a YAML scalar, so `true`, `10` and `"text"` all work);
//! - the seed's variables: `REDIS_URL`, `QDRANT_URL`, `QDRANT_API_KEY`, `OPENAI_API_KEY`,
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_BUCKET`, and
//!   `HEARTH_API_KEY` (an admin key), `SMTP_URL`, `EMAIL_FROM`.

use crate::{
    cache::config::CacheConfig, export::config::ExportConfig, jobs::config::JobQueueConfig, notify::config::NotificationConfig,
    progress::config::ProgressConfig, search::config::SearchConfig,
};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole configuration.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener, data dir and HTTP limits.
    pub server: ServerConfig,
    /// API keys and user tokens.
    pub auth: AuthConfig,
    /// Log levels.
    pub logging: LoggingConfig,
    /// Which modules are enabled.
    pub modules: ModulesConfig,
    /// Outgoing webhooks for events.
    pub webhooks: Vec<WebhookConfig>,
    /// Progress tracking.
    pub progress: ProgressConfig,
    /// Notifications.
    pub notification: NotificationConfig,
    /// Job queue.
    pub job_queue: JobQueueConfig,
    /// Cache.
    pub cache: CacheConfig,
    /// Export.
    pub export: ExportConfig,
    /// Search.
    pub search: SearchConfig,
}

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
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            body_limit: 10 * 1024 * 1024,
            shutdown_grace_seconds: 30,
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

/// Log levels (seed "Debug Mode").
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// Default level: error, warn, info, debug, trace.
    pub level: String,
    /// Per-module levels, e.g. `job_queue: debug`.
    pub modules: BTreeMap<String, String>,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        LoggingConfig { level: "info".into(), modules: BTreeMap::new() }
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

/// One module switch. Extra seed keys (`storage`, `broker`...) are accepted as notes.
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

/// An outgoing webhook subscription.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Target URL.
    pub url: String,
    /// Event topics (`job.completed`, `job.*`, `*`).
    pub events: Vec<String>,
    /// HMAC-SHA256 secret for the `X-Hearth-Signature` header.
    pub secret: String,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The YAML is malformed.
    #[error("config file {path} is not valid YAML: {message}")]
    Yaml {
        /// The file.
        path: String,
        /// Why.
        message: String,
    },
    /// A key is unknown or its value invalid.
    #[error("invalid configuration at `{key}`: {message}")]
    Invalid {
        /// Dotted key.
        key: String,
        /// Why.
        message: String,
    },
}

impl ConfigError {
    fn invalid(key: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid { key: key.to_string(), message: message.into() }
    }
}

/// Values given on the command line; they win over file and environment.
#[derive(Debug, Clone, Default)]
pub struct CliOverrides {
    /// `--config FILE`.
    pub config_file: Option<PathBuf>,
    /// `--data-dir DIR`.
    pub data_dir: Option<PathBuf>,
    /// `--bind ADDR`.
    pub bind: Option<String>,
}

impl Config {
    /// Loads file < environment < CLI, validates, and returns the effective configuration.
    pub fn load(cli: &CliOverrides) -> Result<Config, ConfigError> {
        let env: Vec<(String, String)> = std::env::vars().collect();
        Config::load_with(cli, &env)
    }

    /// As [`Config::load`] with an explicit environment (for tests).
    pub fn load_with(cli: &CliOverrides, env: &[(String, String)]) -> Result<Config, ConfigError> {
        let (text, origin) = match &cli.config_file {
            Some(p) => (Some(read(p)?), p.display().to_string()),
            None => {
                let p = Path::new("hearth.yaml");
                if p.exists() { (Some(read(p)?), "hearth.yaml".to_string()) } else { (None, "<defaults>".to_string()) }
            }
        };
        let mut tree = match text {
            Some(t) if !t.trim().is_empty() => {
                serde_yaml::from_str::<Value>(&t).map_err(|e| ConfigError::Yaml { path: origin.clone(), message: e.to_string() })?
            }
            _ => Value::Mapping(Default::default()),
        };
        if tree.is_null() {
            tree = Value::Mapping(Default::default());
        }
        apply_env(&mut tree, env)?;
        if let Some(b) = &cli.bind {
            set_path(&mut tree, &["server", "bind"], Value::String(b.clone()))?;
        }
        if let Some(d) = &cli.data_dir {
            set_path(&mut tree, &["server", "data_dir"], Value::String(d.display().to_string()))?;
        }
        Config::from_tree(tree)
    }

    /// Parses a YAML string alone (no environment); for tests and embedding.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let tree =
            serde_yaml::from_str::<Value>(text).map_err(|e| ConfigError::Yaml { path: "<string>".into(), message: e.to_string() })?;
        Config::from_tree(if tree.is_null() { Value::Mapping(Default::default()) } else { tree })
    }

    fn from_tree(tree: Value) -> Result<Config, ConfigError> {
        let config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::invalid(if key == "." { "<root>" } else { &key }, e.into_inner().to_string())
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: addresses, levels, ranges.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if self.server.body_limit < 1024 {
            return Err(ConfigError::invalid("server.body_limit", "must be at least 1024 bytes"));
        }
        let levels = ["error", "warn", "info", "debug", "trace", "off"];
        if !levels.contains(&self.logging.level.as_str()) {
            return Err(ConfigError::invalid("logging.level", format!("must be one of {levels:?}")));
        }
        for (m, l) in &self.logging.modules {
            if !levels.contains(&l.as_str()) {
                return Err(ConfigError::invalid(&format!("logging.modules.{m}"), format!("must be one of {levels:?}")));
            }
        }
        for (i, k) in self.auth.api_keys.iter().enumerate() {
            if k.key.len() < 16 {
                return Err(ConfigError::invalid(&format!("auth.api_keys[{i}].key"), "must be at least 16 characters"));
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            if !(w.url.starts_with("http://") || w.url.starts_with("https://")) {
                return Err(ConfigError::invalid(&format!("webhooks[{i}].url"), "must be an http(s) URL"));
            }
            if w.events.is_empty() {
                return Err(ConfigError::invalid(&format!("webhooks[{i}].events"), "must list at least one event"));
            }
            if w.secret.is_empty() {
                return Err(ConfigError::invalid(&format!("webhooks[{i}].secret"), "must not be empty"));
            }
        }
        for (name, pool) in &self.job_queue.workers {
            if pool.queues.is_empty() {
                return Err(ConfigError::invalid(&format!("job_queue.workers.{name}.queues"), "must list at least one queue"));
            }
        }
        if self.job_queue.scheduler.timezone.parse::<chrono_tz::Tz>().is_err() {
            return Err(ConfigError::invalid("job_queue.scheduler.timezone", "unknown IANA timezone"));
        }
        if !["exponential", "linear", "fixed"].contains(&self.job_queue.defaults.backoff.as_str()) {
            return Err(ConfigError::invalid("job_queue.defaults.backoff", "must be exponential, linear or fixed"));
        }
        if self.search.chunking.overlap >= self.search.chunking.size {
            return Err(ConfigError::invalid("search.chunking.overlap", "must be smaller than search.chunking.size"));
        }
        Ok(())
    }

    /// The parsed listen address.
    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        self.server
            .bind
            .parse()
            .map_err(|_| ConfigError::invalid("server.bind", format!("'{}' is not an address like 127.0.0.1:8080", self.server.bind)))
    }

    /// The effective configuration as YAML with every secret replaced by `***`.
    pub fn redacted_yaml(&self) -> String {
        let mut tree = serde_yaml::to_value(self).unwrap_or(Value::Null);
        redact(&mut tree);
        serde_yaml::to_string(&tree).unwrap_or_default()
    }
}

fn read(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })
}

/// Seed and hearth environment variables that map onto config keys.
const ENV_MAP: &[(&str, &[&[&str]])] = &[
    ("REDIS_URL", &[&["job_queue", "broker", "url"], &["cache", "l2", "url"]]),
    ("QDRANT_URL", &[&["search", "vector_db", "url"]]),
    ("QDRANT_API_KEY", &[&["search", "vector_db", "api_key"]]),
    ("OPENAI_API_KEY", &[&["search", "embeddings", "api_key"]]),
    ("AWS_ACCESS_KEY_ID", &[&["export", "storage", "access_key_id"]]),
    ("AWS_SECRET_ACCESS_KEY", &[&["export", "storage", "secret_access_key"]]),
    ("AWS_REGION", &[&["export", "storage", "region"]]),
    ("AWS_BUCKET", &[&["export", "storage", "bucket"]]),
    ("SMTP_URL", &[&["notification", "channels", "email", "smtp_url"]]),
    ("EMAIL_FROM", &[&["notification", "channels", "email", "from"]]),
];

fn apply_env(tree: &mut Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let mut sorted: Vec<&(String, String)> = env.iter().collect();
    sorted.sort();
    for (k, v) in &sorted {
        if let Some((_, paths)) = ENV_MAP.iter().find(|(name, _)| name == k) {
            for p in paths.iter() {
                set_path(tree, p, Value::String(v.clone()))?;
            }
        } else if k == "HEARTH_API_KEY" {
            let mut entry = serde_yaml::Mapping::new();
            entry.insert("key".into(), Value::String(v.clone()));
            entry.insert("scope".into(), "admin".into());
            entry.insert("name".into(), "HEARTH_API_KEY".into());
            let keys = ensure_map(tree, &["auth"])?.entry("api_keys".into()).or_insert(Value::Sequence(vec![]));
            match keys {
                Value::Sequence(s) => s.push(Value::Mapping(entry)),
                _ => return Err(ConfigError::invalid("auth.api_keys", "must be a list")),
            }
        } else if let Some(rest) = k.strip_prefix("HEARTH__") {
            let path: Vec<String> = rest.split("__").map(|s| s.to_ascii_lowercase()).collect();
            if path.iter().any(|s| s.is_empty()) {
                return Err(ConfigError::invalid(k, "empty path segment in environment variable name"));
            }
            let value = env_value(v);
            let refs: Vec<&str> = path.iter().map(String::as_str).collect();
            set_path(tree, &refs, value)?;
        }
    }
    Ok(())
}

/// An environment value: a YAML scalar (`true`, `10`, `null`, text), or a flow list/map
/// when it starts with `[`/`{`. Anything else is kept as text, so `app1:` stays a string.
fn env_value(v: &str) -> Value {
    let t = v.trim_start();
    match serde_yaml::from_str::<Value>(v) {
        Ok(Value::Sequence(s)) if t.starts_with('[') => Value::Sequence(s),
        Ok(Value::Mapping(m)) if t.starts_with('{') => Value::Mapping(m),
        Ok(scalar @ (Value::Bool(_) | Value::Number(_) | Value::String(_) | Value::Null)) => scalar,
        _ => Value::String(v.to_string()),
    }
}

fn ensure_map<'a>(tree: &'a mut Value, path: &[&str]) -> Result<&'a mut serde_yaml::Mapping, ConfigError> {
    let mut cur = tree;
    for (i, seg) in path.iter().enumerate() {
        let map = match cur {
            Value::Mapping(m) => m,
            Value::Null => {
                *cur = Value::Mapping(Default::default());
                match cur {
                    Value::Mapping(m) => m,
                    _ => unreachable!(),
                }
            }
            _ => return Err(ConfigError::invalid(&path[..i].join("."), "must be a mapping")),
        };
        cur = map.entry(Value::String(seg.to_string())).or_insert(Value::Mapping(Default::default()));
    }
    match cur {
        Value::Mapping(m) => Ok(m),
        _ => Err(ConfigError::invalid(&path.join("."), "must be a mapping")),
    }
}

fn set_path(tree: &mut Value, path: &[&str], value: Value) -> Result<(), ConfigError> {
    let (last, parents) = path.split_last().expect("non-empty path");
    ensure_map(tree, parents)?.insert(Value::String(last.to_string()), value);
    Ok(())
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "key" || k.contains("secret") || k.contains("password") || k.ends_with("api_key") || k == "smtp_url" || k == "token_secret"
}

fn redact(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                if k.as_str().is_some_and(is_secret_key) && !val.is_null() {
                    *val = Value::String("***".into());
                } else {
                    redact(val);
                }
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn defaults_are_valid_and_enable_everything() {
        let c = Config::from_yaml("").unwrap();
        assert_eq!(c.server.bind, "127.0.0.1:8080");
        assert!(c.modules.search.enabled && c.modules.job_queue.enabled);
        assert_eq!(c.progress.retain_completed_hours, 24);
    }

    #[test]
    fn unknown_keys_are_named() {
        let err = Config::from_yaml("cache:\n  l1:\n    max_sise: 5\n").unwrap_err().to_string();
        assert!(err.contains("cache.l1"), "{err}");
        assert!(err.contains("max_sise"), "{err}");
    }

    #[test]
    fn invalid_values_are_named() {
        let err = Config::from_yaml("progress:\n  retain_completed_hours: -3\n").unwrap_err().to_string();
        assert!(err.contains("progress.retain_completed_hours"), "{err}");
        let err = Config::from_yaml("server:\n  bind: nowhere\n").unwrap_err().to_string();
        assert!(err.contains("server.bind"), "{err}");
    }

    #[test]
    fn env_overrides_file_and_cli_overrides_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.yaml");
        std::fs::write(&file, "server:\n  bind: 127.0.0.1:1111\ncache:\n  l1:\n    ttl: 5\n").unwrap();
        let cli = CliOverrides { config_file: Some(file.clone()), ..Default::default() };
        let e = env(&[
            ("HEARTH__CACHE__L2__KEY_PREFIX", "app1:"),
            ("HEARTH__CACHE__L1__TTL", "77"),
            ("HEARTH__SERVER__BIND", "127.0.0.1:2222"),
            ("SMTP_URL", "smtp://u:p@h:25"),
            ("HEARTH_API_KEY", "0123456789abcdef0123"),
        ]);
        let c = Config::load_with(&cli, &e).unwrap();
        assert_eq!(c.cache.l1.ttl, 77);
        assert_eq!(c.cache.l2.key_prefix, "app1:");
        assert_eq!(c.server.bind, "127.0.0.1:2222");
        assert_eq!(c.notification.channels.email.smtp_url.as_deref(), Some("smtp://u:p@h:25"));
        assert_eq!(c.auth.api_keys.len(), 1);
        let cli = CliOverrides { config_file: Some(file), bind: Some("127.0.0.1:3333".into()), ..Default::default() };
        assert_eq!(Config::load_with(&cli, &e).unwrap().server.bind, "127.0.0.1:3333");
    }

    #[test]
    fn redaction_hides_secrets() {
        let c = Config::load_with(
            &CliOverrides::default(),
            &env(&[("HEARTH_API_KEY", "supersecretkey-1234567"), ("SMTP_URL", "smtp://u:pw@h")]),
        )
        .unwrap();
        let y = c.redacted_yaml();
        assert!(!y.contains("supersecretkey"), "{y}");
        assert!(!y.contains("pw@h"), "{y}");
        assert!(y.contains("***"));
    }
}
