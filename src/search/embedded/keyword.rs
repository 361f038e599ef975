//! The BM25 keyword index: one tantivy document per chunk, in `<data_dir>/search/tantivy`.
//!
//! Invariants:
//! - redb is the source of truth; this index is derived. Each commit records, as its
//!   payload, the highest operation sequence number below which every operation has been
//!   applied; at start, a payload different from the store's sequence means the index
//!   is stale and the service rebuilds it.
//! - One writer thread owns the `IndexWriter` and group-commits: it drains every queued
//!   operation, commits once, reloads the reader, and only then answers each caller, so
//!   an acknowledged operation is visible to the next search.
//! - A document's chunks are deleted by its id term before its new chunks are added.

use crate::search::error::SearchError;
use std::collections::BTreeSet;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc;
use tantivy::collector::{FilterCollector, TopDocs};
use tantivy::query::{BooleanQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::tokenizer::TextAnalyzer;
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use tokio::sync::oneshot;

/// A chunk to index.
#[derive(Debug, Clone)]
pub struct ChunkDoc {
    /// The chunk's text.
    pub text: String,
}

/// One change to apply.
#[derive(Debug)]
pub enum KeywordOp {
    /// Replace the chunks of a document.
    Put {
        /// External id (delete term).
        id: String,
        /// Document number (fast field used by filters).
        doc: u32,
        /// The chunks, in order.
        chunks: Vec<ChunkDoc>,
    },
    /// Remove a document.
    Delete {
        /// External id.
        id: String,
    },
    /// Remove everything (before a rebuild) and restart the sequence watermark at `watermark`.
    Clear {
        /// The store's sequence number the rebuilt index will reflect.
        watermark: u64,
    },
}

struct Job {
    seq: u64,
    ops: Vec<KeywordOp>,
    reply: Option<oneshot::Sender<Result<(), SearchError>>>,
}

/// One chunk found by a keyword search.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeywordHit {
    /// Document number.
    pub doc: u32,
    /// Chunk index within the document.
    pub chunk: u32,
    /// BM25 score.
    pub score: f32,
}

#[derive(Clone, Copy)]
struct Fields {
    id: Field,
    doc: Field,
    chunk: Field,
    text: Field,
}

/// Handle on the keyword index; cheap to clone.
#[derive(Clone)]
pub struct KeywordIndex {
    reader: IndexReader,
    fields: Fields,
    tx: mpsc::Sender<Job>,
    analyzer: TextAnalyzer,
    /// The sequence number recorded by the last commit when the index was opened.
    pub opened_seq: u64,
}

const TOKENIZER: &str = "en_stem";

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let id = b.add_text_field("id", STRING | STORED);
    let doc = b.add_u64_field("doc", FAST | STORED);
    let chunk = b.add_u64_field("chunk", FAST | STORED);
    let text_opts = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default().set_tokenizer(TOKENIZER).set_index_option(IndexRecordOption::WithFreqsAndPositions),
    );
    let text = b.add_text_field("text", text_opts);
    (b.build(), Fields { id, doc, chunk, text })
}

