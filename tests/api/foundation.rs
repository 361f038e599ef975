//! Foundation tests: HTTP conventions, auth, observability, config, crash safety.
