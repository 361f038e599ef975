//! Configuration: YAML file < environment < CLI flags.
//!
//! The file is `hearth.yaml` in the working directory when present, or the path given
//! with `--config`. Its shape follows the seed's `config/modules.yaml`: a `modules:` map
//! of `<name>.enabled` switches plus one section per module. Every struct denies unknown
//! keys, so a typo stops the start with a message naming the key.
//!
//! Before anything else, `${VAR}` and `${VAR:-default}` in the file's string values are
//! expanded from the environment (`expand.rs`), and the seed's short forms in
//! `modules.<name>` are mapped onto the full keys (`seed.rs`; a full key given too wins).
//!
//! Environment overrides, applied to the parsed YAML tree before it is typed:
//! - `HEARTH__SECTION__KEY=value` sets `section.key` (any depth; `__` separates levels;
//!   the value is parsed as a YAML scalar, so `true`, `10` and `"text"` all work);
//! - the seed's variables: `REDIS_URL`, `QDRANT_URL`, `QDRANT_API_KEY`, `OPENAI_API_KEY`,
//!   `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_REGION`, `AWS_BUCKET`, and
//!   `HEARTH_API_KEY` (an admin key), `SMTP_URL`, `EMAIL_FROM`, `SENDGRID_API_KEY` (with
//!   `notification.channels.email.provider: sendgrid`). The Qdrant, OpenAI and
//!   AWS variables are read only when the file selects that backend (which this build
//!   then refuses, saying what to use instead), so an `AWS_REGION` a cloud sets for
//!   every process does not stop hearth.
//!
//! No key is accepted and silently ignored: a key for something hearth does not do is
//! refused with a message saying so and what to use instead. Log level names are
//! case-insensitive (the seed writes `DEBUG`).

mod env;
pub mod error;
mod expand;
mod sections;
mod seed;
#[cfg(test)]
mod seed_blocks;

pub use crate::webhooks::WebhookConfig;
pub use error::ConfigError;
pub use sections::*;

use crate::{
    cache::config::CacheConfig, export::config::ExportConfig, jobs::config::JobQueueConfig, notify::config::NotificationConfig,
    progress::config::ProgressConfig, search::config::SearchConfig,
};
use env::{apply_env, redact, set_path};
use serde::{Deserialize, Serialize};
use serde_yaml::Value;
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
    /// Requests to caller-chosen URLs.
    pub outbound: crate::outbound::OutboundConfig,
    /// The Redis server of a cluster of hearth nodes (`REDIS_URL`).
    pub redis: crate::cluster::RedisConfig,
    /// The event bus.
    pub events: crate::events::EventsConfig,
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

