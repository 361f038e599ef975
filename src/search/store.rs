//! The search module's redb tables: documents (the source of truth), their chunk vectors
//! and a metadata table with the document-number and operation-sequence counters.

use super::error::SearchError;
use crate::store::{StoreError, codec, open_read};
use redb::{ReadTransaction, ReadableTable, TableDefinition, WriteTransaction};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// id -> [`DocRecord`].
pub const DOCS: TableDefinition<&str, &[u8]> = TableDefinition::new("search_docs");
/// id -> the document's chunk vectors, f32 little-endian, concatenated in chunk order.
pub const VECTORS: TableDefinition<&str, &[u8]> = TableDefinition::new("search_vectors");
/// Counters: `seq` (operations applied) and `next_doc` (next document number).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("search_meta");

/// A stored document.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DocRecord {
    /// Internal document number (stable for the life of the id; used by filters).
    pub doc: u32,
    /// The full content.
    pub content: String,
    /// Metadata object.
    #[serde(with = "crate::store::codec::json_map")]
    pub metadata: Map<String, Value>,
    /// Byte ranges of the chunks in `content`.
    pub chunks: Vec<(u32, u32)>,
    /// Content hash of each chunk (the embedding-cache key, with the model id).
    pub hashes: Vec<[u8; 16]>,
    /// Model id the vectors were computed with; empty when the document has no vectors.
    pub model: String,
    /// When it was indexed (unix ms).
    pub indexed_at: i64,
}

impl DocRecord {
    /// The text of chunk `i`.
    pub fn chunk_text(&self, i: usize) -> &str {
        self.chunks.get(i).map(|&(s, e)| self.content.get(s as usize..e as usize).unwrap_or("")).unwrap_or("")
    }
}

/// A document ready to write: record (its `doc` is assigned on write) and vectors.
#[derive(Debug, Clone)]
pub struct PendingDoc {
    /// External id.
    pub id: String,
    /// The record.
    pub record: DocRecord,
    /// One vector per chunk, or none.
    pub vectors: Option<Vec<Vec<f32>>>,
}

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
    if bytes.len() % (4 * n) != 0 {
        return Err(StoreError::Corrupt("vector blob length does not match the chunk count".into()));
    }
    let dim = bytes.len() / 4 / n;
    Ok(bytes.chunks_exact(dim * 4).map(|c| c.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()).collect())
}

fn meta(txn: &WriteTransaction, key: &str) -> Result<u64, StoreError> {
    Ok(txn.open_table(META)?.get(key)?.map(|v| v.value()).unwrap_or(0))
}

/// Writes `docs` (replacing same ids, keeping their document numbers) in one
/// transaction; returns the new sequence number and each document's number.
/// Validates and reads first, so an error writes nothing.
pub fn write_docs(txn: &WriteTransaction, docs: Vec<PendingDoc>) -> Result<(u64, Vec<u32>), SearchError> {
    let mut existing = Vec::with_capacity(docs.len());
    {
        let t = txn.open_table(DOCS).map_err(StoreError::from)?;
        for d in &docs {
            let old = match t.get(d.id.as_str()).map_err(StoreError::from)? {
                Some(v) => Some(codec::decode::<DocRecord>(v.value())?.doc),
                None => None,
            };
            existing.push(old);
        }
    }
    let mut encoded = Vec::with_capacity(docs.len());
    let mut next = meta(txn, "next_doc")?;
    let mut nums = Vec::with_capacity(docs.len());
    let mut seen = std::collections::HashMap::new();
    for (d, old) in docs.iter().zip(existing) {
        let num = match old.or_else(|| seen.get(&d.id).copied()) {
            Some(n) => n,
            None => {
                let n = u32::try_from(next).map_err(|_| SearchError::Index("document numbers exhausted".into()))?;
                next += 1;
                n
            }
        };
        seen.insert(d.id.clone(), num);
        let mut rec = d.record.clone();
        rec.doc = num;
        encoded.push((codec::encode(&rec)?, d.vectors.as_ref().map(|v| encode_vectors(v))));
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

/// Deletes `id`; returns the new sequence number and its document number, or `None`
/// (writing nothing) when it does not exist.
pub fn delete_doc(txn: &WriteTransaction, id: &str) -> Result<Option<(u64, u32)>, SearchError> {
    let num = {
        let t = txn.open_table(DOCS).map_err(StoreError::from)?;
        match t.get(id).map_err(StoreError::from)? {
            Some(v) => codec::decode::<DocRecord>(v.value())?.doc,
            None => return Ok(None),
        }
    };
    let seq = meta(txn, "seq")? + 1;
    txn.open_table(DOCS).map_err(StoreError::from)?.remove(id).map_err(StoreError::from)?;
    txn.open_table(VECTORS).map_err(StoreError::from)?.remove(id).map_err(StoreError::from)?;
    txn.open_table(META).map_err(StoreError::from)?.insert("seq", seq).map_err(StoreError::from)?;
    Ok(Some((seq, num)))
}

/// Stores vectors computed later for an existing document (backfill), if its content
/// hashes still match.
pub fn put_vectors(txn: &WriteTransaction, id: &str, hashes: &[[u8; 16]], model: &str, vectors: &[Vec<f32>]) -> Result<bool, SearchError> {
    let rec = {
        let t = txn.open_table(DOCS).map_err(StoreError::from)?;
        match t.get(id).map_err(StoreError::from)? {
            Some(v) => codec::decode::<DocRecord>(v.value())?,
            None => return Ok(false),
        }
    };
    if rec.hashes != hashes {
        return Ok(false);
    }
    let mut rec = rec;
    rec.model = model.to_string();
    let bytes = codec::encode(&rec)?;
    txn.open_table(DOCS).map_err(StoreError::from)?.insert(id, bytes.as_slice()).map_err(StoreError::from)?;
    txn.open_table(VECTORS).map_err(StoreError::from)?.insert(id, encode_vectors(vectors).as_slice()).map_err(StoreError::from)?;
    Ok(true)
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
