//! Outgoing webhooks for events (config `webhooks: [{url, events, secret}]`).
//! SKELETON: delivery through the job queue is built under issue #2 once jobs exist.

use crate::app::App;
use std::sync::Arc;

/// Starts the webhook dispatcher for the configured subscriptions.
pub fn start(_app: &Arc<App>) {}
