//! `${VAR}` and `${VAR:-default}` in the configuration file, expanded from the
//! environment before anything else reads the tree (the seed writes
//! `api_key: "${SENDGRID_API_KEY}"`).
//!
//! Only string values are expanded, and the result stays a string (a key that wants a
//! number gets the usual type error, naming it). `$${` writes a literal `${`. An unset
//! variable without a default is an error naming the key and the variable: starting with
//! an empty secret would fail later and further from the cause.

use super::ConfigError;
use serde_yaml::Value;

/// Expands every string value of `tree` (keys are left alone).
pub(super) fn expand_vars(tree: &mut Value, env: &[(String, String)]) -> Result<(), ConfigError> {
    walk(tree, &mut Vec::new(), env)
}

fn walk(v: &mut Value, path: &mut Vec<String>, env: &[(String, String)]) -> Result<(), ConfigError> {
    match v {
        Value::String(s) if s.contains('$') => {
            *s = expand(s, env).map_err(|why| ConfigError::invalid(&key_of(path), why))?;
        }
        Value::Mapping(m) => {
            for (k, val) in m.iter_mut() {
                path.push(k.as_str().map_or_else(|| format!("{k:?}"), str::to_string));
                walk(val, path, env)?;
                path.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, val) in items.iter_mut().enumerate() {
                match path.last_mut() {
                    Some(last) => {
                        let base = last.clone();
                        *last = format!("{base}[{i}]");
                        walk(val, path, env)?;
                        *path.last_mut().expect("pushed above") = base;
                    }
                    None => {
                        path.push(format!("[{i}]"));
                        walk(val, path, env)?;
                        path.pop();
                    }
                }
            }
        }
        Value::Tagged(t) => walk(&mut t.value, path, env)?,
        _ => {}
    }
    Ok(())
}

fn key_of(path: &[String]) -> String {
    if path.is_empty() { "<root>".into() } else { path.join(".") }
}

/// Expands the references in one string; the error says which variable is missing or
/// which reference is malformed.
fn expand(s: &str, env: &[(String, String)]) -> Result<String, String> {
    let lookup = |name: &str| env.iter().rev().find(|(k, _)| k == name).map(|(_, v)| v.as_str());
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let tail = &rest[at..];
        if let Some(after) = tail.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(inner) = tail.strip_prefix("${") {
            let end = inner.find('}').ok_or_else(|| format!("unclosed '${{' in '{s}'"))?;
            let reference = &inner[..end];
            let (name, default) = match reference.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (reference, None),
            };
            if name.is_empty()
                || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || name.starts_with(|c: char| c.is_ascii_digit())
            {
                return Err(format!("'${{{reference}}}' is not a variable reference like ${{NAME}} or ${{NAME:-default}}"));
            }
            match (lookup(name), default) {
                (Some(v), _) => out.push_str(v),
                (None, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(format!("environment variable {name} is not set (write ${{{name}:-default}} to give a default)"));
                }
            }
            rest = &inner[end + 1..];
        } else {
            out.push('$');
            rest = &tail[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn references_defaults_and_escapes() {
        let e = env(&[("KEY", "SG.abc"), ("EMPTY", "")]);
        assert_eq!(expand("${KEY}", &e).unwrap(), "SG.abc");
        assert_eq!(expand("x-${KEY}-y", &e).unwrap(), "x-SG.abc-y");
        assert_eq!(expand("${MISSING:-redis://localhost:6379}", &e).unwrap(), "redis://localhost:6379");
        assert_eq!(expand("${KEY:-fallback}", &e).unwrap(), "SG.abc", "a set variable wins over the default");
        assert_eq!(expand("${EMPTY:-d}", &e).unwrap(), "", "set but empty is set");
        assert_eq!(expand("$${KEY} costs $5", &e).unwrap(), "${KEY} costs $5");
    }

    #[test]
    fn an_unset_variable_or_a_bad_reference_is_named() {
        let err = expand("${SENDGRID_API_KEY}", &[]).unwrap_err();
        assert!(err.contains("SENDGRID_API_KEY") && err.contains("not set"), "{err}");
        assert!(expand("${OPEN", &[]).unwrap_err().contains("unclosed"));
        assert!(expand("${a b}", &[]).unwrap_err().contains("not a variable reference"));
        assert!(expand("${}", &[]).unwrap_err().contains("not a variable reference"));
    }

    #[test]
    fn the_error_names_the_key() {
        let mut tree: Value =
            serde_yaml::from_str("notification:\n  channels:\n    email:\n      api_key: \"${SENDGRID_API_KEY}\"\n").unwrap();
        match expand_vars(&mut tree, &[]).unwrap_err() {
            ConfigError::Invalid { key, message } => {
                assert_eq!(key, "notification.channels.email.api_key");
                assert!(message.contains("SENDGRID_API_KEY"), "{message}");
            }
            other => panic!("{other}"),
        }
        let mut tree: Value = serde_yaml::from_str("a:\n  - x\n  - ${NOPE}\n").unwrap();
        assert!(matches!(expand_vars(&mut tree, &[]).unwrap_err(), ConfigError::Invalid { key, .. } if key == "a[1]"));
    }
}
