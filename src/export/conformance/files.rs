//! The conformance suite of [`ExportStorage`]: open returns exactly what was put with its
//! length, a put is atomic (a reader sees the old file or the new one, never part of one),
//! delete, missing keys, keys that are not plain names refused, a staged file stored with
//! `put_file` like a `put`, and files surviving a re-open. That no file is written outside the root is a property of the local backend
//! and checked in its own tests; here every backend must refuse such keys.

use super::Harness;
use crate::export::storage::{ExportStorage, valid_key};
use tokio::io::AsyncReadExt;

/// Runs every check. Panics with a message naming the broken rule.
pub async fn run<S: ExportStorage>(mut h: impl Harness<S>) {
    round_trip_replace_and_delete(&h.fresh().await).await;
    keys_never_become_paths(&h.fresh().await).await;
    a_put_is_atomic(&h.fresh().await).await;
    put_file_stores_a_staged_file(&h.fresh().await).await;
    reopen_keeps_files(&mut h).await;
}

/// The bytes and length under `key`, or None.
async fn read<S: ExportStorage>(s: &S, key: &str) -> Option<(Vec<u8>, u64)> {
    let (mut reader, len) = s.open(key).await.expect("open")?;
    let mut bytes = Vec::new();
    reader.read_to_end(&mut bytes).await.expect("read");
    Some((bytes, len))
}

fn content(byte: u8, len: usize) -> Vec<u8> {
    vec![byte; len]
}

/// What is put is opened back with its length; put replaces; delete removes.
async fn round_trip_replace_and_delete<S: ExportStorage>(s: &S) {
    assert!(read(s, "missing.txt").await.is_none(), "a missing key opens as None");
    s.delete("missing.txt").await.expect("deleting a missing key is not an error");
    let long: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    s.put("a-1_b.pdf", long.clone()).await.expect("put");
    assert_eq!(read(s, "a-1_b.pdf").await, Some((long, 300_000)), "open returns the bytes put and their length");
    s.put("a-1_b.pdf", b"short".to_vec()).await.expect("put");
    assert_eq!(read(s, "a-1_b.pdf").await, Some((b"short".to_vec(), 5)), "a put replaces the whole file, also by a shorter one");
    s.put("empty.txt", Vec::new()).await.expect("put");
    assert_eq!(read(s, "empty.txt").await, Some((Vec::new(), 0)), "an empty file is a file");
    s.delete("a-1_b.pdf").await.expect("delete");
    assert!(read(s, "a-1_b.pdf").await.is_none(), "a deleted file is gone");
    assert!(read(s, "empty.txt").await.is_some(), "a delete leaves other files");
}

/// Keys that are not plain file names are refused by put, open and delete alike.
async fn keys_never_become_paths<S: ExportStorage>(s: &S) {
    s.put("target.txt", b"keep".to_vec()).await.unwrap();
    let long = "k".repeat(201);
    let bad = ["../x", "..", "a/../target.txt", "a/b", "/etc/passwd", "a\\b", ".hidden", "", "a\0b", "ü.txt", "a b", long.as_str()];
    for key in bad {
        assert!(!valid_key(key), "suite error: {key:?} should be an invalid key");
        assert!(s.put(key, b"evil".to_vec()).await.is_err(), "put refuses the key {key:?}");
        assert!(s.open(key).await.is_err(), "open refuses the key {key:?}");
        assert!(s.delete(key).await.is_err(), "delete refuses the key {key:?}");
    }
    assert_eq!(read(s, "target.txt").await, Some((b"keep".to_vec(), 4)), "refused keys change no file");
}

/// A file written to the backend's staging directory and stored with `put_file` opens
/// back with the same bytes, replaces an older file, and refuses bad keys.
async fn put_file_stores_a_staged_file<S: ExportStorage>(s: &S) {
    let dir = s.staging_dir().unwrap_or_else(std::env::temp_dir);
    std::fs::create_dir_all(&dir).expect("staging dir");
    let stage = |bytes: &[u8]| {
        let path = crate::export::storage::temp_path(&dir);
        std::fs::write(&path, bytes).expect("write a staged file");
        path
    };
    let big: Vec<u8> = (0..1_500_000u32).map(|i| (i % 253) as u8).collect();
    let first = stage(&big);
    s.put_file("batch.zip", &first).await.expect("put_file");
    let _ = std::fs::remove_file(&first);
    assert_eq!(read(s, "batch.zip").await, Some((big, 1_500_000)), "put_file stores the file's bytes and length");
    let second = stage(b"replaced");
    s.put_file("batch.zip", &second).await.expect("put_file");
    let _ = std::fs::remove_file(&second);
    assert_eq!(read(s, "batch.zip").await, Some((b"replaced".to_vec(), 8)), "put_file replaces the whole file");
    let evil = stage(b"evil");
    assert!(s.put_file("../x.zip", &evil).await.is_err(), "put_file refuses keys that are not plain names");
    let _ = std::fs::remove_file(&evil);
    assert_eq!(read(s, "batch.zip").await, Some((b"replaced".to_vec(), 8)), "a refused key changes no file");
}

/// Readers racing a writer see either the whole old file or the whole new one.
async fn a_put_is_atomic<S: ExportStorage>(s: &S) {
    let (a, b) = (content(b'a', 2 << 20), content(b'b', 3 << 20));
    let write = async {
        for round in 0..6 {
            s.put("race.bin", if round % 2 == 0 { a.clone() } else { b.clone() }).await.expect("put");
        }
    };
    let check = async {
        for _ in 0..40 {
            if let Some((bytes, len)) = read(s, "race.bin").await {
                assert_eq!(bytes.len() as u64, len, "open's length is the length of the bytes it reads");
                let whole = (bytes.len() == a.len() && bytes.iter().all(|x| *x == b'a'))
                    || (bytes.len() == b.len() && bytes.iter().all(|x| *x == b'b'));
                assert!(whole, "a put is atomic: a reader saw {} bytes that are neither file", bytes.len());
            }
            tokio::task::yield_now().await;
        }
    };
    tokio::join!(write, check);
}

/// Files outlive a re-open.
async fn reopen_keeps_files<S: ExportStorage>(h: &mut impl Harness<S>) {
    let s = h.fresh().await;
    s.put("kept.docx", b"docx bytes".to_vec()).await.unwrap();
    s.put("gone.txt", b"x".to_vec()).await.unwrap();
    s.delete("gone.txt").await.unwrap();
    let s = h.reopen(s).await;
    assert_eq!(read(&s, "kept.docx").await, Some((b"docx bytes".to_vec(), 10)), "a re-open keeps files");
    assert!(read(&s, "gone.txt").await.is_none(), "a re-open keeps deletions");
}
