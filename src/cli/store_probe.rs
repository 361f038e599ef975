//! `hearth store-probe` (hidden): the durability probe the SIGKILL crash test runs; it
//! writes through the store and prints each acknowledged key.

/// Runs the probe until killed or `limit` writes per writer.
pub(super) fn run(dir: &std::path::Path, tag: &str, writers: usize, limit: u64) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    runtime.block_on(crate::store::probe::run(dir, tag, writers, limit)).map_err(|e| e.to_string())
}
