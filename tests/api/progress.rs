//! Integration tests of the progress module.
