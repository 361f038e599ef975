//! The seed's short forms in `modules.<name>` (its `config/modules.yaml`), mapped onto the
//! full keys before the tree is typed:
//!
//! | short form | full key |
//! |---|---|
//! | `modules.progress.storage` | `progress.store` (`embedded`, `redis`) |
//! | `modules.progress.websocket` | `progress.websocket` |
//! | `modules.notification.channels: [in-app, email]` | `notification.channels.<c>.enabled` (listed on, others off) |
//! | `modules.notification.email_provider` | `notification.channels.email.provider` |
//! | `modules.job_queue.broker` | `job_queue.broker.type` |
//! | `modules.job_queue.workers: 4` | `job_queue.workers.default: {count: 4, queues: [default]}` |
//! | `modules.cache.l1_enabled` / `l2_enabled` | `cache.l1.enabled` / `cache.l2.enabled` |
//! | `modules.export.formats: [txt, json]` | `export.formats.<f>.enabled` (listed on, others off) |
//! | `modules.export.storage` | `export.storage.type` (`local`) |
//! | `modules.search.vector_db` | `search.vector_db.type` (`embedded`) |
//! | `modules.search.embeddings` | `search.embeddings.provider` (`local`) |
//!
//! A `cache.l2.url` given without `cache.l2.backend` (the seed's cache block) selects the
//! `redis` L2 at that URL, so the URL takes effect.
//!
//! When the full key is given too, the full key wins. A backend hearth does not have
//! (`postgresql`, `s3`, `qdrant`, `openai`...) is refused here, naming the short key and
//! what to use instead; any other key in `modules.<name>` is refused listing the ones
//! accepted.

use super::ConfigError;
use serde_yaml::{Mapping, Value};

/// A backend the seed names that hearth does not have, with what to use instead.
struct Missing {
    names: &'static [&'static str],
    instead: &'static str,
}

const PROGRESS_STORES: Missing = Missing {
    names: &["postgresql", "postgres", "mongodb", "mysql", "sqlite"],
    instead: "progress lives in hearth's embedded database (`embedded`, the default) or, for several nodes, in Redis (`redis`)",
};
const BROKERS: Missing = Missing {
    names: &["rabbitmq", "sqs", "kafka", "nats"],
    instead: "jobs live in hearth's embedded database (`embedded`, the default) or, for several nodes, in Redis (`redis`)",
};
const EXPORT_STORAGES: Missing =
    Missing { names: &["gcs", "azure"], instead: "use `local` (files under export.storage.path) or `s3` (S3 or an S3-compatible server)" };
const VECTOR_DBS: Missing = Missing {
    names: &["qdrant", "pinecone", "weaviate", "pgvector", "milvus"],
    instead: "use `embedded` (tantivy + HNSW in the data directory)",
};
const EMBEDDERS: Missing = Missing {
    names: &["cohere", "huggingface"],
    instead: "use `local` (the ONNX model in search.embeddings.model_dir, offline) or `openai` (an OpenAI-compatible API)",
};

/// Maps every short form in `modules.<name>` onto its full key (see the module doc).
pub(super) fn apply_short_forms(tree: &mut Value) -> Result<(), ConfigError> {
    let l2 = tree.get("cache").and_then(|c| c.get("l2"));
    if l2.and_then(|l2| l2.get("url")).is_some_and(|u| !u.is_null()) && l2.and_then(|l2| l2.get("backend")).is_none() {
        super::env::set_path(tree, &["cache", "l2", "backend"], "redis".into())?;
    }
    let Some(Value::Mapping(modules)) = tree.get("modules").cloned() else { return Ok(()) };
    for (name, section) in modules {
        let (Some(name), Value::Mapping(section)) = (name.as_str(), section) else { continue };
        let mut kept = Mapping::new();
        for (key, value) in section {
            let Some(key) = key.as_str().map(str::to_string) else { continue };
            if key == "enabled" {
                kept.insert(key.into(), value);
                continue;
            }
            let at = format!("modules.{name}.{key}");
            map_one(tree, name, &key, &at, value)?;
        }
        super::env::set_path(tree, &["modules", name], Value::Mapping(kept))?;
    }
    Ok(())
}

