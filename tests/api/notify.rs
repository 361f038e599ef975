//! Integration tests of the notify module.
