//! Writing the embedded store. Each write holds the write lock from its redb transaction
//! until its keyword-index job is queued, so the derived state changes in redb's order;
//! the keyword commit is awaited after the lock is released (it group-commits).

use super::docs::Docs;
use super::keyword::{ChunkDoc, KeywordIndex, KeywordOp};
use super::{EmbeddedStore, tables};
use crate::search::backend::{DocNum, StoredDoc, VectorUpdate};
use crate::search::error::SearchError;

impl EmbeddedStore {
    /// Writes `docs` to redb, then to the document map, the vectors and the keyword index.
    pub(super) async fn upsert_now(&self, kw: KeywordIndex, docs: Vec<StoredDoc>) -> Result<Vec<DocNum>, SearchError> {
        let inner = &self.0;
        let order = inner.write_order.lock().await;
        // The batch moves into the write and back out, instead of being copied.
        let (seq, nums, mut docs) = inner
            .store
            .write(move |txn| {
                let mut docs = docs;
                let (seq, nums) = tables::write_docs(txn, &mut docs)?;
                Ok::<_, SearchError>((seq, nums, docs))
            })
            .await?;
        let mut ops = Vec::with_capacity(docs.len());
        {
            let mut mem = inner.docs.write();
            for (d, &num) in docs.iter_mut().zip(&nums) {
                mem.put(num, &d.id, std::mem::take(&mut d.record.metadata), d.record.chunks.len() as u32);
                let chunks = (0..d.record.chunks.len()).map(|i| ChunkDoc { text: d.record.chunk_text(i).to_string() }).collect();
                ops.push(KeywordOp::Put { id: d.id.clone(), doc: num, chunks });
            }
        }
        let me = self.clone();
        let vec_nums = nums.clone();
        tokio::task::spawn_blocking(move || {
            for (d, num) in docs.iter().zip(vec_nums) {
                match &d.vectors {
                    Some(v) => me.0.vectors.put(num, v),
                    None => me.0.vectors.remove(num),
                }
            }
        })
        .await
        .map_err(|e| SearchError::Index(e.to_string()))?;
        let applied = kw.apply(seq, ops);
        drop(order);
        applied.await?;
        Ok(nums)
    }

    /// Stores backfilled vectors whose document is unchanged; an update that cannot be
    /// applied is skipped (its document keeps working for keyword search).
    pub(super) async fn put_vectors_now(&self, updates: Vec<VectorUpdate>) -> Result<Vec<bool>, SearchError> {
        let _order = self.0.write_order.lock().await;
        let (nums, updates) = self
            .0
            .store
            .write(move |txn| {
                let nums: Vec<Option<DocNum>> =
                    updates.iter().map(|u| tables::put_vectors(txn, &u.id, &u.hashes, &u.model, &u.vectors).unwrap_or(None)).collect();
                Ok::<_, SearchError>((nums, updates))
            })
            .await?;
        let me = self.clone();
        tokio::task::spawn_blocking(move || {
            for (u, num) in updates.iter().zip(&nums) {
                if let Some(num) = num {
                    me.0.vectors.put(*num, &u.vectors);
                }
            }
            nums.iter().map(Option::is_some).collect()
        })
        .await
        .map_err(|e| SearchError::Index(e.to_string()))
    }

    /// Deletes the documents `pick` names (it sees the document map under the write lock,
    /// so a delete by filter cannot race an upsert); returns the ids that existed.
    pub(super) async fn delete_now(&self, kw: KeywordIndex, pick: impl FnOnce(&Docs) -> Vec<String>) -> Result<Vec<String>, SearchError> {
        let inner = &self.0;
        let order = inner.write_order.lock().await;
        let ids = pick(&inner.docs.read());
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let Some((seq, removed)) = inner.store.write(move |txn| tables::delete_docs(txn, &ids)).await? else {
            return Ok(Vec::new());
        };
        {
            let mut mem = inner.docs.write();
            for (id, _) in &removed {
                mem.remove(id);
            }
        }
        // Not under the map's lock: a vector search holds the vectors' lock while its
        // filter may read the map.
        removed.iter().for_each(|(_, num)| inner.vectors.remove(*num));
        let applied = kw.apply(seq, removed.iter().map(|(id, _)| KeywordOp::Delete { id: id.clone() }).collect());
        drop(order);
        applied.await?;
        Ok(removed.into_iter().map(|(id, _)| id).collect())
    }
}
