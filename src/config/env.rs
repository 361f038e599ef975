//! Environment overrides and secret redaction, applied to the untyped YAML tree before it
//! is typed (see the parent module's doc for the variables).

use super::ConfigError;
use serde_yaml::Value;

/// Seed and hearth environment variables that map onto config keys.
const ENV_MAP: &[(&str, &[&[&str]])] = &[
    ("REDIS_URL", &[&["redis", "url"], &["job_queue", "broker", "url"], &["cache", "l2", "url"]]),
    ("SMTP_URL", &[&["notification", "channels", "email", "smtp_url"]]),
    ("EMAIL_FROM", &[&["notification", "channels", "email", "from"]]),
];

/// Seed variables of backends hearth does not have yet: each is read only when the file
/// selects its backend (key, name), which validation then refuses naming the key. Read
/// unconditionally, an `AWS_REGION` that a cloud sets for every process would stop hearth.
/// A variable, the (key, value) that selects its backend, and the key it sets.
type BackendVar = (&'static str, (&'static [&'static str], &'static str), &'static [&'static str]);

const BACKEND_ENV_MAP: &[BackendVar] = &[
    ("QDRANT_URL", (&["search", "vector_db", "type"], "qdrant"), &["search", "vector_db", "url"]),
    ("QDRANT_API_KEY", (&["search", "vector_db", "type"], "qdrant"), &["search", "vector_db", "api_key"]),
    ("OPENAI_API_KEY", (&["search", "embeddings", "provider"], "openai"), &["search", "embeddings", "api_key"]),
    ("AWS_ACCESS_KEY_ID", (&["export", "storage", "type"], "s3"), &["export", "storage", "access_key_id"]),
    ("AWS_SECRET_ACCESS_KEY", (&["export", "storage", "type"], "s3"), &["export", "storage", "secret_access_key"]),
    ("AWS_REGION", (&["export", "storage", "type"], "s3"), &["export", "storage", "region"]),
    ("AWS_BUCKET", (&["export", "storage", "type"], "s3"), &["export", "storage", "bucket"]),
    ("AWS_ENDPOINT_URL", (&["export", "storage", "type"], "s3"), &["export", "storage", "endpoint"]),
    // Not a missing backend, but read the same way: only the sendgrid provider uses it.
    (
        "SENDGRID_API_KEY",
        (&["notification", "channels", "email", "provider"], "sendgrid"),
        &["notification", "channels", "email", "api_key"],
    ),
];

/// Whether `tree` has the string `value` at `path`.
fn selects(tree: &Value, path: &[&str], value: &str) -> bool {
    let mut cur = tree;
    for seg in path {
        match cur.get(*seg) {
            Some(v) => cur = v,
            None => return false,
        }
    }
    cur.as_str() == Some(value)
}

/// With `REDIS_URL` in the environment, every part with a Redis backend uses it unless
/// the file or a `HEARTH__...` variable chose one (an explicit `embedded` wins).
fn select_redis(tree: &mut Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    if !env.iter().any(|(k, v)| k == "REDIS_URL" && !v.is_empty()) {
        return Ok(());
    }
    for key in super::REDIS_KEYS {
        let path: Vec<&str> = key.split('.').collect();
        let (last, parents) = path.split_last().expect("non-empty path");
        let section = ensure_map(tree, parents)?;
        if !section.contains_key(Value::String(last.to_string())) {
            section.insert(Value::String(last.to_string()), Value::String("redis".into()));
        }
    }
    Ok(())
}

pub(super) fn apply_env(tree: &mut Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    let mut sorted: Vec<&(String, String)> = env.iter().collect();
    sorted.sort();
    for (k, v) in &sorted {
        if let Some((_, paths)) = ENV_MAP.iter().find(|(name, _)| name == k) {
            for p in paths.iter() {
                set_path(tree, p, Value::String(v.clone()))?;
            }
        } else if let Some((_, (when, backend), path)) = BACKEND_ENV_MAP.iter().find(|(name, _, _)| name == k) {
            if selects(tree, when, backend) {
                set_path(tree, path, Value::String(v.clone()))?;
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
    select_redis(tree, env)?;
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
            _ => return Err(ConfigError::invalid(&key_of(&path[..i]), "must be a mapping")),
        };
        cur = map.entry(Value::String(seg.to_string())).or_insert(Value::Mapping(Default::default()));
    }
    match cur {
        Value::Mapping(m) => Ok(m),
        _ => Err(ConfigError::invalid(&key_of(path), "must be a mapping")),
    }
}

/// The dotted key of `path`; `<root>` for the file itself (as the typed loader names it).
fn key_of(path: &[&str]) -> String {
    if path.is_empty() { "<root>".into() } else { path.join(".") }
}

pub(super) fn set_path(tree: &mut Value, path: &[&str], value: Value) -> Result<(), ConfigError> {
    let (last, parents) = path.split_last().expect("non-empty path");
    ensure_map(tree, parents)?.insert(Value::String(last.to_string()), value);
    Ok(())
}

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    k == "key" || k.contains("secret") || k.contains("password") || k.ends_with("api_key") || k == "smtp_url" || k == "token_secret"
}

pub(super) fn redact(v: &mut Value) {
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
