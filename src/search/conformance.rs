//! The conformance suites every [`SearchStore`] and every [`Embedder`] must pass (compiled
//! for tests and with the `conformance` feature, so backend crates and hearth's own
//! adapters run the same checks).
//!
//! [`run`] needs no model: documents carry small hand-made vectors (8 dimensions). It
//! uses only the trait's public API and compares keyword scores by order and membership,
//! never by value (tantivy's BM25 and PostgreSQL's `ts_rank` differ); vector scores are
//! compared by value, since every backend computes the same dot product. Each check
//! panics with a message naming the rule that broke. The [`Harness`] hands the suite
//! stores that are already opened ([`SearchStore::open`] done).

use super::backend::{ChunkHit, DocRecord, Scope, SearchStore, StoreState, StoredDoc, VectorUpdate};
use super::embed::{Embedder, normalize};
use super::filter::Filter;
use crate::conformance::Harness;
use serde_json::{Value, json};

/// Vector length used by the suite.
const DIM: usize = 8;
/// Model id of the suite's vectors.
const MODEL: &str = "conformance-8d";
/// Asks for more hits than any check stores documents.
const ALL: usize = 100;

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<B: SearchStore>(mut h: impl Harness<B>) {
    empty_store_answers_empty(&h.fresh().await).await;
    read_after_write(&h.fresh().await).await;
    upsert_replaces_previous_chunks(&h.fresh().await).await;
    delete_by_id(&h.fresh().await).await;
    delete_by_filter(&h.fresh().await).await;
    filters_apply_inside_both_retrievers(&h.fresh().await).await;
    k_limits_and_best_first_order(&h.fresh().await).await;
    vector_ranks_the_nearest_first(&h.fresh().await).await;
    backfilled_vectors_are_compare_and_set(&h.fresh().await).await;
    everything_survives_a_reopen(&mut h).await;
}

/// The `i`-th basis vector.
fn axis(i: usize) -> Vec<f32> {
    let mut v = vec![0.0; DIM];
    v[i] = 1.0;
    v
}

