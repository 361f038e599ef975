//! The conformance suites of the export seams (compiled for tests and with the
//! `conformance` feature, so backends outside this crate run the same checks):
//! [`records::run`] for an [`super::ExportRecordStore`], [`sources::run`] for a
//! [`super::SourceStore`] and [`files::run`] for an [`super::storage::ExportStorage`].
//!
//! Each suite takes a [`Harness`] (the one every seam's suite takes) that opens a
//! backend over fresh, empty storage and re-opens the same storage (as after a restart).
//! Checks use only the trait's public API and panic with a message naming the rule that
//! broke; where a rule is specific to one backend, the backend's own tests check it
//! instead.

pub mod files;
pub mod records;
pub mod sources;

pub use crate::conformance::Harness;
