//! Where export files live: the [`ExportStorage`] trait and its local-directory backend.
//!
//! Invariant: a file becomes visible under its key only complete — [`LocalStorage::put`]
//! writes a temporary file in the same directory, fsyncs it and renames it into place, so
//! a download never sees a partial file and a crash leaves at most a stray `.tmp-*` file
//! (removed at start by [`LocalStorage::sweep_temp`]).
//!
//! Keys are chosen by hearth (`<export id>.<ext>`), never by callers; every backend still
//! refuses keys that could leave its root ([`valid_key`]).

use super::error::ExportError;
use async_trait::async_trait;
use std::path::PathBuf;
use std::pin::Pin;
use tokio::io::AsyncRead;

/// A readable stored file.
pub type Reader = Pin<Box<dyn AsyncRead + Send>>;

/// A storage backend for export files (local directory now; S3 later).
#[async_trait]
pub trait ExportStorage: Send + Sync + 'static {
    /// Stores `bytes` under `key` atomically (all or nothing), replacing any old file.
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExportError>;
    /// Stores the complete file at `file` under `key` atomically, as [`ExportStorage::put`]
    /// does, without holding it in memory where the backend can avoid it. The file is
    /// consumed: it may be moved into place (the caller removes it if it is still there).
    ///
    /// The default reads the file into memory and calls `put`; backends that can stream
    /// (or rename, as [`LocalStorage`] does) override it.
    async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<(), ExportError> {
        let bytes = tokio::fs::read(file).await?;
        self.put(key, bytes).await
    }
    /// A directory where large files (batch zips) are staged before
    /// [`ExportStorage::put_file`]; the system temp directory when `None`. A local backend
    /// names a directory on its own filesystem so that storing is a rename.
    fn staging_dir(&self) -> Option<PathBuf> {
        None
    }
    /// Opens the file under `key` with its length; `None` when absent.
    async fn open(&self, key: &str) -> Result<Option<(Reader, u64)>, ExportError>;
    /// Deletes the file under `key`; absent is not an error.
    async fn delete(&self, key: &str) -> Result<(), ExportError>;
    /// Removes what writes interrupted by a crash left behind (called once at start).
    /// Nothing by default, for backends whose writes leave nothing.
    async fn clean_up(&self) {}
}

/// Whether `key` is a plain file name: ASCII letters, digits, `-`, `_`, `.`, no `..`.
pub fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 200
        && !key.contains("..")
        && !key.starts_with('.')
        && key.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// Files in one local directory.
#[derive(Debug, Clone)]
pub struct LocalStorage {
    root: PathBuf,
}

impl LocalStorage {
    /// A backend rooted at `root` (created on first write).
    pub fn new(root: PathBuf) -> Self {
        LocalStorage { root }
    }

    /// The directory files are written to.
    pub fn root(&self) -> &std::path::Path {
        &self.root
    }

    fn path(&self, key: &str) -> Result<PathBuf, ExportError> {
        if !valid_key(key) {
            return Err(ExportError::Io(format!("invalid storage key {key:?}")));
        }
        Ok(self.root.join(key))
    }

    /// Removes temporary files left by writes interrupted by a crash.
    pub fn sweep_temp(&self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                if e.file_name().to_string_lossy().starts_with(".tmp-") {
                    let _ = std::fs::remove_file(e.path());
                }
            }
        }
    }
}

/// A fresh temporary file name in `root` (swept at start by [`LocalStorage::sweep_temp`]).
pub fn temp_path(root: &std::path::Path) -> PathBuf {
    root.join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()))
}

