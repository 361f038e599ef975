//! Durable writes per second through the group-commit writer with 1, 16 and 256
//! concurrent writers, beside redb's raw rates (one row per commit, 1,000 rows per commit)
//! measured in the same run on the same disk. Prints its figures.
//!
//! Run: `cargo bench --bench store`

use hearth::store::{Store, StoreError};
use redb::{Database, TableDefinition};
use std::time::{Duration, Instant};

const T: TableDefinition<u64, &[u8]> = TableDefinition::new("bench");
const VALUE: [u8; 100] = [7u8; 100];

fn raw_redb(rows_per_commit: u64, budget: Duration) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let db = Database::create(dir.path().join("raw.redb")).unwrap();
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed() < budget {
        let txn = db.begin_write().unwrap();
        {
            let mut t = txn.open_table(T).unwrap();
            for _ in 0..rows_per_commit {
                t.insert(n, VALUE.as_slice()).unwrap();
                n += 1;
            }
        }
        txn.commit().unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

/// Each writer awaits its acknowledgement before its next write. Keys come from one
/// counter, so (like job ids, which are UUIDv7) they are close to sequential and a batch
/// touches few B-tree pages, as in the raw batched run it is compared with.
async fn through_writer(writers: u64, budget: Duration) -> (f64, f64) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let start = Instant::now();
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..writers {
        let store = store.clone();
        let next = next.clone();
        tasks.push(tokio::spawn(async move {
            let mut i = 0u64;
            while start.elapsed() < budget {
                let key = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                store
                    .write(move |txn| -> Result<(), StoreError> {
                        txn.open_table(T)?.insert(key, VALUE.as_slice())?;
                        Ok(())
                    })
                    .await
                    .unwrap();
                i += 1;
            }
            i
        }));
    }
    let mut total = 0u64;
    for t in tasks {
        total += t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let commits = store.writer_stats().commits.load(std::sync::atomic::Ordering::Relaxed) as f64;
    (total as f64 / secs, total as f64 / commits.max(1.0))
}

fn main() {
    let budget = Duration::from_secs(3);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!("redb raw, 1 row per durable commit:      {:>10.0} rows/s", raw_redb(1, budget));
    println!("redb raw, 1,000 rows per durable commit: {:>10.0} rows/s", raw_redb(1000, budget));
    for writers in [1u64, 16, 256, 1024] {
        let (rate, per_commit) = rt.block_on(through_writer(writers, budget));
        println!("group-commit writer, {writers:>3} concurrent writers: {rate:>10.0} durable writes/s ({per_commit:.1} writes per commit)");
    }
}
