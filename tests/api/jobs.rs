//! Integration tests of the jobs module.
