//! Integration tests of the export module.