/// The keys that select the backend of each part that has a Redis one, in the order of
/// [`Config::cluster_redis_parts`]. `REDIS_URL` alone sets each to `redis` unless the
/// configuration names a backend itself.
pub(crate) const REDIS_KEYS: [&str; 6] =
    ["events.transport", "progress.store", "cache.l2.backend", "export.store", "notification.store", "job_queue.broker.type"];

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
        expand::expand_vars(&mut tree, env)?;
        seed::apply_short_forms(&mut tree)?;
        apply_env(&mut tree, env)?;
        if let Some(b) = &cli.bind {
            set_path(&mut tree, &["server", "bind"], Value::String(b.clone()))?;
        }
        if let Some(d) = &cli.data_dir {
            set_path(&mut tree, &["server", "data_dir"], Value::String(d.display().to_string()))?;
        }
        Config::from_tree(tree)
    }

    /// Parses a YAML string alone (no environment, so `${VAR}` is kept as written: the
    /// effective configuration serialised and parsed again is unchanged); for tests and
    /// embedding. The seed's short forms are mapped.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        let tree =
            serde_yaml::from_str::<Value>(text).map_err(|e| ConfigError::Yaml { path: "<string>".into(), message: e.to_string() })?;
        let mut tree = if tree.is_null() { Value::Mapping(Default::default()) } else { tree };
        seed::apply_short_forms(&mut tree)?;
        Config::from_tree(tree)
    }

    fn from_tree(tree: Value) -> Result<Config, ConfigError> {
        let mut config: Config = serde_path_to_error::deserialize(tree).map_err(|e| {
            let key = e.path().to_string();
            ConfigError::invalid(if key == "." { "<root>" } else { &key }, e.into_inner().to_string())
        })?;
        config.logging.normalize();
        config.validate()?;
        Ok(config)
    }

    /// Checks values serde cannot: addresses, levels, ranges (each module checks its own
    /// section).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.bind_addr()?;
        if self.server.body_limit < 1024 {
            return Err(ConfigError::invalid("server.body_limit", "must be at least 1024 bytes"));
        }
        let s = &self.server;
        for (key, value, min, max) in [
            ("server.max_connections", s.max_connections, 1, 1 << 20),
            ("server.header_timeout_seconds", s.header_timeout_seconds as usize, 1, 3600),
            ("server.max_uri_bytes", s.max_uri_bytes, 256, 64 * 1024),
            ("server.max_header_bytes", s.max_header_bytes, 1024, 256 * 1024),
            ("server.max_streams_per_caller", s.max_streams_per_caller, 1, 1 << 20),
        ] {
            if !(min..=max).contains(&value) {
                return Err(ConfigError::invalid(key, format!("must be from {min} to {max}")));
            }
        }
        self.logging.validate()?;
        for (i, k) in self.auth.api_keys.iter().enumerate() {
            if k.key.len() < 16 {
                return Err(ConfigError::invalid(&format!("auth.api_keys[{i}].key"), "must be at least 16 characters"));
            }
        }
        for (i, w) in self.webhooks.iter().enumerate() {
            w.validate(i)?;
        }
        self.server.cors.validate()?;
        self.job_queue.validate()?;
        self.notification.validate()?;
        self.export.validate()?;
        self.search.validate()?;
        if self.redis.url.is_none()
            && let Some((key, _)) = self.cluster_redis_parts().into_iter().find(|(_, on)| *on)
        {
            return Err(ConfigError::invalid(key, "redis needs a server: set REDIS_URL or redis.url"));
        }
        Ok(())
    }

    /// For each key of [`REDIS_KEYS`], whether that part lives in the cluster's Redis
    /// (`redis.url`; a cache L2 with a `cache.l2.url` of its own does not).
    pub fn cluster_redis_parts(&self) -> [(&'static str, bool); 6] {
        use crate::cluster::StoreKind;
        let on = [
            self.events.transport == crate::events::TransportKind::Redis,
            self.progress.store == StoreKind::Redis,
            self.cache.l2.backend == crate::cache::config::L2Backend::Redis && self.cache.l2.url.is_none(),
            self.export.store == StoreKind::Redis,
            self.notification.store == StoreKind::Redis,
            self.job_queue.broker.kind == "redis",
        ];
        std::array::from_fn(|i| (REDIS_KEYS[i], on[i]))
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
    fn the_claim_long_poll_may_be_shortened_but_not_lengthened() {
        assert_eq!(Config::from_yaml("job_queue: {max_claim_wait_ms: 500}").unwrap().job_queue.max_claim_wait_ms, 500);
        let err = Config::from_yaml("job_queue: {max_claim_wait_ms: 30001}").unwrap_err().to_string();
        assert!(err.contains("job_queue.max_claim_wait_ms") && err.contains("30000"), "{err}");
    }

    #[test]
    fn backends_are_selected_by_name_and_unknown_names_are_refused() {
        let c = Config::from_yaml("progress: {store: embedded}\ncache: {l2: {backend: embedded}}\n").unwrap();
        assert_eq!(c.progress.store, crate::progress::config::ProgressStoreKind::Embedded);
        for (yaml, key) in [("progress: {store: cassandra}", "progress.store"), ("cache: {l2: {backend: memcached}}", "cache.l2.backend")] {
            let err = Config::from_yaml(yaml).unwrap_err().to_string();
            assert!(err.contains(key) && err.contains("embedded"), "{err}");
        }
    }

    #[test]
    fn redis_url_alone_selects_redis_and_an_explicit_embedded_wins() {
        let redis = env(&[("REDIS_URL", "redis://127.0.0.1:6399/0")]);
        let c = Config::load_with(&CliOverrides::default(), &redis).unwrap();
        assert_eq!(c.redis.url.as_deref(), Some("redis://127.0.0.1:6399/0"));
        assert_eq!(c.events.transport, crate::events::TransportKind::Redis);
        assert_eq!(c.progress.store, crate::progress::config::ProgressStoreKind::Redis);
        assert_eq!(c.cache.l2.backend, crate::cache::config::L2Backend::Redis);
        assert_eq!(c.export.store, crate::cluster::StoreKind::Redis);
        assert_eq!(c.notification.store, crate::cluster::StoreKind::Redis);
        assert_eq!(c.job_queue.broker.kind, "redis");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.yaml");
        std::fs::write(&file, "progress: {store: embedded}\n").unwrap();
        let c = Config::load_with(&CliOverrides { config_file: Some(file), ..Default::default() }, &redis).unwrap();
        assert_eq!(c.progress.store, crate::progress::config::ProgressStoreKind::Embedded, "an explicit embedded wins");
        assert_eq!(c.events.transport, crate::events::TransportKind::Redis);
        let err = Config::from_yaml("progress: {store: redis}").unwrap_err().to_string();
        assert!(err.contains("progress.store") && err.contains("REDIS_URL"), "{err}");
        let err = Config::from_yaml("cache: {l2: {backend: redis}}").unwrap_err().to_string();
        assert!(err.contains("cache.l2.backend") && err.contains("REDIS_URL"), "{err}");
        let own = Config::from_yaml("cache: {l2: {backend: redis, url: 'redis://127.0.0.1:6399/1'}}").unwrap();
        assert_eq!(own.cache.l2.backend, crate::cache::config::L2Backend::Redis, "the cache may have a Redis of its own");
    }

    #[test]
    fn cors_origins_are_origins() {
        assert!(Config::from_yaml("server: {cors: {allowed_origins: ['https://app.example', 'http://localhost:3000/']}}").is_ok());
        for bad in ["app.example", "https://app.example/path", "ftp://x", "https://u:p@app.example", "*"] {
            let err = Config::from_yaml(&format!("server: {{cors: {{allowed_origins: ['{bad}']}}}}")).unwrap_err().to_string();
            assert!(err.contains("server.cors.allowed_origins[0]"), "{bad}: {err}");
        }
    }

    #[test]
    fn invalid_values_are_named() {
        let err = Config::from_yaml("progress:\n  retain_completed_hours: -3\n").unwrap_err().to_string();
        assert!(err.contains("progress.retain_completed_hours"), "{err}");
        let err = Config::from_yaml("server:\n  bind: nowhere\n").unwrap_err().to_string();
        assert!(err.contains("server.bind"), "{err}");
    }

    /// Found by the `config` fuzz target: a file that is not a mapping, with an override
    /// from the environment, failed naming the empty key (`invalid configuration at ``).
    #[test]
    fn a_file_that_is_not_a_mapping_is_named_as_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("h.yaml");
        for (text, var) in [("just text", "HEARTH__CACHE__L1__TTL"), ("[1, 2]", "HEARTH_API_KEY"), ("7", "HEARTH__TTL")] {
            std::fs::write(&file, text).unwrap();
            let cli = CliOverrides { config_file: Some(file.clone()), ..Default::default() };
            match Config::load_with(&cli, &env(&[(var, "0123456789abcdef0123")])).unwrap_err() {
                ConfigError::Invalid { key, .. } => assert_eq!(key, "<root>", "{text} with {var}"),
                other => panic!("{text} with {var}: {other}"),
            }
        }
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