impl KeywordIndex {
    /// Opens (or creates) the index in `dir`; an unreadable index is discarded and
    /// recreated empty (it is rebuilt from the store). Starts the writer thread.
    pub fn open(dir: &Path) -> Result<KeywordIndex, SearchError> {
        std::fs::create_dir_all(dir).map_err(|e| SearchError::Index(format!("cannot create {}: {e}", dir.display())))?;
        let (schema, fields) = schema();
        let index = match Index::open_in_dir(dir) {
            Ok(ix) if ix.schema() == schema => ix,
            Ok(_) | Err(_) => {
                if dir.join("meta.json").exists() {
                    tracing::warn!(dir = %dir.display(), "keyword index unreadable or of another schema; recreating it");
                }
                let _ = std::fs::remove_dir_all(dir);
                std::fs::create_dir_all(dir).map_err(|e| SearchError::Index(e.to_string()))?;
                Index::create_in_dir(dir, schema)?
            }
        };
        let opened_seq = index.load_metas()?.payload.and_then(|p| p.parse().ok()).unwrap_or(0);
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        // A previous owner in this process (a restarted service) may still be releasing the lock.
        let mut tries = 0;
        let writer: IndexWriter = loop {
            match index.writer_with_num_threads(1, 32 * 1024 * 1024) {
                Ok(w) => break w,
                Err(tantivy::TantivyError::LockFailure(..)) if tries < 40 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(50));
                }
                Err(e) => return Err(e.into()),
            }
        };
        let analyzer = index.tokenizer_for_field(fields.text)?;
        let (tx, rx) = mpsc::channel::<Job>();
        let thread_reader: IndexReader = Clone::clone(&reader);
        std::thread::Builder::new()
            .name("search-keyword-writer".into())
            .spawn(move || writer_loop(writer, thread_reader, fields, rx, opened_seq))
            .map_err(|e| SearchError::Index(format!("cannot start the index writer: {e}")))?;
        Ok(KeywordIndex { reader, fields, tx, analyzer, opened_seq })
    }

    /// Applies `ops` (tagged with the store's sequence number `seq`, 0 for none) and
    /// resolves once they are committed and visible to searches.
    pub async fn apply(&self, seq: u64, ops: Vec<KeywordOp>) -> Result<(), SearchError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { seq, ops, reply: Some(reply) }).map_err(|_| SearchError::Index("index writer stopped".into()))?;
        rx.await.unwrap_or_else(|_| Err(SearchError::Index("index writer stopped".into())))
    }

    /// As [`KeywordIndex::apply`], from a blocking thread.
    pub fn apply_blocking(&self, seq: u64, ops: Vec<KeywordOp>) -> Result<(), SearchError> {
        let (reply, rx) = oneshot::channel();
        self.tx.send(Job { seq, ops, reply: Some(reply) }).map_err(|_| SearchError::Index("index writer stopped".into()))?;
        rx.blocking_recv().unwrap_or_else(|_| Err(SearchError::Index("index writer stopped".into())))
    }

    /// Number of indexed chunks.
    pub fn num_chunks(&self) -> u64 {
        self.reader.searcher().num_docs()
    }

    /// The `k` best chunks for `query` among documents `allow` accepts (blocking).
    pub fn search(
        &self,
        query: &str,
        k: usize,
        allow: Option<Arc<dyn Fn(u32) -> bool + Send + Sync>>,
    ) -> Result<Vec<KeywordHit>, SearchError> {
        if k == 0 {
            return Ok(Vec::new());
        }
        let searcher = self.reader.searcher();
        let q = self.query_of(query);
        let top = TopDocs::with_limit(k).order_by_score();
        let found = match allow {
            Some(f) => searcher.search(&q, &FilterCollector::new("doc".to_string(), move |d: u64| f(d as u32), top))?,
            None => searcher.search(&q, &top)?,
        };
        let mut out = Vec::with_capacity(found.len());
        for (score, addr) in found {
            let seg = searcher.segment_reader(addr.segment_ord);
            let ff = seg.fast_fields();
            let doc = ff.u64("doc")?.first(addr.doc_id).unwrap_or(0) as u32;
            let chunk = ff.u64("chunk")?.first(addr.doc_id).unwrap_or(0) as u32;
            out.push(KeywordHit { doc, chunk, score });
        }
        Ok(out)
    }

    /// A BM25 query: any of the query's analysed terms (natural language, no query syntax:
    /// `two-factor` or `Ctrl+K` are words, not operators).
    fn query_of(&self, query: &str) -> BooleanQuery {
        let mut analyzer = self.analyzer.clone();
        let mut terms: Vec<String> = Vec::new();
        analyzer.token_stream(query).process(&mut |t| {
            if !terms.contains(&t.text) {
                terms.push(t.text.clone());
            }
        });
        let clauses: Vec<(Occur, Box<dyn Query>)> = terms
            .into_iter()
            .map(|t| {
                let q: Box<dyn Query> = Box::new(TermQuery::new(Term::from_field_text(self.fields.text, &t), IndexRecordOption::WithFreqs));
                (Occur::Should, q)
            })
            .collect();
        BooleanQuery::new(clauses)
    }

    /// Byte ranges in `text` of the tokens that match a token of `query` (after the
    /// index's analysis: lower-casing and stemming), for highlighting.
    pub fn matching_ranges(&self, query: &str, text: &str) -> Vec<Range<usize>> {
        let mut analyzer = self.analyzer.clone();
        let mut terms = std::collections::HashSet::new();
        analyzer.token_stream(query).process(&mut |t| {
            terms.insert(t.text.clone());
        });
        let mut out = Vec::new();
        if terms.is_empty() {
            return out;
        }
        analyzer.token_stream(text).process(&mut |t| {
            if terms.contains(&t.text) {
                out.push(t.offset_from..t.offset_to);
            }
        });
        out
    }
}

fn writer_loop(mut writer: IndexWriter, reader: IndexReader, f: Fields, rx: mpsc::Receiver<Job>, mut watermark: u64) {
    let mut pending: BTreeSet<u64> = BTreeSet::new();
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        while let Ok(more) = rx.try_recv() {
            jobs.push(more);
        }
        let mut result: Result<(), SearchError> = Ok(());
        for job in &mut jobs {
            for op in job.ops.drain(..) {
                if let KeywordOp::Clear { watermark: w } = op {
                    watermark = w;
                    pending.clear();
                }
                if let Err(e) = apply_op(&mut writer, f, op) {
                    result = Err(e);
                }
            }
            if job.seq > 0 {
                pending.insert(job.seq);
            }
        }
        while let Some(&s) = pending.first() {
            if s > watermark + 1 {
                break;
            }
            pending.pop_first();
            watermark = watermark.max(s);
        }
        if result.is_ok() {
            let mut prepared = match writer.prepare_commit() {
                Ok(p) => p,
                Err(e) => {
                    reply_all(jobs, Err(SearchError::from(e)));
                    continue;
                }
            };
            prepared.set_payload(&watermark.to_string());
            result = prepared.commit().map(|_| ()).map_err(SearchError::from).and_then(|_| reader.reload().map_err(SearchError::from));
        } else {
            let _ = writer.rollback();
        }
        reply_all(jobs, result);
    }
}

fn reply_all(jobs: Vec<Job>, result: Result<(), SearchError>) {
    for mut job in jobs {
        if let Some(r) = job.reply.take() {
            let out = match &result {
                Ok(()) => Ok(()),
                Err(e) => Err(SearchError::Index(e.to_string())),
            };
            let _ = r.send(out);
        }
    }
}

fn apply_op(writer: &mut IndexWriter, f: Fields, op: KeywordOp) -> Result<(), SearchError> {
    match op {
        KeywordOp::Put { id, doc, chunks } => {
            writer.delete_term(Term::from_field_text(f.id, &id));
            for (i, c) in chunks.into_iter().enumerate() {
                let mut d = TantivyDocument::default();
                d.add_text(f.id, &id);
                d.add_u64(f.doc, doc as u64);
                d.add_u64(f.chunk, i as u64);
                d.add_text(f.text, &c.text);
                writer.add_document(d)?;
            }
        }
        KeywordOp::Delete { id } => {
            writer.delete_term(Term::from_field_text(f.id, &id));
        }
        KeywordOp::Clear { .. } => {
            writer.delete_all_documents()?;
        }
    }
    Ok(())
}
