//! The search module's redb tables: documents (the source of truth), their chunk vectors
//! and a metadata table with the document-number and operation-sequence counters.

use crate::search::backend::{DocNum, DocRecord, StoredDoc};
use crate::search::error::SearchError;
use crate::store::{StoreError, codec, open_read};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};

/// id -> [`DocRecord`].
pub const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("search_docs");
/// id -> the document's chunk vectors, f32 little-endian, concatenated in chunk order.
pub const VECTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("search_vectors");
/// Counters: `seq` (operations applied) and `next_doc` (next document number).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("search_meta");

/// Encodes vectors as little-endian f32s.
pub fn encode_vectors(vs: &[Vec<f32>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(vs.iter().map(|v| v.len() * 4).sum());
    for v in vs {
        for x in v {
            out.extend_from_slice(&x.to_le_bytes());
        }
    }
    out
}

/// Decodes `n` vectors from [`encode_vectors`] output.
pub fn decode_vectors(bytes: &[u8], n: usize) -> Result<Vec<Vec<f32>>, StoreError> {
    if n == 0 {
        return Ok(Vec::new());
    }
    // An empty blob would mean vectors of no dimension: corrupt, like a length mismatch.
    if bytes.is_empty() || !bytes.len().is_multiple_of(4 * n) {
        return Err(StoreError::Corrupt("vector blob length does not match the chunk count".into()));
    }
    let dim = bytes.len() / 4 / n;
    Ok(bytes.chunks_exact(dim * 4).map(|c| c.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()).collect())
}

fn meta(txn: &WriteTransaction, key: &str) -> Result<u64, StoreError> {
    Ok(txn.open_table(META)?.get(key)?.map(|v| v.value()).unwrap_or(0))
}

/// Writes `docs` (replacing same ids, keeping their document numbers) in one
/// transaction, setting each record's `doc` to its number; returns the new sequence
/// number and the numbers. Validates and reads first, so an error writes nothing.
pub fn write_docs(txn: &WriteTransaction, docs: &mut [StoredDoc]) -> Result<(u64, Vec<DocNum>), SearchError> {
    let mut existing = Vec::with_capacity(docs.len());
    {
        let t = txn.open_table(DOCS).map_err(StoreError::from)?;
        for d in docs.iter() {
            existing.push(stored_num(&t, &d.id)?);
        }
    }
    let mut encoded = Vec::with_capacity(docs.len());
    let mut next = meta(txn, "next_doc")?;
    let mut nums = Vec::with_capacity(docs.len());
    let mut seen = std::collections::HashMap::new();
    for (d, old) in docs.iter_mut().zip(existing) {
        let num = match old.or_else(|| seen.get(&d.id).copied()) {
            Some(n) => n,
            None => {
                let n = DocNum::try_from(next).map_err(|_| SearchError::Index("document numbers exhausted".into()))?;
                next += 1;
                n
            }
        };
        seen.insert(d.id.clone(), num);
        d.record.doc = num;
        encoded.push((codec::encode(&d.record)?, d.vectors.as_ref().map(|v| encode_vectors(v))));
        nums.push(num);
    }
    let seq = meta(txn, "seq")? + 1;
    let mut t = txn.open_table(DOCS).map_err(StoreError::from)?;
    let mut v = txn.open_table(VECTORS).map_err(StoreError::from)?;
    for (d, (rec, vecs)) in docs.iter().zip(encoded) {
        t.insert(d.id.as_str(), rec.as_slice()).map_err(StoreError::from)?;
        match vecs {
            Some(b) => {
                v.insert(d.id.as_str(), b.as_slice()).map_err(StoreError::from)?;
            }
            None => {
                v.remove(d.id.as_str()).map_err(StoreError::from)?;
            }
        }
    }
    let mut m = txn.open_table(META).map_err(StoreError::from)?;
    m.insert("next_doc", next).map_err(StoreError::from)?;
    m.insert("seq", seq).map_err(StoreError::from)?;
    Ok((seq, nums))
}

/// The number of the stored document `id`, if any.
fn stored_num(t: &impl ReadableTable<&'static str, &'static [u8]>, id: &str) -> Result<Option<DocNum>, SearchError> {
    match t.get(id).map_err(StoreError::from)? {
        Some(v) => Ok(Some(codec::decode::<DocRecord>(v.value())?.doc)),
        None => Ok(None),
    }
}

/// A delete's new sequence number, with each deleted document's id and number.
pub type Deleted = (u64, Vec<(String, DocNum)>);

/// Deletes those of `ids` that exist, under one new sequence number, or returns `None`
/// (writing nothing) when none exists.
pub fn delete_docs(txn: &WriteTransaction, ids: &[String]) -> Result<Option<Deleted>, SearchError> {
    let mut found = Vec::new();
    {
        let t = txn.open_table(DOCS).map_err(StoreError::from)?;
        for id in ids {
            if let Some(num) = stored_num(&t, id)?
                && !found.iter().any(|(f, _)| f == id)
            {
                found.push((id.clone(), num));
            }
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    let seq = meta(txn, "seq")? + 1;
    let mut t = txn.open_table(DOCS).map_err(StoreError::from)?;
    let mut v = txn.open_table(VECTORS).map_err(StoreError::from)?;
    for (id, _) in &found {
        t.remove(id.as_str()).map_err(StoreError::from)?;
        v.remove(id.as_str()).map_err(StoreError::from)?;
    }
    txn.open_table(META).map_err(StoreError::from)?.insert("seq", seq).map_err(StoreError::from)?;
    Ok(Some((seq, found)))
}

/// Stores vectors computed later for an existing document (backfill), if its content
/// hashes still match; returns its number when they were stored.
pub fn put_vectors(
    txn: &WriteTransaction,
    id: &str,
    hashes: &[[u8; 16]],
    model: &str,
    vectors: &[Vec<f32>],
) -> Result<Option<DocNum>, SearchError> {
    let rec = {
        let t = txn.open_table(DOCS).map_err(StoreError::from)?;
        match t.get(id).map_err(StoreError::from)? {
            Some(v) => codec::decode::<DocRecord>(v.value())?,
            None => return Ok(None),
        }
    };
    if rec.hashes != hashes || vectors.len() != rec.chunks.len() {
        return Ok(None);
    }
    let mut rec = rec;
    rec.model = model.to_string();
    let bytes = codec::encode(&rec)?;
    txn.open_table(DOCS).map_err(StoreError::from)?.insert(id, bytes.as_slice()).map_err(StoreError::from)?;
    txn.open_table(VECTORS).map_err(StoreError::from)?.insert(id, encode_vectors(vectors).as_slice()).map_err(StoreError::from)?;
    Ok(Some(rec.doc))
}

/// Reads one document.
pub fn get_doc(txn: &ReadTransaction, id: &str) -> Result<Option<DocRecord>, SearchError> {
    let Some(t) = open_read(txn, DOCS)? else { return Ok(None) };
    match t.get(id).map_err(StoreError::from)? {
        Some(v) => Ok(Some(codec::decode(v.value())?)),
        None => Ok(None),
    }
}

/// Reads one document's vectors.
pub fn get_vectors(txn: &ReadTransaction, id: &str, chunks: usize) -> Result<Option<Vec<Vec<f32>>>, SearchError> {
    let Some(t) = open_read(txn, VECTORS)? else { return Ok(None) };
    match t.get(id).map_err(StoreError::from)? {
        Some(v) => Ok(Some(decode_vectors(v.value(), chunks)?)),
        None => Ok(None),
    }
}

/// The operation sequence number.
pub fn read_seq(txn: &ReadTransaction) -> Result<u64, SearchError> {
    let Some(t) = open_read(txn, META)? else { return Ok(0) };
    Ok(t.get("seq").map_err(StoreError::from)?.map(|v| v.value()).unwrap_or(0))
}

/// Up to `limit` documents with ids after `after` (all, from the first, when `None`) that
/// `keep` accepts, in id order, without their vectors.
pub fn docs_after(
    txn: &ReadTransaction,
    after: Option<&str>,
    limit: usize,
    keep: impl Fn(&DocRecord) -> bool,
) -> Result<Vec<StoredDoc>, SearchError> {
    use std::ops::Bound;
    let Some(t) = open_read(txn, DOCS)? else { return Ok(Vec::new()) };
    let range = t.range::<&str>((after.map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded)).map_err(StoreError::from)?;
    let mut out = Vec::new();
    for row in range {
        if out.len() >= limit {
            break;
        }
        let (k, v) = row.map_err(StoreError::from)?;
        let record: DocRecord = codec::decode(v.value())?;
        if keep(&record) {
            out.push(StoredDoc { id: k.value().to_string(), record, vectors: None });
        }
    }
    Ok(out)
}

/// Visits every document with its vectors (if any), in id order.
pub fn for_each_doc(
    txn: &ReadTransaction,
    mut f: impl FnMut(String, DocRecord, Option<Vec<Vec<f32>>>) -> Result<(), SearchError>,
) -> Result<(), SearchError> {
    let Some(t) = open_read(txn, DOCS)? else { return Ok(()) };
    let vt = open_read(txn, VECTORS)?;
    for row in t.iter().map_err(StoreError::from)? {
        let (k, v) = row.map_err(StoreError::from)?;
        let rec: DocRecord = codec::decode(v.value())?;
        let id = k.value().to_string();
        let vecs = match &vt {
            Some(vt) => match vt.get(id.as_str()).map_err(StoreError::from)? {
                Some(b) => Some(decode_vectors(b.value(), rec.chunks.len())?),
                None => None,
            },
            None => None,
        };
        f(id, rec, vecs)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip() {
        let vs = vec![vec![0.5, -1.0, 3.25], vec![0.0, 2.0, -0.125]];
        assert_eq!(decode_vectors(&encode_vectors(&vs), 2).unwrap(), vs);
        assert!(decode_vectors(b"anything", 0).unwrap().is_empty());
    }

    /// Found by the `codec` fuzz target: an empty blob for a document with chunks made the
    /// decoder panic (`chunks_exact(0)`) instead of reporting corruption, so one bad row
    /// stopped the search store from opening.
    #[test]
    fn a_blob_that_does_not_fit_the_chunk_count_is_corruption_not_a_panic() {
        assert!(matches!(decode_vectors(&[], 3), Err(StoreError::Corrupt(_))));
        assert!(matches!(decode_vectors(&[0; 12], 2), Err(StoreError::Corrupt(_))));
    }
}
