//! Job names hearth keeps for itself.
//!
//! hearth runs some of its own work as jobs (webhook deliveries, notification deliveries,
//! exports, search batches). Their handlers trust their payloads and the records they
//! point at, so callers of the HTTP API may neither enqueue such jobs (they would forge
//! deliveries or exports) nor claim them as external workers (they would read what the
//! payloads carry and decide how the work ends). Admins may still retry and cancel them,
//! and list them; Rust code in the process (hearth's modules, plugins) enqueues them freely.
//!
//! **New internal job names go under `hearth.`**, which is reserved as a whole; the other
//! entries are names that existed before that rule.

use super::error::JobError;

/// Prefixes reserved as a whole: every name starting with one of these is hearth's.
pub const RESERVED_PREFIXES: &[&str] = &["hearth.", "notify."];

/// Single names reserved for hearth's own jobs (from before the `hearth.` rule).
pub const RESERVED_NAMES: &[&str] = &["export", "search.index_batch"];

/// True when `name` belongs to hearth (see the module doc).
pub fn is_reserved(name: &str) -> bool {
    RESERVED_PREFIXES.iter().any(|p| name.starts_with(p)) || RESERVED_NAMES.contains(&name)
}

/// Refuses a reserved job name coming from a caller of the API, naming `field`.
pub fn refuse(field: &str, name: &str) -> Result<(), JobError> {
    if is_reserved(name) {
        return Err(JobError::invalid(
            field,
            format!("'{name}' is reserved for hearth's own jobs (names under 'hearth.', 'notify.', 'export', 'search.index_batch')"),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hearth_names_are_reserved_and_others_are_not() {
        for n in ["hearth.webhook", "hearth.anything", "notify.email", "notify.deliver", "export", "search.index_batch"] {
            assert!(is_reserved(n), "{n}");
        }
        for n in ["exports", "my.export", "search.index", "transcribe", "hearth", "notify"] {
            assert!(!is_reserved(n), "{n}");
        }
        assert!(matches!(refuse("name", "hearth.webhook"), Err(JobError::Invalid { field, .. }) if field == "name"));
    }
}
