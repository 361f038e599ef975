//! Batch exports: several rendered files packed into one zip, written entry by entry to a
//! staging file on disk ([`StagedZip`]), so a batch never sits in memory whole: at any
//! time the job holds one source and its rendered output.

use super::error::ExportError;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// Makes `name` unique among `taken` by inserting `-2`, `-3`... before the extension.
pub fn unique_name(name: &str, taken: &mut std::collections::HashSet<String>) -> String {
    if taken.insert(name.to_string()) {
        return name.to_string();
    }
    let (stem, ext) = name.rsplit_once('.').map(|(s, e)| (s, format!(".{e}"))).unwrap_or((name, String::new()));
    (2..).map(|i| format!("{stem}-{i}{ext}")).find(|n| taken.insert(n.clone())).expect("unbounded")
}

fn zip_err(e: impl std::fmt::Display) -> ExportError {
    ExportError::Render(format!("zip: {e}"))
}

/// A deflate-compressed zip being written to a staging file. Blocking I/O: use it from a
/// blocking thread. Dropped before [`StagedZip::finish`], it removes its file.
pub struct StagedZip {
    zip: Option<zip::ZipWriter<std::fs::File>>,
    file: StagedFile,
}

impl StagedZip {
    /// Creates an empty zip in a new temporary file (`.tmp-*`) in `dir`.
    pub fn create(dir: &Path) -> Result<StagedZip, ExportError> {
        std::fs::create_dir_all(dir)?;
        let path = super::storage::temp_path(dir);
        let f = std::fs::File::options().read(true).write(true).create_new(true).open(&path)?;
        Ok(StagedZip { zip: Some(zip::ZipWriter::new(f)), file: StagedFile { path, size: 0, etag: String::new() } })
    }

    /// Appends one entry.
    pub fn add(&mut self, name: &str, bytes: &[u8]) -> Result<(), ExportError> {
        let zip = self.zip.as_mut().ok_or_else(|| zip_err("already finished"))?;
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        zip.start_file(name, opts).map_err(zip_err)?;
        zip.write_all(bytes).map_err(zip_err)
    }

    /// Writes the zip's directory and fsyncs; returns the staged file with its size and
    /// ETag (a SHA-256 prefix, read back in chunks).
    pub fn finish(mut self) -> Result<StagedFile, ExportError> {
        let zip = self.zip.take().ok_or_else(|| zip_err("already finished"))?;
        let f = zip.finish().map_err(zip_err)?;
        f.sync_all()?;
        drop(f);
        let mut file = std::mem::replace(&mut self.file, StagedFile { path: PathBuf::new(), size: 0, etag: String::new() });
        let (size, etag) = digest_file(&file.path)?;
        file.size = size;
        file.etag = etag;
        Ok(file)
    }
}

/// A complete file in the staging directory, ready for
/// [`super::storage::ExportStorage::put_file`]. Dropping it removes the file if it is still
/// there (a backend that renamed it into place has taken it).
#[derive(Debug)]
pub struct StagedFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its length in bytes.
    pub size: u64,
    /// Its ETag.
    pub etag: String,
}

impl Drop for StagedFile {
    fn drop(&mut self) {
        if !self.path.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The ETag of export bytes: a quoted 32-hex-digit SHA-256 prefix.
pub fn etag_of(digest: &[u8]) -> String {
    format!("\"{}\"", &hex::encode(digest)[..32])
}

/// Length and ETag of a file, read in chunks.
fn digest_file(path: &Path) -> Result<(u64, String), ExportError> {
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut len = 0u64;
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        len += n as u64;
    }
    Ok((len, etag_of(&h.finalize())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deduplicated_and_the_staged_zip_reads_back() {
        let mut taken = Default::default();
        assert_eq!(unique_name("a.srt", &mut taken), "a.srt");
        assert_eq!(unique_name("a.srt", &mut taken), "a-2.srt");
        let dir = tempfile::tempdir().unwrap();
        let mut z = StagedZip::create(dir.path()).unwrap();
        z.add("a.srt", b"x").unwrap();
        z.add("ü.txt", "é".as_bytes()).unwrap();
        let staged = z.finish().unwrap();
        let bytes = std::fs::read(&staged.path).unwrap();
        assert_eq!((staged.size, staged.etag.clone()), (bytes.len() as u64, etag_of(&Sha256::digest(&bytes))));
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(bytes)).unwrap();
        assert_eq!(r.len(), 2);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r.by_name("ü.txt").unwrap(), &mut s).unwrap();
        assert_eq!(s, "é");
        let path = staged.path.clone();
        drop(staged);
        assert!(!path.exists(), "a staged file not taken is removed");
        let unfinished = StagedZip::create(dir.path()).unwrap();
        let path = unfinished.file.path.clone();
        drop(unfinished);
        assert!(!path.exists(), "an unfinished zip is removed");
    }
}
