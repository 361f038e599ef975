//! Every configuration block of the seed, loaded verbatim (`tests/seed/config/`): each
//! one loads with the seed's meaning, or is refused at the key of a backend hearth does
//! not have with a message saying what to use instead. For a refused block, the test then
//! makes the change the message asks for and loads again, until the block loads — so no
//! other key of the block is left unread.

use super::{CliOverrides, Config, ConfigError};

const NOTIFICATION: &str = include_str!("../../tests/seed/config/notification.yaml");
const JOB_QUEUE: &str = include_str!("../../tests/seed/config/job_queue.yaml");
const CACHE: &str = include_str!("../../tests/seed/config/cache.yaml");
const EXPORT: &str = include_str!("../../tests/seed/config/export.yaml");
const SEARCH: &str = include_str!("../../tests/seed/config/search.yaml");
const MODULES: &str = include_str!("../../tests/seed/config/modules.yaml");
const DEBUG: &str = include_str!("../../tests/seed/config/debug.yaml");
const ENV: &str = include_str!("../../tests/seed/config/env.sh");

/// Loads `text` as the configuration file with exactly `env` as the environment.
fn load(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hearth.yaml");
    std::fs::write(&file, text).unwrap();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    Config::load_with(&CliOverrides { config_file: Some(file), ..Default::default() }, &env)
}

/// The message of `result`'s refusal, which must name `key`.
#[track_caller]
fn refused_at(result: Result<Config, ConfigError>, key: &str) -> String {
    match result {
        Err(ConfigError::Invalid { key: k, message }) => {
            assert_eq!(k, key, "refused at the wrong key: {message}");
            message
        }
        Ok(_) => panic!("expected a refusal at {key}, but the block loaded"),
        Err(other) => panic!("expected a refusal at {key}, got {other}"),
    }
}

/// `text` with `from` replaced by `to` (which must occur).
#[track_caller]
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the block has no {from:?}");
    text.replace(from, to)
}

#[test]
fn notification_block_loads_with_its_env_var() {
    let c = load(NOTIFICATION, &[("SENDGRID_API_KEY", "SG.seed-test")]).unwrap();
    let n = &c.notification;
    assert!(n.channels.in_app.enabled && n.channels.email.enabled && !n.channels.push.enabled);
    assert_eq!(n.channels.email.provider, "sendgrid");
    assert_eq!(n.channels.email.api_key.as_deref(), Some("SG.seed-test"), "${{SENDGRID_API_KEY}} is expanded");
    assert_eq!(n.channels.email.from, "noreply@example.com");
    assert_eq!((n.persistence.retention.read, n.persistence.retention.unread), (2_592_000, 7_776_000));
    assert_eq!(n.templates.dir, "./templates/notifications");
    let why = refused_at(load(NOTIFICATION, &[]), "notification.channels.email.api_key");
    assert!(why.contains("SENDGRID_API_KEY") && why.contains("not set"), "{why}");
}

#[test]
fn job_queue_block_names_the_redis_broker() {
    // The block asks for the Redis broker. Until it is in the build, the refusal names the
    // key and the broker to use; with it, the block loads with REDIS_URL.
    match load(JOB_QUEUE, &[("REDIS_URL", "redis://localhost:6379")]) {
        Ok(c) => assert_eq!(c.job_queue.broker.kind, "redis"),
        Err(ConfigError::Invalid { key, message }) => {
            assert_eq!(key, "job_queue.broker.type", "{message}");
            assert!(message.contains("embedded"), "{message}");
        }
        Err(other) => panic!("{other}"),
    }
    let c = load(&edit(JOB_QUEUE, "type: redis", "type: embedded"), &[]).unwrap();
    let q = &c.job_queue;
    assert_eq!(q.broker.queue_prefix, "jobs");
    assert_eq!((q.workers["default"].count, q.workers["high_priority"].count), (4, 2));
    assert_eq!(q.workers["high_priority"].queues, vec!["high_priority".to_string()]);
    assert_eq!((q.defaults.max_attempts, q.defaults.backoff.as_str(), q.defaults.timeout), (3, "exponential", 300));
    assert!(q.scheduler.enabled && q.scheduler.timezone == "UTC");
}

