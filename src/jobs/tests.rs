//! Unit tests of the job queue (see tests.rs).