/// Moves the complete file `file` to `path` (inside `root`) durably: fsync, then a rename
/// when both are on one filesystem, else a copy to a temp file in `root` (fsynced) and a
/// rename. Either way `path` appears whole or not at all.
pub fn move_file_atomic(root: &std::path::Path, file: &std::path::Path, path: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(root)?;
    std::fs::File::open(file)?.sync_all()?;
    if std::fs::rename(file, path).is_err() {
        let tmp = temp_path(root);
        let res = (|| {
            std::fs::copy(file, &tmp)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if res.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        res?;
        let _ = std::fs::remove_file(file);
    }
    // Make the rename itself durable.
    if let Ok(dir) = std::fs::File::open(root) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Writes `bytes` to `path` (inside `root`) via a temp file in `root`, fsync and rename.
pub fn write_file_atomic(root: &std::path::Path, path: &std::path::Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    std::fs::create_dir_all(root)?;
    let tmp = temp_path(root);
    let res = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // Make the rename itself durable.
        if let Ok(dir) = std::fs::File::open(root) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if res.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    res
}

#[async_trait]
impl ExportStorage for LocalStorage {
    async fn put(&self, key: &str, bytes: Vec<u8>) -> Result<(), ExportError> {
        let path = self.path(key)?;
        let root = self.root.clone();
        tokio::task::spawn_blocking(move || write_file_atomic(&root, &path, &bytes))
            .await
            .map_err(|e| ExportError::Io(e.to_string()))?
            .map_err(ExportError::from)
    }

    async fn put_file(&self, key: &str, file: &std::path::Path) -> Result<(), ExportError> {
        let path = self.path(key)?;
        let (root, file) = (self.root.clone(), file.to_path_buf());
        tokio::task::spawn_blocking(move || move_file_atomic(&root, &file, &path))
            .await
            .map_err(|e| ExportError::Io(e.to_string()))?
            .map_err(ExportError::from)
    }

    /// Staged files live in the root as `.tmp-*` names: storing them is a rename, and
    /// what a crash leaves is swept at start.
    fn staging_dir(&self) -> Option<PathBuf> {
        Some(self.root.clone())
    }

    async fn open(&self, key: &str) -> Result<Option<(Reader, u64)>, ExportError> {
        let path = self.path(key)?;
        match tokio::fs::File::open(&path).await {
            Ok(f) => {
                let len = f.metadata().await?.len();
                Ok(Some((Box::pin(f), len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    async fn delete(&self, key: &str) -> Result<(), ExportError> {
        let path = self.path(key)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn clean_up(&self) {
        let me = self.clone();
        let _ = tokio::task::spawn_blocking(move || me.sweep_temp()).await;
    }
}

/// Checks a caller-supplied download file name (without extension): refused when it has
/// path separators, `..`, control characters, or is empty or longer than 150 bytes.
/// Returns it trimmed, with a trailing `.<ext>` removed if the caller included it.
pub fn check_filename(name: &str, ext: &str) -> Result<String, ExportError> {
    let bad = |m: &str| Err(ExportError::invalid("filename", m));
    let name = name.trim();
    if name.is_empty() {
        return bad("must not be empty");
    }
    if name.contains(['/', '\\']) || name.contains("..") {
        return bad("must not contain path separators or '..'");
    }
    if name.chars().any(|c| c.is_control()) {
        return bad("must not contain control characters");
    }
    if name.len() > 150 {
        return bad("must be at most 150 bytes");
    }
    let stripped = name.strip_suffix(&format!(".{ext}")).unwrap_or(name);
    if stripped.is_empty() {
        return bad("must not be empty");
    }
    Ok(stripped.to_string())
}

/// `Content-Disposition: attachment` for `filename`: an ASCII fallback (`"` `\` and
/// non-ASCII replaced by `_`) plus the RFC 5987 UTF-8 form.
pub fn content_disposition(filename: &str) -> String {
    let ascii: String = filename.chars().map(|c| if c.is_ascii_graphic() && c != '"' && c != '\\' || c == ' ' { c } else { '_' }).collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b"!#$&+-.^_`|~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filenames_with_paths_are_refused() {
        for bad in ["../x", "a/b", "a\\b", "..", "", "  ", "a\u{0}b"] {
            assert!(check_filename(bad, "srt").is_err(), "{bad:?}");
        }
        assert_eq!(check_filename(" Grüße.srt ", "srt").unwrap(), "Grüße");
        assert_eq!(check_filename("a.b", "srt").unwrap(), "a.b");
    }

    #[test]
    fn disposition_has_ascii_and_utf8_forms() {
        assert_eq!(
            content_disposition("Grüße \"x\".srt"),
            "attachment; filename=\"Gr__e _x_.srt\"; filename*=UTF-8''Gr%C3%BC%C3%9Fe%20%22x%22.srt"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_local_storage_passes_the_conformance_suite() {
        crate::export::conformance::files::run(crate::conformance::TempDb::new(|dir| async move { LocalStorage::new(dir) })).await;
    }

    #[tokio::test]
    async fn put_is_atomic_and_keys_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        let s = LocalStorage::new(dir.path().join("exports"));
        s.put("a.txt", b"hello".to_vec()).await.unwrap();
        let (mut r, len) = s.open("a.txt").await.unwrap().unwrap();
        let mut buf = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut r, &mut buf).await.unwrap();
        assert_eq!((buf.as_slice(), len), (&b"hello"[..], 5));
        assert!(s.put("../evil", vec![]).await.is_err());
        assert!(s.open("../../etc/passwd").await.is_err());
        let leftovers: Vec<_> = std::fs::read_dir(s.root()).unwrap().flatten().filter(|e| e.file_name() != "a.txt").collect();
        assert!(leftovers.is_empty());
        s.delete("a.txt").await.unwrap();
        assert!(s.open("a.txt").await.unwrap().is_none());
    }
}
