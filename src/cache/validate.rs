//! Argument checks shared by the Rust API and HTTP: every rejection names its field.

use super::CacheError;
use super::config::CacheConfig;
use std::time::Duration;

/// Longest key accepted, bytes.
pub const MAX_KEY_BYTES: usize = 1024;
/// Longest tag accepted, bytes.
pub const MAX_TAG_BYTES: usize = 256;
/// Most tags on one entry or in one invalidation.
pub const MAX_TAGS: usize = 64;

/// A key must be 1..=1024 bytes without control characters.
pub fn key(key: &str) -> Result<(), CacheError> {
    if key.is_empty() {
        return Err(CacheError::invalid("key", "must not be empty"));
    }
    if key.len() > MAX_KEY_BYTES {
        return Err(CacheError::invalid("key", format!("is {} bytes; at most {MAX_KEY_BYTES} are allowed", key.len())));
    }
    if key.chars().any(char::is_control) {
        return Err(CacheError::invalid("key", "must not contain control characters"));
    }
    Ok(())
}

/// The TTL to apply: `ttl` or the configured default, at least 1 ms and at most `max_ttl`.
pub fn ttl(ttl: Option<Duration>, cfg: &CacheConfig) -> Result<Duration, CacheError> {
    let ttl = ttl.unwrap_or(Duration::from_secs(cfg.l2.default_ttl));
    if ttl < Duration::from_millis(1) {
        return Err(CacheError::invalid("ttl", "must be positive"));
    }
    if ttl > Duration::from_secs(cfg.max_ttl) {
        return Err(CacheError::invalid("ttl", format!("must be at most {} seconds (cache.max_ttl)", cfg.max_ttl)));
    }
    Ok(ttl)
}

/// Tags: at most 64, each 1..=256 bytes without commas or control characters
/// (commas separate tags in the HTTP query string). Duplicates are dropped.
pub fn tags(tags: &[String]) -> Result<Vec<String>, CacheError> {
    if tags.len() > MAX_TAGS {
        return Err(CacheError::invalid("tags", format!("at most {MAX_TAGS} tags are allowed")));
    }
    let mut out: Vec<String> = Vec::with_capacity(tags.len());
    for t in tags {
        if t.is_empty() || t.len() > MAX_TAG_BYTES {
            return Err(CacheError::invalid("tags", format!("each tag must be 1..={MAX_TAG_BYTES} bytes")));
        }
        if t.contains(',') || t.chars().any(char::is_control) {
            return Err(CacheError::invalid("tags", format!("tag {t:?} must not contain commas or control characters")));
        }
        if !out.contains(t) {
            out.push(t.clone());
        }
    }
    Ok(out)
}

/// The value must fit `cache.max_entry_bytes`.
pub fn value_size(len: usize, cfg: &CacheConfig) -> Result<(), CacheError> {
    if len > cfg.max_entry_bytes {
        return Err(CacheError::TooLarge(format!("{len} bytes exceeds cache.max_entry_bytes ({})", cfg.max_entry_bytes)));
    }
    Ok(())
}

/// A compiled glob over keys (`*` any run of characters, `?` one, `[abc]` a class,
/// `{a,b}` alternatives; `\` escapes), with its literal prefix for range scans.
pub struct Pattern {
    /// The matcher.
    pub matcher: globset::GlobMatcher,
    /// The longest literal prefix every match starts with.
    pub literal_prefix: String,
}

/// Compiles `pattern`, naming the `pattern` field on error.
pub fn pattern(pattern: &str) -> Result<Pattern, CacheError> {
    if pattern.is_empty() {
        return Err(CacheError::invalid("pattern", "must not be empty"));
    }
    if pattern.len() > MAX_KEY_BYTES {
        return Err(CacheError::invalid("pattern", format!("at most {MAX_KEY_BYTES} bytes are allowed")));
    }
    let glob = globset::GlobBuilder::new(pattern)
        .literal_separator(false)
        .backslash_escape(true)
        .build()
        .map_err(|e| CacheError::invalid("pattern", format!("invalid glob: {}", e.kind())))?;
    let mut literal_prefix = String::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '*' | '?' | '[' | '{' => break,
            '\\' => match chars.next() {
                Some(n) => literal_prefix.push(n),
                None => break,
            },
            c => literal_prefix.push(c),
        }
    }
    Ok(Pattern { matcher: glob.compile_matcher(), literal_prefix })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys() {
        assert!(key("user:1").is_ok());
        assert!(matches!(key(""), Err(CacheError::Invalid { field: "key", .. })));
        assert!(key(&"k".repeat(1024)).is_ok());
        assert!(matches!(key(&"k".repeat(1025)), Err(CacheError::Invalid { field: "key", .. })));
        assert!(key("a\nb").is_err());
    }

    #[test]
    fn ttls() {
        let cfg = CacheConfig::default();
        assert_eq!(ttl(None, &cfg).unwrap(), Duration::from_secs(3600));
        assert!(matches!(ttl(Some(Duration::ZERO), &cfg), Err(CacheError::Invalid { field: "ttl", .. })));
        assert!(matches!(ttl(Some(Duration::from_secs(cfg.max_ttl + 1)), &cfg), Err(CacheError::Invalid { field: "ttl", .. })));
    }

    #[test]
    fn patterns() {
        let p = pattern("user:*").unwrap();
        assert_eq!(p.literal_prefix, "user:");
        assert!(p.matcher.is_match("user:1/2"));
        assert!(!p.matcher.is_match("users:1"));
        let p = pattern(r"a\*b?").unwrap();
        assert_eq!(p.literal_prefix, "a*b");
        assert!(p.matcher.is_match("a*bc"));
        assert!(matches!(pattern("user:[").err(), Some(CacheError::Invalid { field: "pattern", .. })));
        assert!(pattern("").is_err());
    }

    #[test]
    fn tag_lists() {
        assert_eq!(tags(&["a".into(), "a".into(), "b".into()]).unwrap(), vec!["a", "b"]);
        assert!(matches!(tags(&["".into()]), Err(CacheError::Invalid { field: "tags", .. })));
        assert!(tags(&["a,b".into()]).is_err());
    }
}
