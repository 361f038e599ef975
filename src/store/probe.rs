//! The durability probe behind the hidden `hearth store-probe` command.
//!
//! It writes through the real group-commit writer from many concurrent writers and prints
//! one line per acknowledged write (`ack <key>`) to stdout, flushed at once. The crash
//! test kills the process with SIGKILL at random moments, reopens the database and
//! checks that every key it saw acknowledged is present: the store's promise, tested on
//! the real binary rather than in-process.

use super::{Store, StoreError};
use redb::TableDefinition;
use std::io::Write;
use std::path::Path;

/// The ledger table: key `"<tag>/<writer>:<seq>"` → value length-prefixed payload.
pub const LEDGER: TableDefinition<&str, &[u8]> = TableDefinition::new("probe_ledger");

/// Writes until killed (or `limit` writes per writer), printing each acknowledgement.
pub async fn run(dir: &Path, tag: &str, writers: usize, limit: u64) -> Result<(), StoreError> {
    let store = Store::open(dir)?;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let mut tasks = Vec::new();
    for w in 0..writers {
        let store = store.clone();
        let tx = tx.clone();
        let tag = tag.to_string();
        tasks.push(tokio::spawn(async move {
            for seq in 0..limit {
                let key = format!("{tag}/{w}:{seq}");
                let k = key.clone();
                let payload = vec![(seq % 251) as u8; 64];
                store
                    .write(move |txn| -> Result<(), StoreError> {
                        txn.open_table(LEDGER)?.insert(k.as_str(), payload.as_slice())?;
                        Ok(())
                    })
                    .await?;
                if tx.send(key).is_err() {
                    break;
                }
            }
            Ok::<(), StoreError>(())
        }));
    }
    drop(tx);
    let printer = tokio::task::spawn_blocking(move || {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        while let Some(key) = rx.blocking_recv() {
            // An ack is printed only after the write is durable; printing is the ack.
            if writeln!(out, "ack {key}").and_then(|_| out.flush()).is_err() {
                break;
            }
        }
    });
    for t in tasks {
        t.await.map_err(|e| StoreError::Db(e.to_string()))??;
    }
    let _ = printer.await;
    Ok(())
}

/// Returns which of `keys` are missing from the ledger in `dir`.
pub fn missing(dir: &Path, keys: &[String]) -> Result<Vec<String>, StoreError> {
    let store = Store::open(dir)?;
    store.read_now(|txn| {
        let Some(table) = super::open_read(txn, LEDGER)? else {
            return Ok(keys.to_vec());
        };
        let mut missing = Vec::new();
        for k in keys {
            if table.get(k.as_str())?.is_none() {
                missing.push(k.clone());
            }
        }
        Ok(missing)
    })
}
