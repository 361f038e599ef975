//! Integration tests of the search module.