#[test]
fn cache_block_loads_with_its_meaning() {
    let c = load(CACHE, &[]).unwrap().cache;
    assert!(c.l1.enabled);
    assert_eq!(c.l1.max_size, 1000, "max_size counts entries, as in the seed");
    assert_eq!(c.l1.max_bytes, crate::cache::config::L1Config::default().max_bytes);
    assert_eq!(c.l1.ttl, 60);
    assert_eq!(c.l2.backend, crate::cache::config::L2Backend::Redis, "an L2 url selects the Redis L2");
    assert_eq!(c.l2.url.as_deref(), Some("redis://localhost:6379"));
    assert_eq!((c.l2.default_ttl, c.l2.key_prefix.as_str()), (3600, "cache:"));
    assert!(c.compression.enabled && c.compression.threshold == 1024 && c.metrics.enabled);
}

#[test]
fn export_block_loads_on_s3_once_its_public_url_is_dropped() {
    let why = refused_at(load(EXPORT, &[]), "export.storage.public_url");
    assert!(why.contains("not supported yet"), "{why}");
    let s3 = edit(EXPORT, "    public_url: \"https://s3.amazonaws.com/exports\"\n", "");
    let c = load(&s3, &[]).unwrap().export;
    assert_eq!(
        (c.storage.kind.as_str(), c.storage.bucket.as_deref(), c.storage.region.as_deref()),
        ("s3", Some("exports"), Some("us-east-1"))
    );
    assert!(c.formats["json"].pretty && c.formats["srt"].enabled && c.formats["txt"].enabled);
    assert_eq!(c.formats["docx"].template_dir.as_deref(), Some("./templates/docx"));
    assert_eq!(c.formats["pdf"].template_dir.as_deref(), Some("./templates/pdf"));
    assert_eq!((c.jobs.timeout, c.jobs.max_size), (300, 1_073_741_824));
    // On local storage, the bucket is a key of another backend: refused, not ignored.
    let local = edit(&s3, "type: s3  # or local, gcs", "type: local");
    refused_at(load(&local, &[]), "export.storage.bucket");
}

#[test]
fn search_block_is_refused_at_qdrant_then_loads_with_the_openai_embedder() {
    let env = [("OPENAI_API_KEY", "sk-test")];
    let why = refused_at(load(SEARCH, &env), "search.vector_db.type");
    assert!(why.contains("'qdrant'") && why.contains("not supported yet") && why.contains("use embedded"), "{why}");
    let mut text = edit(SEARCH, "type: qdrant  # or pinecone, weaviate, pgvector", "type: embedded");
    refused_at(load(&text, &env), "search.vector_db.url");
    text = edit(&text, "    url: \"http://localhost:6333\"\n", "");
    let s = load(&text, &env).unwrap().search;
    assert_eq!(
        (s.embeddings.provider.as_str(), s.embeddings.model.as_str(), s.embeddings.dimension),
        ("openai", "text-embedding-3-small", 1536)
    );
    assert_eq!(s.embeddings.api_key.as_deref(), Some("sk-test"), "the OPENAI_API_KEY placeholder is expanded");
    assert_eq!(s.vector_db.collection, "documents");
    assert_eq!(s.embeddings.batch_size, 100);
    assert_eq!((s.search.default_limit, s.search.default_threshold), (10, Some(0.5)));
    assert!(s.search.enable_hybrid && !s.search.enable_reranking);
    let local = edit(&text, "provider: openai  # or cohere, local", "provider: local");
    refused_at(load(&local, &env), "search.embeddings.api_key");
}