fn map_one(tree: &mut Value, module: &str, key: &str, at: &str, value: Value) -> Result<(), ConfigError> {
    match (module, key) {
        ("progress", "storage") => backend(tree, at, value, &["progress", "store"], &PROGRESS_STORES),
        ("progress", "websocket") => set_default(tree, &["progress", "websocket"], value),
        ("notification", "channels") => switch_list(tree, at, value, &["notification", "channels"], &NOTIFY_CHANNELS),
        ("notification", "email_provider") => set_default(tree, &["notification", "channels", "email", "provider"], value),
        ("job_queue", "broker") => backend(tree, at, value, &["job_queue", "broker", "type"], &BROKERS),
        ("job_queue", "workers") => {
            if !matches!(value, Value::Number(ref n) if n.as_u64().is_some_and(|n| n >= 1)) {
                return Err(ConfigError::invalid(at, "must be a number of workers, at least 1"));
            }
            let mut pool = Mapping::new();
            pool.insert("count".into(), value);
            pool.insert("queues".into(), Value::Sequence(vec!["default".into()]));
            let mut pools = Mapping::new();
            pools.insert("default".into(), Value::Mapping(pool));
            set_default(tree, &["job_queue", "workers"], Value::Mapping(pools))
        }
        ("cache", "l1_enabled") => set_default(tree, &["cache", "l1", "enabled"], value),
        ("cache", "l2_enabled") => set_default(tree, &["cache", "l2", "enabled"], value),
        ("export", "formats") => {
            let names: Vec<&str> = crate::export::formats::BUILTIN.iter().map(|f| f.name).collect();
            let all: Vec<(&str, &str)> = names.iter().map(|n| (*n, *n)).collect();
            switch_list(tree, at, value, &["export", "formats"], &all)
        }
        ("export", "storage") => backend(tree, at, value, &["export", "storage", "type"], &EXPORT_STORAGES),
        ("search", "vector_db") => backend(tree, at, value, &["search", "vector_db", "type"], &VECTOR_DBS),
        ("search", "embeddings") => backend(tree, at, value, &["search", "embeddings", "provider"], &EMBEDDERS),
        _ => Err(ConfigError::invalid(at, format!("unknown key; modules.{module} takes `enabled`{}", accepted(module)))),
    }
}

/// The short forms `modules.<module>` accepts, for the error message.
fn accepted(module: &str) -> &'static str {
    match module {
        "progress" => ", `storage`, `websocket`",
        "notification" => ", `channels`, `email_provider`",
        "job_queue" => ", `broker`, `workers`",
        "cache" => ", `l1_enabled`, `l2_enabled`",
        "export" => ", `formats`, `storage`",
        "search" => ", `vector_db`, `embeddings`",
        _ => "",
    }
}

/// Notification channel names as the seed lists them, with their config section.
const NOTIFY_CHANNELS: [(&str, &str); 5] =
    [("in-app", "in_app"), ("in_app", "in_app"), ("email", "email"), ("webhook", "webhook"), ("push", "push")];

/// A backend name: refused when it is one hearth does not have, else set on `full`.
fn backend(tree: &mut Value, at: &str, value: Value, full: &[&str], missing: &Missing) -> Result<(), ConfigError> {
    let Some(name) = value.as_str() else { return Err(ConfigError::invalid(at, "must be a backend name")) };
    if missing.names.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(ConfigError::invalid(at, format!("'{name}' is not supported yet: {} (full key: {})", missing.instead, full.join("."))));
    }
    set_default(tree, full, value)
}

/// A list of names switching entries of `section` on (listed) and off (the others).
fn switch_list(tree: &mut Value, at: &str, value: Value, section: &[&str], known: &[(&str, &str)]) -> Result<(), ConfigError> {
    let Value::Sequence(items) = value else { return Err(ConfigError::invalid(at, "must be a list")) };
    let mut on = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let found = item.as_str().and_then(|s| known.iter().find(|(n, _)| *n == s));
        match found {
            Some((_, key)) => on.push(*key),
            None => {
                let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
                return Err(ConfigError::invalid(&format!("{at}[{i}]"), format!("unknown name; one of {}", names.join(", "))));
            }
        }
    }
    let mut keys: Vec<&str> = known.iter().map(|(_, k)| *k).collect();
    keys.dedup();
    for key in keys {
        let mut path = section.to_vec();
        path.extend([key, "enabled"]);
        set_default(tree, &path, Value::Bool(on.contains(&key)))?;
    }
    Ok(())
}

