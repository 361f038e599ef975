//! Integration tests of the cache module.
