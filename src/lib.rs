//! # hearth
//!
//! One self-contained binary (and library) that gives an application six back-office
//! services with no external infrastructure:
//!
//! - [`progress`]: tracking of long-running operations, pushed over WebSocket and SSE;
//! - [`notify`]: an in-app notification feed, email over SMTP, webhooks;
//! - [`jobs`]: a durable job queue with in-process handlers and an HTTP worker protocol;
//! - [`cache`]: a two-tier cache (memory + disk) with TTLs, tags and single flight;
//! - [`export`]: transcripts and documents to txt, json, srt, vtt, md, docx and pdf;
//! - [`search`]: hybrid BM25 + vector search over a local ONNX embedding model.
//!
//! Everything persists in one redb database ([`store`]) through a group-commit writer, so
//! an acknowledged write survives `kill -9`. [`App`] builds every service from a
//! [`Config`]; [`http`] serves them over REST and WebSocket, and [`resp`] serves the cache
//! over the Redis protocol.

pub mod app;
pub mod bundle;
pub mod cache;
pub mod cli;
pub mod clock;
pub mod cluster;
pub mod config;
#[cfg(any(test, feature = "conformance"))]
pub mod conformance;
pub mod error;
pub mod events;
pub mod export;
#[doc(hidden)]
pub mod fuzzing;
pub mod http;
pub mod jobs;
pub mod notify;
pub mod outbound;
pub mod progress;
pub mod resp;
pub mod runtime;
pub mod search;
pub mod store;
pub mod telemetry;
pub mod webhooks;

pub use app::App;
pub use config::Config;
pub use error::{ApiError, ErrorCode};
