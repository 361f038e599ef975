//! The embedded export stores: records, their work and stored sources in hearth's redb
//! database, written through the group-commit writer (acknowledged once durable).
//!
//! Tables: `export_jobs` (id → record), `export_work` (id → work, removed when the export is
//! final), `export_transcripts` and `export_documents` (id → JSON text of the source).
//! Values are encoded with [`crate::store::codec`].

use super::error::ExportError;
use super::record::{ExportJob, Work};
use super::record_store::{ExportRecordStore, ListFilter, Swap};
use super::source_store::{SourceKind, SourceStore};
use crate::store::{Store, StoreError, codec, open_read};
use async_trait::async_trait;
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

/// Export records by id.
const EXPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("export_jobs");
/// Pending work (sources, webhook secret) by export id; removed when the export is final.
const WORK: TableDefinition<&str, &[u8]> = TableDefinition::new("export_work");
/// Stored transcripts by id (value: JSON text of the transcript).
const TRANSCRIPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("export_transcripts");
/// Stored documents by id (value: JSON text of the document).
const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("export_documents");

type Table = TableDefinition<'static, &'static str, &'static [u8]>;

fn table_of(kind: SourceKind) -> Table {
    match kind {
        SourceKind::Transcript => TRANSCRIPTS,
        SourceKind::Document => DOCUMENTS,
    }
}

/// Export records, work and stored sources in redb (the default [`ExportRecordStore`] and
/// [`SourceStore`]).
#[derive(Clone)]
pub struct EmbeddedExportStore {
    store: Store,
}

impl EmbeddedExportStore {
    /// Stores over hearth's database.
    pub fn new(store: Store) -> Self {
        EmbeddedExportStore { store }
    }
}

/// Reads and decodes one value of `table`.
fn read_value<T: serde::de::DeserializeOwned>(txn: &ReadTransaction, table: Table, key: &str) -> Result<Option<T>, StoreError> {
    let Some(t) = open_read(txn, table)? else { return Ok(None) };
    t.get(key)?.map(|v| codec::decode(v.value())).transpose()
}

/// Reads and decodes one value of `table` inside a write transaction.
fn read_for_write<T: serde::de::DeserializeOwned>(txn: &WriteTransaction, table: Table, key: &str) -> Result<Option<T>, StoreError> {
    txn.open_table(table)?.get(key)?.map(|v| codec::decode(v.value())).transpose()
}

fn put_value(txn: &WriteTransaction, table: Table, key: &str, bytes: &[u8]) -> Result<(), StoreError> {
    txn.open_table(table)?.insert(key, bytes)?;
    Ok(())
}

fn remove_value(txn: &WriteTransaction, table: Table, key: &str) -> Result<bool, StoreError> {
    Ok(txn.open_table(table)?.remove(key)?.is_some())
}

#[async_trait]
impl ExportRecordStore for EmbeddedExportStore {
    async fn insert(&self, record: &ExportJob, work: &Work) -> Result<(), ExportError> {
        let id = record.id.clone();
        let (rec, w) = (codec::encode(record)?, codec::encode(work)?);
        self.store
            .write(move |txn| {
                if txn.open_table(EXPORTS).map_err(StoreError::from)?.get(id.as_str()).map_err(StoreError::from)?.is_some() {
                    return Err(ExportError::Conflict(format!("export {id} already exists")));
                }
                put_value(txn, EXPORTS, &id, &rec)?;
                put_value(txn, WORK, &id, &w)?;
                Ok(())
            })
            .await
    }

    async fn get(&self, id: &str) -> Result<Option<ExportJob>, ExportError> {
        let id = id.to_string();
        Ok(self.store.read(move |txn| read_value(txn, EXPORTS, &id)).await?)
    }

    async fn work(&self, id: &str) -> Result<Option<Work>, ExportError> {
        let id = id.to_string();
        Ok(self.store.read(move |txn| read_value(txn, WORK, &id)).await?)
    }

    async fn list(&self, filter: &ListFilter) -> Result<Vec<ExportJob>, ExportError> {
        let filter = filter.clone();
        let found = self
            .store
            .read(move |txn| {
                let Some(t) = open_read(txn, EXPORTS)? else { return Ok(Vec::new()) };
                let mut out = Vec::new();
                // Keys are UUIDv7 ids: reverse key order is newest first.
                for row in t.iter()?.rev() {
                    if out.len() >= filter.limit {
                        break;
                    }
                    let job: ExportJob = codec::decode(row?.1.value())?;
                    if filter.matches(&job) {
                        out.push(job);
                    }
                }
                Ok::<_, StoreError>(out)
            })
            .await?;
        Ok(found)
    }

    async fn swap(&self, expected: &ExportJob, next: &ExportJob) -> Result<Swap, ExportError> {
        let (expected, bytes, is_final) = (expected.clone(), codec::encode(next)?, next.status.is_final());
        let swapped = self
            .store
            .write(move |txn| {
                let id = expected.id.as_str();
                let current: Option<ExportJob> = read_for_write(txn, EXPORTS, id)?;
                if current.as_ref() != Some(&expected) {
                    return Ok::<_, StoreError>(Swap::Stale(current.map(Box::new)));
                }
                put_value(txn, EXPORTS, id, &bytes)?;
                if is_final {
                    remove_value(txn, WORK, id)?;
                }
                Ok(Swap::Applied)
            })
            .await?;
        Ok(swapped)
    }

    async fn delete(&self, id: &str) -> Result<bool, ExportError> {
        let id = id.to_string();
        let existed = self
            .store
            .write(move |txn| {
                let existed = remove_value(txn, EXPORTS, &id)?;
                remove_value(txn, WORK, &id)?;
                Ok::<_, StoreError>(existed)
            })
            .await?;
        Ok(existed)
    }
}

#[async_trait]
impl SourceStore for EmbeddedExportStore {
    async fn put(&self, kind: SourceKind, id: &str, json: String) -> Result<(), ExportError> {
        let (id, bytes) = (id.to_string(), codec::encode(&json)?);
        Ok(self.store.write(move |txn| put_value(txn, table_of(kind), &id, &bytes)).await?)
    }

    async fn get(&self, kind: SourceKind, id: &str) -> Result<Option<String>, ExportError> {
        let id = id.to_string();
        Ok(self.store.read(move |txn| read_value(txn, table_of(kind), &id)).await?)
    }

    async fn delete(&self, kind: SourceKind, id: &str) -> Result<bool, ExportError> {
        let id = id.to_string();
        Ok(self.store.write(move |txn| remove_value(txn, table_of(kind), &id)).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conformance::TempDb;
    use crate::export::conformance;

    fn harness() -> TempDb<EmbeddedExportStore> {
        TempDb::on_store(EmbeddedExportStore::new)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_record_store_passes_the_conformance_suite() {
        conformance::records::run(harness()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_embedded_source_store_passes_the_conformance_suite() {
        conformance::sources::run(harness()).await;
    }
}
