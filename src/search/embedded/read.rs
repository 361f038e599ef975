//! Reading the embedded store: the load at open (which rebuilds the derived state from
//! redb) and point reads of documents.

use super::keyword::{ChunkDoc, KeywordIndex, KeywordOp};
use super::{EmbeddedStore, tables};
use crate::search::backend::StoredDoc;
use crate::search::error::SearchError;
use redb::ReadTransaction;

impl EmbeddedStore {
    /// Blocking: opens the keyword index and loads every document and its vectors from
    /// redb into memory; rebuilds the keyword index from redb when the sequence number it
    /// records differs from the store's (missing, stale or ahead after a crash).
    pub(super) fn load(&self) -> Result<KeywordIndex, SearchError> {
        let inner = &self.0;
        let kw = KeywordIndex::open(&inner.keyword_dir)?;
        inner.store.read_now(|txn| -> Result<(), SearchError> {
            let seq = tables::read_seq(txn)?;
            let rebuild_keyword = seq != kw.opened_seq;
            let mut ops = Vec::new();
            if rebuild_keyword {
                tracing::info!(store_seq = seq, index_seq = kw.opened_seq, "search: rebuilding the keyword index from the store");
                ops.push(KeywordOp::Clear { watermark: seq });
            }
            let mut docs = inner.docs.write();
            tables::for_each_doc(txn, |id, rec, vecs| {
                if rebuild_keyword {
                    let chunks = (0..rec.chunks.len()).map(|i| ChunkDoc { text: rec.chunk_text(i).to_string() }).collect();
                    ops.push(KeywordOp::Put { id: id.clone(), doc: rec.doc, chunks });
                }
                if let Some(v) = vecs {
                    inner.vectors.put(rec.doc, &v);
                }
                docs.put(rec.doc, &id, rec.metadata, rec.chunks.len() as u32);
                Ok(())
            })?;
            drop(docs);
            if rebuild_keyword {
                kw.apply_blocking(seq, ops)?;
            }
            Ok(())
        })?;
        Ok(kw)
    }
}

/// The documents with these ids, in order, with their vectors when `vectors` is true.
pub(super) fn get(txn: &ReadTransaction, ids: Vec<String>, vectors: bool) -> Result<Vec<Option<StoredDoc>>, SearchError> {
    ids.into_iter()
        .map(|id| {
            let Some(record) = tables::get_doc(txn, &id)? else { return Ok(None) };
            let vectors = if vectors { tables::get_vectors(txn, &id, record.chunks.len())? } else { None };
            Ok(Some(StoredDoc { id, record, vectors }))
        })
        .collect()
}