/// Sets `path` unless the file already gives it (the full key wins).
fn set_default(tree: &mut Value, path: &[&str], value: Value) -> Result<(), ConfigError> {
    let mut cur = &*tree;
    for seg in path {
        match cur.get(*seg) {
            Some(v) => cur = v,
            None => return super::env::set_path(tree, path, value),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::Config;

    #[test]
    fn short_forms_map_onto_the_full_keys() {
        let c = Config::from_yaml(
            "modules:\n  progress: {enabled: true, storage: embedded, websocket: false}\n  job_queue: {broker: embedded, workers: 7}\n  \
             cache: {l1_enabled: false, l2_enabled: true}\n  export: {formats: [txt, json, srt], storage: local}\n  \
             notification: {channels: [in-app], email_provider: smtp}\n  search: {vector_db: embedded, embeddings: local}\n",
        )
        .unwrap();
        assert!(!c.progress.websocket);
        assert_eq!(c.job_queue.workers["default"].count, 7);
        assert_eq!(c.job_queue.workers["default"].queues, vec!["default".to_string()]);
        assert!(!c.cache.l1.enabled && c.cache.l2.enabled);
        assert!(c.export.formats["srt"].enabled && !c.export.formats["pdf"].enabled && !c.export.formats["docx"].enabled);
        assert!(c.notification.channels.in_app.enabled && !c.notification.channels.email.enabled);
        assert!(c.modules.progress.enabled);
    }

    #[test]
    fn the_full_key_wins() {
        let c = Config::from_yaml(
            "modules:\n  job_queue: {workers: 2}\n  cache: {l1_enabled: false}\n  export: {formats: [txt]}\n\
             job_queue: {workers: {bulk: {count: 3, queues: [bulk]}}}\ncache: {l1: {enabled: true}}\nexport: {formats: {pdf: {enabled: true}}}\n",
        )
        .unwrap();
        assert_eq!(c.job_queue.workers.len(), 1);
        assert_eq!(c.job_queue.workers["bulk"].count, 3);
        assert!(c.cache.l1.enabled);
        assert!(c.export.formats["pdf"].enabled && !c.export.formats["md"].enabled);
    }

    #[test]
    fn backends_hearth_does_not_have_are_refused_saying_what_to_use() {
        for (yaml, key, hint) in [
            ("modules: {progress: {storage: postgresql}}", "modules.progress.storage", "embedded"),
            ("modules: {job_queue: {broker: rabbitmq}}", "modules.job_queue.broker", "redis"),
            ("modules: {export: {storage: gcs}}", "modules.export.storage", "local"),
            ("modules: {search: {vector_db: qdrant}}", "modules.search.vector_db", "embedded"),
            ("modules: {search: {embeddings: cohere}}", "modules.search.embeddings", "local"),
            ("modules: {cache: {l3_enabled: true}}", "modules.cache.l3_enabled", "l1_enabled"),
            ("modules: {export: {formats: [txt, rtf]}}", "modules.export.formats[1]", "docx"),
            ("modules: {job_queue: {workers: 0}}", "modules.job_queue.workers", "at least 1"),
        ] {
            let err = Config::from_yaml(yaml).unwrap_err();
            match &err {
                crate::config::ConfigError::Invalid { key: k, message } => {
                    assert_eq!(k, key, "{yaml}: {err}");
                    assert!(message.contains(hint), "{yaml}: {message}");
                }
                other => panic!("{yaml}: {other}"),
            }
        }
        let err = Config::from_yaml("modules: {progress: {storage: postgresql}}").unwrap_err().to_string();
        assert!(err.contains("not supported yet"), "{err}");
    }
}
