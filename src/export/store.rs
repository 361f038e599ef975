//! redb tables of the export module and their typed accessors.

use super::error::ExportError;
use super::record::{ExportJob, Work};
use crate::store::{Store, codec, open_read};
use redb::{ReadableTable, TableDefinition};

/// Export records by id.
pub const EXPORTS: TableDefinition<&str, &[u8]> = TableDefinition::new("export_jobs");
/// Pending work (sources, webhook secret) by export id; removed when the export is final.
pub const WORK: TableDefinition<&str, &[u8]> = TableDefinition::new("export_work");
/// Stored transcripts by id (value: JSON text of the transcript).
pub const TRANSCRIPTS: TableDefinition<&str, &[u8]> = TableDefinition::new("export_transcripts");
/// Stored documents by id (value: JSON text of the document).
pub const DOCUMENTS: TableDefinition<&str, &[u8]> = TableDefinition::new("export_documents");

/// Reads one export record.
pub async fn get_export(store: &Store, id: &str) -> Result<Option<ExportJob>, ExportError> {
    let id = id.to_string();
    store
        .read(move |txn| {
            let Some(t) = open_read(txn, EXPORTS)? else { return Ok(None) };
            match t.get(id.as_str()).map_err(crate::store::StoreError::from)? {
                Some(v) => Ok(Some(codec::decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
}

/// Reads the work of an export.
pub async fn get_work(store: &Store, id: &str) -> Result<Option<Work>, ExportError> {
    let id = id.to_string();
    store
        .read(move |txn| {
            let Some(t) = open_read(txn, WORK)? else { return Ok(None) };
            match t.get(id.as_str()).map_err(crate::store::StoreError::from)? {
                Some(v) => Ok(Some(codec::decode(v.value())?)),
                None => Ok(None),
            }
        })
        .await
}

/// Every export record, newest first (ids are UUIDv7, so key order is creation order).
pub async fn list_exports(store: &Store) -> Result<Vec<ExportJob>, ExportError> {
    store
        .read(move |txn| {
            let Some(t) = open_read(txn, EXPORTS)? else { return Ok(Vec::new()) };
            let mut out = Vec::new();
            for row in t.iter().map_err(crate::store::StoreError::from)?.rev() {
                let (_, v) = row.map_err(crate::store::StoreError::from)?;
                out.push(codec::decode::<ExportJob>(v.value())?);
            }
            Ok(out)
        })
        .await
}

/// Inserts a new export with its work, durably.
pub async fn insert_export(store: &Store, job: &ExportJob, work: &Work) -> Result<(), ExportError> {
    let id = job.id.clone();
    let rec = codec::encode(job)?;
    let w = codec::encode(work)?;
    store
        .write(move |txn| {
            txn.open_table(EXPORTS)
                .map_err(crate::store::StoreError::from)?
                .insert(id.as_str(), rec.as_slice())
                .map_err(crate::store::StoreError::from)?;
            txn.open_table(WORK)
                .map_err(crate::store::StoreError::from)?
                .insert(id.as_str(), w.as_slice())
                .map_err(crate::store::StoreError::from)?;
            Ok::<_, ExportError>(())
        })
        .await
}

/// Applies `f` to the stored record (if present) and writes it back; when the result is
/// final, the work entry is dropped in the same transaction. Returns the new record, or
/// None when the export does not exist. `f` returning None leaves the record unchanged.
pub async fn update_export<F>(store: &Store, id: &str, f: F) -> Result<Option<ExportJob>, ExportError>
where
    F: FnOnce(ExportJob) -> Option<ExportJob> + Send + 'static,
{
    let id = id.to_string();
    store
        .write(move |txn| {
            let mut t = txn.open_table(EXPORTS).map_err(crate::store::StoreError::from)?;
            let current: ExportJob = match t.get(id.as_str()).map_err(crate::store::StoreError::from)? {
                Some(v) => codec::decode(v.value())?,
                None => return Ok(None),
            };
            let Some(next) = f(current.clone()) else { return Ok(Some(current)) };
            let bytes = codec::encode(&next)?;
            t.insert(id.as_str(), bytes.as_slice()).map_err(crate::store::StoreError::from)?;
            if next.status.is_final() {
                txn.open_table(WORK)
                    .map_err(crate::store::StoreError::from)?
                    .remove(id.as_str())
                    .map_err(crate::store::StoreError::from)?;
            }
            Ok::<_, ExportError>(Some(next))
        })
        .await
}

/// Removes an export record and its work.
pub async fn delete_export(store: &Store, id: &str) -> Result<bool, ExportError> {
    let id = id.to_string();
    store
        .write(move |txn| {
            let existed = txn
                .open_table(EXPORTS)
                .map_err(crate::store::StoreError::from)?
                .remove(id.as_str())
                .map_err(crate::store::StoreError::from)?
                .is_some();
            txn.open_table(WORK).map_err(crate::store::StoreError::from)?.remove(id.as_str()).map_err(crate::store::StoreError::from)?;
            Ok::<_, ExportError>(existed)
        })
        .await
}

/// Stores a source's JSON text under `id` in `table`.
pub async fn put_source(
    store: &Store,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    id: &str,
    json: String,
) -> Result<(), ExportError> {
    let id = id.to_string();
    let bytes = codec::encode(&json)?;
    store
        .write(move |txn| {
            txn.open_table(table)
                .map_err(crate::store::StoreError::from)?
                .insert(id.as_str(), bytes.as_slice())
                .map_err(crate::store::StoreError::from)?;
            Ok::<_, ExportError>(())
        })
        .await
}

/// Reads a source's JSON text.
pub async fn get_source(
    store: &Store,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    id: &str,
) -> Result<Option<String>, ExportError> {
    let id = id.to_string();
    store
        .read(move |txn| {
            let Some(t) = open_read(txn, table)? else { return Ok(None) };
            match t.get(id.as_str()).map_err(crate::store::StoreError::from)? {
                Some(v) => Ok(Some(codec::decode::<String>(v.value())?)),
                None => Ok(None),
            }
        })
        .await
}

/// Deletes a source; returns whether it existed.
pub async fn delete_source(
    store: &Store,
    table: TableDefinition<'static, &'static str, &'static [u8]>,
    id: &str,
) -> Result<bool, ExportError> {
    let id = id.to_string();
    store
        .write(move |txn| {
            let existed = txn
                .open_table(table)
                .map_err(crate::store::StoreError::from)?
                .remove(id.as_str())
                .map_err(crate::store::StoreError::from)?
                .is_some();
            Ok::<_, ExportError>(existed)
        })
        .await
}
