//! Integration tests: one binary, one module per area. Each test starts a real server
//! on 127.0.0.1:0 with a temp data dir (see `common`) and speaks HTTP/WebSocket to it.

mod common;

mod authz;
mod browser;
mod cache;
mod cluster;
mod content_safety;
mod crash;
mod deploy;
mod export;
mod foundation;
mod hardening;
mod jobs;
mod logs;
mod models_cli;
mod nodes;
mod notify;
mod progress;
mod resp;
mod seams;
mod search;
mod seed;
mod ui;
mod ws_worker;
