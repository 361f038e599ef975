//! Names and descriptions of the `hearth_progress_*` metrics.

/// Progress records created.
pub const CREATED: &str = "hearth_progress_created_total";
/// Updates accepted (percent and stage changes).
pub const UPDATES: &str = "hearth_progress_updates_total";
/// Stage changes.
pub const STAGE_CHANGES: &str = "hearth_progress_stage_changes_total";
/// Progress records reaching a terminal state, by `status`.
pub const FINISHED: &str = "hearth_progress_finished_total";
/// Coalesced snapshot writes of intermediate percents.
pub const FLUSHED: &str = "hearth_progress_flushed_total";
/// Records removed by the retention sweeper.
pub const EXPIRED: &str = "hearth_progress_expired_total";
/// Running progress records held in memory.
pub const LIVE: &str = "hearth_progress_live";
/// Open WebSocket and SSE subscriptions.
pub const SUBSCRIBERS: &str = "hearth_progress_subscribers";
/// Intermediate events a slow subscriber skipped because a newer one superseded them.
pub const COALESCED: &str = "hearth_progress_coalesced_events_total";
/// Subscriber resynchronisations from the store after falling behind the event bus.
pub const RESYNCS: &str = "hearth_progress_resyncs_total";

/// Registers HELP text for every metric above. Idempotent; call after the recorder is
/// installed (the HTTP layer does).
pub fn describe() {
    metrics::describe_counter!(CREATED, "Progress records created.");
    metrics::describe_counter!(UPDATES, "Progress updates accepted (percent and stage changes).");
    metrics::describe_counter!(STAGE_CHANGES, "Progress stage changes.");
    metrics::describe_counter!(FINISHED, "Progress records that reached a terminal state, by status.");
    metrics::describe_counter!(FLUSHED, "Coalesced writes of intermediate progress percents to storage.");
    metrics::describe_counter!(EXPIRED, "Finished progress records removed by the retention sweeper.");
    metrics::describe_gauge!(LIVE, "Running progress records held in memory.");
    metrics::describe_gauge!(SUBSCRIBERS, "Open progress WebSocket and SSE subscriptions.");
    metrics::describe_counter!(COALESCED, "Intermediate progress events skipped by slow subscribers (a newer state superseded them).");
    metrics::describe_counter!(RESYNCS, "Progress subscribers resynchronised from storage after lagging behind the event bus.");
}
