//! Prometheus metrics of the notification module (`hearth_notify_*`).

use super::model::Notification;

/// Registers HELP texts with the current global recorder. Called when the service is
/// built (for programs that install their recorder first) and again when the HTTP routes
/// are built, after the server installed its Prometheus recorder; repeating is harmless.
pub fn describe() {
    {
        ::metrics::describe_counter!("hearth_notify_sent_total", "Notifications accepted, by type.");
        ::metrics::describe_counter!("hearth_notify_routed_total", "Channel deliveries requested by accepted notifications, by channel.");
        ::metrics::describe_counter!("hearth_notify_delivered_total", "Channel deliveries that succeeded, by channel.");
        ::metrics::describe_counter!("hearth_notify_failed_total", "Channel deliveries given up after the last attempt, by channel.");
        ::metrics::describe_counter!("hearth_notify_retries_total", "Delivery attempts that failed and will be retried, by channel.");
        ::metrics::describe_counter!("hearth_notify_read_total", "Notifications marked read.");
        ::metrics::describe_counter!("hearth_notify_swept_total", "Notifications removed by retention.");
        ::metrics::describe_histogram!(
            "hearth_notify_delivery_seconds",
            "Seconds from send to successful delivery, by channel (0 for in-app, which is delivered by the send)."
        );
        ::metrics::describe_gauge!("hearth_notify_ws_connections", "Open notification WebSocket connections.");
    }
}

pub(super) fn sent(n: &Notification) {
    ::metrics::counter!("hearth_notify_sent_total", "type" => n.kind.as_str()).increment(1);
    for c in &n.channels {
        ::metrics::counter!("hearth_notify_routed_total", "channel" => c.clone()).increment(1);
    }
}

pub(super) fn delivered(channel: &str, seconds: f64) {
    ::metrics::counter!("hearth_notify_delivered_total", "channel" => channel.to_string()).increment(1);
    ::metrics::histogram!("hearth_notify_delivery_seconds", "channel" => channel.to_string()).record(seconds);
}

pub(super) fn failed(channel: &str) {
    ::metrics::counter!("hearth_notify_failed_total", "channel" => channel.to_string()).increment(1);
}

pub(super) fn retried(channel: &str) {
    ::metrics::counter!("hearth_notify_retries_total", "channel" => channel.to_string()).increment(1);
}

pub(super) fn read(n: usize) {
    ::metrics::counter!("hearth_notify_read_total").increment(n as u64);
}

pub(super) fn swept(n: usize) {
    ::metrics::counter!("hearth_notify_swept_total").increment(n as u64);
}

/// Tracks one open WebSocket in the gauge for as long as the guard lives.
pub struct WsGuard(());

impl WsGuard {
    /// Counts a connection open.
    pub fn open() -> WsGuard {
        ::metrics::gauge!("hearth_notify_ws_connections").increment(1.0);
        WsGuard(())
    }
}

impl Drop for WsGuard {
    fn drop(&mut self) {
        ::metrics::gauge!("hearth_notify_ws_connections").decrement(1.0);
    }
}