#[test]
fn modules_block_is_refused_at_each_missing_backend_then_maps_its_short_forms() {
    let mut text = MODULES.to_string();
    for (from, to, key) in [
        ("storage: postgresql", "storage: embedded", "modules.progress.storage"),
        ("vector_db: qdrant", "vector_db: embedded", "modules.search.vector_db"),
    ] {
        let why = refused_at(load(&text, &[("SENDGRID_API_KEY", "SG.x")]), key);
        assert!(why.contains("not supported yet"), "{why}");
        text = edit(&text, from, to);
    }
    // `storage: s3` selects S3 export storage, which needs a bucket (here from AWS_BUCKET).
    refused_at(load(&text, &[("SENDGRID_API_KEY", "SG.x")]), "export.storage.bucket");
    let embedded = edit(&text, "broker: redis", "broker: embedded");
    let why = refused_at(load(&embedded, &[("AWS_BUCKET", "b")]), "notification.channels.email.api_key");
    assert!(why.contains("SENDGRID_API_KEY"), "{why}");
    let c = load(&embedded, &[("SENDGRID_API_KEY", "SG.x"), ("AWS_BUCKET", "b")]).unwrap();
    assert_eq!(
        (c.export.storage.kind.as_str(), c.search.embeddings.provider.as_str()),
        ("s3", "openai"),
        "the short forms select S3 and the openai embedder"
    );
    assert!(c.progress.websocket);
    assert!(c.notification.channels.in_app.enabled && c.notification.channels.email.enabled && !c.notification.channels.webhook.enabled);
    assert_eq!(c.notification.channels.email.provider, "sendgrid");
    assert_eq!(c.notification.channels.email.api_key.as_deref(), Some("SG.x"));
    assert_eq!(c.job_queue.workers["default"].count, 4);
    assert!(c.cache.l1.enabled && c.cache.l2.enabled);
    let on: Vec<&str> = c.export.formats.iter().filter(|(_, f)| f.enabled).map(|(n, _)| n.as_str()).collect();
    assert_eq!(on, ["json", "srt", "txt"]);
    // broker: redis lands on the full key (refused or used by the broker's own check).
    let c = load(&text, &[("SENDGRID_API_KEY", "SG.x"), ("REDIS_URL", "redis://localhost:6379"), ("AWS_BUCKET", "b")]).unwrap();
    assert_eq!(c.job_queue.broker.kind, "redis", "broker: redis selects the Redis broker");
}

#[test]
fn debug_block_loads_with_upper_case_levels_on_the_modules_code() {
    let c = load(DEBUG, &[]).unwrap().logging;
    assert_eq!(c.level, "debug");
    assert_eq!(c.modules["job_queue"], "debug");
    let d = c.directives();
    for target in ["hearth::progress=debug", "hearth::notify=debug", "hearth::jobs=debug"] {
        assert!(d.contains(target), "{d}");
    }
    tracing_subscriber::EnvFilter::try_new(&d).expect("the directives parse");
    refused_at(load("logging: {level: LOUD}", &[]), "logging.level");
    refused_at(load("logging: {modules: {billing: debug}}", &[]), "logging.modules.billing");
}

#[test]
fn the_seed_environment_loads_and_reads_only_what_hearth_uses() {
    let env: Vec<(&str, &str)> =
        ENV.lines().filter(|l| !l.starts_with('#') && l.contains('=')).map(|l| l.split_once('=').expect("checked")).collect();
    assert!(env.len() >= 10, "{env:?}");
    let c = load("", &env).unwrap();
    assert_eq!(c.redis.url.as_deref(), Some("redis://localhost:6379"));
    assert_eq!(c.progress.store, crate::cluster::StoreKind::Redis, "REDIS_URL selects the Redis parts");
    assert_eq!(c.search.vector_db.url, None, "QDRANT_URL is read only with a qdrant store");
    assert_eq!(c.export.storage.region, None, "AWS_REGION is read only with s3 storage");
    assert_eq!(c.notification.channels.email.api_key, None, "SENDGRID_API_KEY is read only with the sendgrid provider");
}