/// The unit vector along `a + w * b`.
fn toward(a: usize, b: usize, w: f32) -> Vec<f32> {
    let mut v = axis(a);
    v[b] += w;
    normalize(v)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// A document whose chunks are `chunks` (joined by one space), with `vectors` (one per
/// chunk) or none.
fn doc(id: &str, chunks: &[&str], vectors: Option<Vec<Vec<f32>>>, metadata: Value) -> StoredDoc {
    let mut content = String::new();
    let mut ranges = Vec::new();
    for c in chunks {
        if !content.is_empty() {
            content.push(' ');
        }
        ranges.push((content.len() as u32, (content.len() + c.len()) as u32));
        content.push_str(c);
    }
    let hashes = chunks.iter().map(|c| hash(c)).collect();
    let model = if vectors.is_some() { MODEL.to_string() } else { String::new() };
    let metadata = metadata.as_object().cloned().unwrap_or_default();
    let record = DocRecord { doc: 0, content, metadata, chunks: ranges, hashes, model, indexed_at: 1_700_000_000_000 };
    StoredDoc { id: id.to_string(), record, vectors }
}

fn hash(text: &str) -> [u8; 16] {
    use sha2::Digest;
    sha2::Sha256::digest(text.as_bytes())[..16].try_into().expect("16 bytes")
}

fn everything() -> Scope {
    Scope::default()
}

fn scope(filter: Value) -> Scope {
    Scope::new(Filter::parse(filter.as_object().expect("a filter object")).expect("a valid filter"), None)
}

fn ids(hits: &[ChunkHit]) -> Vec<String> {
    hits.iter().map(|h| h.id.to_string()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v.dedup();
    v
}

async fn keyword<B: SearchStore>(s: &B, query: &str, scope: &Scope, k: usize) -> Vec<ChunkHit> {
    let hits = s.keyword(query, scope, k).await.unwrap_or_else(|e| panic!("keyword retrieval failed: {e}"));
    assert_best_first(&hits, "keyword");
    hits
}

async fn vector<B: SearchStore>(s: &B, query: &[f32], scope: &Scope, k: usize) -> Vec<ChunkHit> {
    let hits = s.vector(query, scope, k).await.unwrap_or_else(|e| panic!("vector retrieval failed: {e}"));
    assert_best_first(&hits, "vector");
    hits
}

async fn upsert<B: SearchStore>(s: &B, docs: Vec<StoredDoc>) -> Vec<u32> {
    let n = docs.len();
    let nums = s.upsert(docs).await.unwrap_or_else(|e| panic!("upsert failed: {e}"));
    assert_eq!(nums.len(), n, "upsert returns one number per document");
    // As the service does after every write.
    s.maintain().await;
    nums
}

async fn get_one<B: SearchStore>(s: &B, id: &str, vectors: bool) -> Option<StoredDoc> {
    let mut got = s.get(&[id.to_string()], vectors).await.unwrap_or_else(|e| panic!("get failed: {e}"));
    assert_eq!(got.len(), 1, "get returns one entry per id");
    got.pop().flatten()
}

fn counts<B: SearchStore>(s: &B) -> (usize, usize, usize) {
    let st = s.status();
    assert_eq!(st.state, StoreState::Ready, "an opened store is ready");
    (st.stats.documents, st.stats.chunks, st.stats.vectors)
}

/// Hits are best first; equal scores are ordered by document number, then chunk.
fn assert_best_first(hits: &[ChunkHit], side: &str) {
    for w in hits.windows(2) {
        let ordered = w[0].score > w[1].score || (w[0].score == w[1].score && (w[0].doc, w[0].chunk) < (w[1].doc, w[1].chunk));
        assert!(ordered, "{side} hits must be best first, ties by document number then chunk: {hits:?}");
    }
}

/// An empty store answers every read with nothing and every delete with no ids.
async fn empty_store_answers_empty<B: SearchStore>(s: &B) {
    assert!(keyword(s, "anything at all", &everything(), ALL).await.is_empty(), "empty store: keyword finds nothing");
    assert!(vector(s, &axis(0), &everything(), ALL).await.is_empty(), "empty store: vector finds nothing");
    assert_eq!(get_one(s, "nope", true).await, None, "empty store: get finds nothing");
    assert!(s.delete(&["nope".to_string()]).await.expect("delete").is_empty(), "deleting a missing id removes nothing");
    assert!(s.delete_matching(&Filter::default()).await.expect("delete_matching").is_empty(), "empty store: nothing to delete");
    assert!(s.missing_vectors(MODEL, None, ALL).await.expect("missing_vectors").is_empty(), "empty store: nothing to backfill");
    let update = VectorUpdate { id: "nope".into(), hashes: vec![hash("x")], model: MODEL.into(), vectors: vec![axis(0)] };
    assert_eq!(s.put_vectors(vec![update]).await.expect("put_vectors"), vec![false], "vectors for a missing document do not apply");
    assert_eq!(counts(s), (0, 0, 0), "empty store: counts are zero");
}

/// Upserted documents are found at once by both retrievers and by get, with their best
/// chunk; numbers are distinct; counts follow.
async fn read_after_write<B: SearchStore>(s: &B) {
    let nums = upsert(
        s,
        vec![
            doc("a", &["the quick zebra runs", "a slow tortoise walks"], Some(vec![axis(0), axis(1)]), json!({"k": 1})),
            doc("b", &["an orange giraffe eats"], Some(vec![axis(2)]), json!({"k": 2})),
            doc("c", &["keyword only: a purple zebra"], None, json!({})),
        ],
    )
    .await;
    assert!(nums[0] != nums[1] && nums[1] != nums[2] && nums[0] != nums[2], "documents get distinct numbers: {nums:?}");
    let hits = keyword(s, "tortoise", &everything(), ALL).await;
    assert_eq!((ids(&hits), hits[0].chunk, hits[0].doc), (vec!["a".to_string()], 1, nums[0]), "keyword finds the chunk just written");
    assert_eq!(sorted(ids(&keyword(s, "zebra", &everything(), ALL).await)), ["a", "c"], "keyword finds every document with the word");
    let hits = vector(s, &axis(2), &everything(), ALL).await;
    assert_eq!((hits[0].id.as_ref(), hits[0].chunk, hits[0].doc), ("b", 0, nums[1]), "vector finds the chunk just written");
    assert!((hits[0].score - 1.0).abs() < 1e-4, "vector score is the dot product: {}", hits[0].score);
    assert!(!ids(&hits).contains(&"c".to_string()), "a document without vectors is never a vector hit");
    assert_eq!(vector(s, &axis(1), &everything(), 1).await[0].chunk, 1, "vector hits name the chunk");
    let got = get_one(s, "a", true).await.expect("get finds the document just written");
    let want = doc("a", &["the quick zebra runs", "a slow tortoise walks"], Some(vec![axis(0), axis(1)]), json!({"k": 1}));
    assert_eq!((got.record.doc, &got.record.content, &got.record.metadata), (nums[0], &want.record.content, &want.record.metadata));
    assert_eq!((&got.record.chunks, &got.record.hashes, &got.vectors), (&want.record.chunks, &want.record.hashes, &want.vectors));
    assert_eq!(get_one(s, "c", true).await.expect("c").vectors, None, "a document stored without vectors has none");
    assert_eq!(get_one(s, "a", false).await.expect("a").vectors, None, "get without vectors leaves them out");
    let many = s.get(&["b".to_string(), "zz".to_string(), "a".to_string()], false).await.expect("get");
    assert_eq!(many.iter().map(|d| d.as_ref().map(|d| d.id.as_str())).collect::<Vec<_>>(), [Some("b"), None, Some("a")], "get keeps order");
    assert_eq!(counts(s), (3, 4, 3), "counts: documents, chunks, vectors");
}

/// An upsert replaces the document's chunks, vectors and metadata and keeps its number.
async fn upsert_replaces_previous_chunks<B: SearchStore>(s: &B) {
    let first = upsert(s, vec![doc("x", &["papaya smoothie", "quince jam"], Some(vec![axis(4), axis(5)]), json!({"v": 1}))]).await;
    upsert(s, vec![doc("other", &["walnut cake"], Some(vec![axis(7)]), json!({}))]).await;
    let again = upsert(s, vec![doc("x", &["walnut bread"], Some(vec![axis(6)]), json!({"v": 2}))]).await;
    assert_eq!(first, again, "a re-upserted document keeps its number");
    for old in ["papaya", "quince"] {
        assert!(keyword(s, old, &everything(), ALL).await.is_empty(), "old chunk text '{old}' must no longer match");
    }
    let hits = keyword(s, "walnut", &everything(), ALL).await;
    assert_eq!(sorted(ids(&hits)), ["other", "x"], "the new text matches");
    for h in vector(s, &axis(5), &everything(), ALL).await.iter().filter(|h| h.id.as_ref() == "x") {
        assert_eq!(h.chunk, 0, "an old chunk's vector must be gone");
        assert!(h.score.abs() < 1e-4, "x now scores by its new vector only: {}", h.score);
    }
    assert_eq!(keyword(s, "bread", &scope(json!({"v": 1})), ALL).await, vec![], "old metadata must no longer match");
    assert_eq!(ids(&keyword(s, "bread", &scope(json!({"v": 2})), ALL).await), ["x"], "new metadata matches");
    assert_eq!(counts(s), (2, 2, 2), "counts follow the replacement");
    upsert(s, vec![doc("x", &["walnut bread"], None, json!({"v": 3}))]).await;
    assert!(!ids(&vector(s, &axis(6), &everything(), ALL).await).contains(&"x".to_string()), "an upsert without vectors drops them");
    assert_eq!(counts(s), (2, 2, 1), "counts after dropping vectors");
}

/// Deleting by id removes the document from both retrievers and get, and only it.
async fn delete_by_id<B: SearchStore>(s: &B) {
    let shared = |id: &str, a: usize| doc(id, &[&format!("lantern {id}")], Some(vec![axis(a)]), json!({}));
    let nums = upsert(s, vec![shared("a", 0), shared("b", 1), shared("c", 2)]).await;
    let removed = s.delete(&["a".to_string(), "missing".to_string()]).await.expect("delete");
    assert_eq!(removed, ["a"], "delete returns the ids that existed");
    assert_eq!(sorted(ids(&keyword(s, "lantern", &everything(), ALL).await)), ["b", "c"], "a deleted document is no keyword hit");
    assert_eq!(sorted(ids(&vector(s, &axis(0), &everything(), ALL).await)), ["b", "c"], "a deleted document is no vector hit");
    assert_eq!(get_one(s, "a", true).await, None, "get does not find a deleted document");
    assert!(s.delete(&["a".to_string()]).await.expect("delete").is_empty(), "deleting twice removes nothing the second time");
    assert_eq!(counts(s), (2, 2, 2), "counts after a delete");
    let renum = upsert(s, vec![shared("a", 0)]).await;
    assert!(!nums.contains(&renum[0]), "a number is never given to another document (got {renum:?}, had {nums:?})");
}

/// Deleting by filter removes exactly the documents whose metadata match.
async fn delete_by_filter<B: SearchStore>(s: &B) {
    upsert(s, filter_corpus()).await;
    let removed = sorted(s.delete_matching(&Filter::parse(json!({"author": "ann"}).as_object().unwrap()).unwrap()).await.expect("delete"));
    assert_eq!(removed, ["d1", "d4"], "delete by filter removes exactly the matching documents");
    assert_eq!(sorted(ids(&keyword(s, "shared", &everything(), ALL).await)), ["d2", "d3", "d5"], "the others stay (keyword)");
    assert_eq!(sorted(ids(&vector(s, &axis(0), &everything(), ALL).await)), ["d2", "d3", "d5"], "the others stay (vector)");
    assert_eq!(get_one(s, "d4", false).await, None, "get does not find a document deleted by filter");
    assert_eq!(counts(s).0, 3, "counts after a delete by filter");
}

/// Five documents that every filter case below is evaluated against; all contain the
/// word "shared" and have a vector near axis 0.
fn filter_corpus() -> Vec<StoredDoc> {
    let metas = [
        json!({"author": "ann", "year": 2020, "tags": ["red", "blue"], "date": "2024-01-10", "nested": {"level": 1}, "flag": true}),
        json!({"author": "bob", "year": 2021, "tags": ["green"], "date": "2024-03-05", "nested": {"level": 2}, "flag": false}),
        json!({"author": "cy", "year": 2022.0, "tags": [], "date": "2024-06-30T12:00:00Z", "nested": {"level": 3}}),
        json!({"author": "ann", "year": "2023", "score": null}),
        json!({}),
    ];
    metas
        .into_iter()
        .enumerate()
        .map(|(i, m)| doc(&format!("d{}", i + 1), &[&format!("shared text number {i}")], Some(vec![toward(0, 1 + i, 0.1)]), m))
        .collect()
}

/// Every operator `filter.rs` supports, applied inside keyword and vector retrieval with
/// the same results (and the semantics of [`Filter::matches`]).
async fn filters_apply_inside_both_retrievers<B: SearchStore>(s: &B) {
    let corpus = filter_corpus();
    upsert(s, corpus.clone()).await;
    let cases: &[(Value, &[&str])] = &[
        (json!({}), &["d1", "d2", "d3", "d4", "d5"]),
        (json!({"author": "ann"}), &["d1", "d4"]),
        (json!({"author": "zed"}), &[]),
        (json!({"tags": "blue"}), &["d1"]),
        (json!({"author": ["bob", "cy"]}), &["d2", "d3"]),
        (json!({"tags": {"in": ["green", "red"]}}), &["d1", "d2"]),
        (json!({"author": {"ne": "ann"}}), &["d2", "d3", "d5"]),
        (json!({"tags": {"ne": "red"}}), &["d2", "d3", "d4", "d5"]),
        (json!({"year": {"eq": 2021}}), &["d2"]),
        (json!({"year": 2022}), &["d3"]),
        (json!({"year": {"gte": 2021}}), &["d2", "d3"]),
        (json!({"year": {"gt": 2020, "lt": 2022}}), &["d2"]),
        (json!({"year": {"lte": 2020}}), &["d1"]),
        (json!({"date": {"gte": "2024-03-01", "lte": "2024-06-30"}}), &["d2"]),
        (json!({"date": {"lt": "2024-03-05"}}), &["d1"]),
        (json!({"date": {"gt": "2024-06-30T00:00:00Z"}}), &["d3"]),
        (json!({"nested.level": {"gte": 2}}), &["d2", "d3"]),
        (json!({"flag": false}), &["d2"]),
        (json!({"flag": null}), &["d3", "d4", "d5"]),
        (json!({"score": null}), &["d1", "d2", "d3", "d4", "d5"]),
        (json!({"author": "ann", "year": 2020}), &["d1"]),
        (json!({"year": {"gte": 2020}, "tags": "green"}), &["d2"]),
    ];
    for (filter, want) in cases {
        let f = Filter::parse(filter.as_object().unwrap()).unwrap();
        let oracle: Vec<&str> = corpus.iter().filter(|d| f.matches(&d.record.metadata)).map(|d| d.id.as_str()).collect();
        assert_eq!(oracle, want.to_vec(), "the suite's expectation for {filter} must follow filter.rs");
        let sc = scope(filter.clone());
        assert_eq!(sorted(ids(&keyword(s, "shared", &sc, ALL).await)), *want, "keyword retrieval with filter {filter}");
        assert_eq!(sorted(ids(&vector(s, &axis(0), &sc, ALL).await)), *want, "vector retrieval with filter {filter}");
    }
    // Filtered inside retrieval, not after: the best hit is outside the filter, yet k = 1
    // still yields the one matching document.
    let only = scope(json!({"author": "cy"}));
    let near_d2 = toward(0, 2, 0.1);
    assert_eq!(ids(&vector(s, &near_d2, &everything(), 1).await), ["d2"], "d2 is the nearest unfiltered");
    assert_eq!(ids(&vector(s, &near_d2, &only, 1).await), ["d3"], "vector: k hits among the documents in scope");
    assert_eq!(ids(&keyword(s, "shared", &only, 1).await), ["d3"], "keyword: k hits among the documents in scope");
    let except = Scope::new(Filter::default(), Some("d2".into()));
    assert!(!ids(&vector(s, &near_d2, &except, ALL).await).contains(&"d2".to_string()), "a scope's excepted document is left out");
    assert!(!ids(&keyword(s, "shared", &except, ALL).await).contains(&"d2".to_string()), "keyword leaves the excepted out too");
    assert_eq!(vector(s, &near_d2, &except, ALL).await.len(), 4, "only the excepted document is left out");
}

/// `k` limits the hits; better matches come first; equal scores come by number.
async fn k_limits_and_best_first_order<B: SearchStore>(s: &B) {
    let nums = upsert(
        s,
        vec![
            doc("once", &["kiwi lemon mango grape"], Some(vec![axis(3)]), json!({})),
            doc("thrice", &["kiwi kiwi kiwi lemon"], Some(vec![axis(3)]), json!({})),
            doc("twin-a", &["plum cherry pear fig"], Some(vec![axis(4)]), json!({})),
            doc("twin-b", &["plum cherry pear fig"], Some(vec![axis(4)]), json!({})),
            doc("none", &["nothing to see here"], Some(vec![axis(5)]), json!({})),
        ],
    )
    .await;
    assert_eq!(ids(&keyword(s, "kiwi", &everything(), ALL).await), ["thrice", "once"], "more occurrences rank first");
    assert_eq!(keyword(s, "kiwi plum lemon", &everything(), 2).await.len(), 2, "keyword returns at most k hits");
    assert_eq!(vector(s, &axis(3), &everything(), 3).await.len(), 3, "vector returns at most k hits");
    assert!(keyword(s, "kiwi", &everything(), 0).await.is_empty() && vector(s, &axis(3), &everything(), 0).await.is_empty(), "k = 0");
    let by_number = if nums[2] < nums[3] { ["twin-a", "twin-b"] } else { ["twin-b", "twin-a"] };
    let twins = keyword(s, "plum", &everything(), ALL).await;
    assert_eq!((ids(&twins), twins[0].score), (by_number.map(String::from).to_vec(), twins[1].score), "keyword ties by number");
    assert_eq!(ids(&vector(s, &axis(4), &everything(), 2).await), by_number, "vector ties by number");
    let first = ids(&keyword(s, "kiwi plum", &everything(), ALL).await);
    assert_eq!(first, ids(&keyword(s, "kiwi plum", &everything(), ALL).await), "the same query gives the same order");
}

/// Vector retrieval ranks the nearest chunk first, with cosine similarity as the score.
async fn vector_ranks_the_nearest_first<B: SearchStore>(s: &B) {
    let minus_x: Vec<f32> = axis(0).iter().map(|x| -x).collect();
    let points = [("p0", axis(0)), ("p1", toward(0, 1, 0.5)), ("p2", toward(0, 1, 1.0)), ("p3", axis(1)), ("p4", minus_x)];
    // Written out of order, so that the order of writing cannot pass for the ranking.
    let docs = [4, 2, 0, 3, 1].iter().map(|&i| doc(points[i].0, &["point"], Some(vec![points[i].1.clone()]), json!({}))).collect();
    upsert(s, docs).await;
    let hits = vector(s, &axis(0), &everything(), ALL).await;
    assert_eq!(ids(&hits), ["p0", "p1", "p2", "p3", "p4"], "nearest first");
    for (h, (_, v)) in hits.iter().zip(&points) {
        assert!(
            (h.score - dot(&axis(0), v)).abs() < 1e-4,
            "{}: score {} must be the cosine similarity {}",
            h.id,
            h.score,
            dot(&axis(0), v)
        );
    }
    assert_eq!(ids(&vector(s, &toward(1, 0, 0.1), &everything(), 2).await), ["p3", "p2"], "another query, another order");
}

/// Vectors computed later apply only to unchanged documents; documents lacking vectors
/// of a model are listed in id order, page by page.
async fn backfilled_vectors_are_compare_and_set<B: SearchStore>(s: &B) {
    upsert(
        s,
        vec![
            doc("m3", &["backfill three"], None, json!({})),
            doc("m1", &["backfill one"], None, json!({})),
            doc("m2", &["backfill two"], Some(vec![axis(2)]), json!({})),
        ],
    )
    .await;
    let list = |after: Option<&'static str>, limit| async move {
        s.missing_vectors(MODEL, after, limit).await.expect("missing_vectors").into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    assert_eq!(list(None, ALL).await, ["m1", "m3"], "documents without vectors of the model, in id order");
    assert_eq!((list(None, 1).await, list(Some("m1"), 1).await), (vec!["m1".into()], vec!["m3".into()]), "paging by id");
    assert_eq!(s.missing_vectors("another-model", None, ALL).await.expect("missing").len(), 3, "other model: all three");
    let updates = vec![
        VectorUpdate { id: "m1".into(), hashes: vec![hash("backfill one")], model: MODEL.into(), vectors: vec![axis(6)] },
        VectorUpdate { id: "m3".into(), hashes: vec![hash("stale text")], model: MODEL.into(), vectors: vec![axis(7)] },
    ];
    assert_eq!(s.put_vectors(updates).await.expect("put_vectors"), [true, false], "vectors apply only to unchanged documents");
    assert_eq!(ids(&vector(s, &axis(6), &everything(), 1).await), ["m1"], "backfilled vectors are searchable");
    assert!(!ids(&vector(s, &axis(7), &everything(), ALL).await).contains(&"m3".to_string()), "a refused update stores nothing");
    assert_eq!(get_one(s, "m1", false).await.expect("m1").record.model, MODEL, "the model id is stored with the vectors");
    assert_eq!(list(None, ALL).await, ["m3"], "a backfilled document is no longer listed");
    assert_eq!(counts(s), (3, 3, 2), "counts after a backfill");
}

/// Everything acknowledged survives closing and re-opening the storage.
async fn everything_survives_a_reopen<B: SearchStore>(h: &mut impl Harness<B>) {
    let s = h.fresh().await;
    let docs = vec![
        doc("keep", &["durable anchor", "second chunk"], Some(vec![axis(0), axis(1)]), json!({"tier": "gold"})),
        doc("plain", &["durable but keyword only"], None, json!({"tier": "tin"})),
        doc("gone", &["durable yet deleted"], Some(vec![axis(2)]), json!({})),
    ];
    let nums = upsert(&s, docs.clone()).await;
    s.delete(&["gone".to_string()]).await.expect("delete");
    s.maintain().await;
    let s = h.reopen(s).await;
    assert_eq!(counts(&s), (2, 3, 2), "counts survive a reopen");
    for (d, n) in docs.iter().zip(&nums).take(2) {
        let got = get_one(&s, &d.id, true).await.unwrap_or_else(|| panic!("{} survives a reopen", d.id));
        assert_eq!((got.record.doc, &got.record, &got.vectors), (*n, &DocRecord { doc: *n, ..d.record.clone() }, &d.vectors), "as written");
    }
    assert_eq!(get_one(&s, "gone", false).await, None, "a delete survives a reopen");
    assert_eq!(sorted(ids(&keyword(&s, "durable", &everything(), ALL).await)), ["keep", "plain"], "keyword after a reopen");
    assert_eq!(ids(&vector(&s, &axis(1), &everything(), 1).await), ["keep"], "vector after a reopen");
    assert_eq!(ids(&keyword(&s, "durable", &scope(json!({"tier": "tin"})), ALL).await), ["plain"], "metadata after a reopen");
    let again = upsert(&s, vec![docs[0].clone(), doc("new", &["fresh"], None, json!({}))]).await;
    assert_eq!(again[0], nums[0], "numbers survive a reopen");
    assert!(!nums.contains(&again[1]), "numbers are not reused after a reopen");
}

/// The [`Embedder`] contract: one vector per text, in order, of the declared dimension
/// and unit length; the same text gives the same vector; a query embeds like a text.
pub async fn embedder(e: &dyn Embedder) {
    let texts: Vec<String> =
        ["a cat sat on the mat", "quarterly revenue grew", "tomato soup with basil", "a cat sat on the mat"].map(String::from).to_vec();
    let vs = e.embed(&texts).await.unwrap_or_else(|err| panic!("embed failed: {err}"));
    assert_eq!(vs.len(), texts.len(), "one vector per text");
    assert!(e.dimension() > 0, "a positive dimension");
    for v in &vs {
        assert_eq!(v.len(), e.dimension(), "every vector has the declared dimension");
        assert!((dot(v, v).sqrt() - 1.0).abs() < 1e-3, "every vector has unit length");
    }
    let close = |a: &[f32], b: &[f32]| dot(a, b) > 0.9999;
    assert!(close(&vs[0], &vs[3]), "the same text gives the same vector within a batch");
    let again = e.embed(&texts[..1]).await.expect("embed");
    assert!(close(&vs[0], &again[0]), "the same text gives the same vector across calls and batch sizes");
    let q = e.embed_query(&texts[1]).await.expect("embed_query");
    assert!(close(&q, &vs[1]), "a query embeds like the same text");
    assert!(!close(&vs[0], &vs[1]), "different texts give different vectors");
    assert!(e.embed(&[]).await.expect("embed of nothing").is_empty(), "no texts, no vectors");
    assert!(!e.model_id().is_empty(), "a model id");
}
