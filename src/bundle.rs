//! The files a one-file build carries inside the binary (the embedding model, its
//! tokenizer, ONNX Runtime, the notification templates, a fallback font), and their
//! unpacking.
//!
//! `dist/build.sh` compresses each file with zstd and writes a manifest that the `bundle`
//! feature compiles in ([`BUNDLE`]; empty without the feature, so normal builds stay
//! light). At start the files are unpacked once into `<data dir>/bundle/<id>/`, where
//! `<id>` is derived from the manifest (a new binary gets a new directory):
//!
//! - each file is decompressed into a temporary directory beside the target while its
//!   sha256 is computed, and compared with the manifest's;
//! - only when every file matched is the temporary directory renamed into place (one
//!   atomic rename): a damaged binary is a clear error and leaves nothing half-written,
//!   and a crash mid-way leaves only a temporary directory, removed by the next start;
//! - an existing directory is reused after a size check of each file.
//!
//! This file is a leaf: it knows files, not configuration (`cli/` points the
//! configuration at the unpacked files).

use sha2::{Digest, Sha256};
use std::fs;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

/// One file of the bundle.
#[derive(Debug, Clone, Copy)]
pub struct BundledFile {
    /// Relative path inside the unpacked directory (`models/model.onnx`).
    pub path: &'static str,
    /// sha256 of the uncompressed content, lower-case hex.
    pub sha256: &'static str,
    /// Uncompressed size in bytes.
    pub size: u64,
    /// The zstd-compressed content.
    pub zst: &'static [u8],
}

#[cfg(feature = "bundle")]
mod manifest {
    use super::BundledFile;
    // Written by dist/build.sh: `pub const FILES: &[BundledFile] = &[...];`.
    include!(env!("HEARTH_BUNDLE_MANIFEST"));
}

/// The files this binary carries: empty unless built with the `bundle` feature.
#[cfg(feature = "bundle")]
pub const BUNDLE: &[BundledFile] = manifest::FILES;
/// The files this binary carries: empty unless built with the `bundle` feature.
#[cfg(not(feature = "bundle"))]
pub const BUNDLE: &[BundledFile] = &[];

/// Why the bundle could not be unpacked.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// A file does not decompress to what the manifest says: the binary is damaged.
    #[error("the files inside this hearth binary are damaged ({path}: {why}); nothing was unpacked — download the binary again")]
    Corrupt {
        /// The bundled file.
        path: String,
        /// What did not match.
        why: String,
    },
    /// The cache directory could not be written.
    #[error("cannot unpack the bundled files into {dir}: {source}")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// Why.
        source: io::Error,
    },
}

/// The directory name of a bundle: 16 hex digits of the sha256 over its manifest.
pub fn bundle_id(files: &[BundledFile]) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.path.as_bytes());
        h.update([0]);
        h.update(f.sha256.as_bytes());
        h.update([0]);
    }
    hex::encode(h.finalize())[..16].to_string()
}

/// Unpacks `files` under `cache` (once; see the module doc) and returns the directory
/// holding them. An empty bundle unpacks to nothing: `None`.
pub fn unpack(files: &[BundledFile], cache: &Path) -> Result<Option<PathBuf>, BundleError> {
    if files.is_empty() {
        return Ok(None);
    }
    let io_err = |dir: &Path| {
        let dir = dir.to_path_buf();
        move |source| BundleError::Io { dir, source }
    };
    let id = bundle_id(files);
    let target = cache.join(&id);
    fs::create_dir_all(cache).map_err(io_err(cache))?;
    remove_stale_temps(cache, &id);
    if target.is_dir() && files.iter().all(|f| fs::metadata(target.join(f.path)).is_ok_and(|m| m.len() == f.size)) {
        return Ok(Some(target));
    }
    let temp = cache.join(format!(".tmp-{id}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&temp);
    let written = write_all(files, &temp);
    if let Err(e) = written {
        let _ = fs::remove_dir_all(&temp);
        return Err(e);
    }
    // A directory left by an older, damaged unpack (sizes differ) is replaced.
    if target.exists() {
        let _ = fs::remove_dir_all(&target);
    }
    match fs::rename(&temp, &target) {
        Ok(()) => {}
        // Another process unpacked the same bundle meanwhile: theirs is as good.
        Err(_) if target.is_dir() => {
            let _ = fs::remove_dir_all(&temp);
        }
        Err(e) => {
            let _ = fs::remove_dir_all(&temp);
            return Err(BundleError::Io { dir: target, source: e });
        }
    }
    if let Ok(d) = fs::File::open(cache) {
        let _ = d.sync_all();
    }
    Ok(Some(target))
}

/// Removes temporary directories of earlier, interrupted unpacks of bundle `id` whose
/// process is gone.
fn remove_stale_temps(cache: &Path, id: &str) {
    let Ok(entries) = fs::read_dir(cache) else { return };
    let prefix = format!(".tmp-{id}-");
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.strip_prefix(&prefix).and_then(|p| p.parse::<u32>().ok()) else { continue };
        if pid == std::process::id() || !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_dir_all(e.path());
        }
    }
}

/// Decompresses and verifies every file into `dir`.
fn write_all(files: &[BundledFile], dir: &Path) -> Result<(), BundleError> {
    for f in files {
        if f.path.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
            return Err(BundleError::Corrupt { path: f.path.into(), why: "not a relative path".into() });
        }
        let dest = dir.join(f.path);
        let parent = dest.parent().unwrap_or(dir);
        fs::create_dir_all(parent).map_err(|source| BundleError::Io { dir: parent.to_path_buf(), source })?;
        write_one(f, &dest)?;
    }
    Ok(())
}

/// Decompresses `f` into `dest`, hashing as it goes, and checks size and sha256.
fn write_one(f: &BundledFile, dest: &Path) -> Result<(), BundleError> {
    let corrupt = |why: String| BundleError::Corrupt { path: f.path.into(), why };
    let io = |source| BundleError::Io { dir: dest.to_path_buf(), source };
    let mut decoder = zstd::stream::read::Decoder::new(f.zst).map_err(|e| corrupt(format!("not zstd data: {e}")))?;
    let mut out = io::BufWriter::new(fs::File::create(dest).map_err(io)?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = decoder.read(&mut buf).map_err(|e| corrupt(format!("does not decompress: {e}")))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        out.write_all(&buf[..n]).map_err(io)?;
        size += n as u64;
    }
    let got = hex::encode(hasher.finalize());
    if size != f.size || got != f.sha256 {
        return Err(corrupt(format!("expected {} bytes with sha256 {}, got {size} bytes with sha256 {got}", f.size, f.sha256)));
    }
    let file = out.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bundle file made at test time (the content leaked so it is `'static`).
    fn file(path: &'static str, content: &[u8]) -> BundledFile {
        let zst: &'static [u8] = Box::leak(zstd::encode_all(content, 3).unwrap().into_boxed_slice());
        let sha256: &'static str = Box::leak(hex::encode(Sha256::digest(content)).into_boxed_str());
        BundledFile { path, sha256, size: content.len() as u64, zst }
    }

    fn entries(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        v.sort();
        v
    }

    #[test]
    fn unpacks_once_and_reuses_the_directory() {
        let cache = tempfile::tempdir().unwrap();
        let files = [file("models/model.onnx", &vec![7u8; 300_000]), file("fonts/LICENSE", "Bitstream Vera".as_bytes())];
        let dir = unpack(&files, cache.path()).unwrap().unwrap();
        assert_eq!(fs::read(dir.join("models/model.onnx")).unwrap(), vec![7u8; 300_000]);
        assert_eq!(fs::read_to_string(dir.join("fonts/LICENSE")).unwrap(), "Bitstream Vera");
        assert_eq!(entries(cache.path()), vec![bundle_id(&files)], "one directory, no temporary left");
        let marker = dir.join("models/extra");
        fs::write(&marker, "kept").unwrap();
        assert_eq!(unpack(&files, cache.path()).unwrap().unwrap(), dir);
        assert!(marker.exists(), "a second start reuses the directory instead of unpacking again");
        // A file of the wrong size (damaged on disk) makes the next start unpack again.
        fs::write(dir.join("fonts/LICENSE"), "x").unwrap();
        let again = unpack(&files, cache.path()).unwrap().unwrap();
        assert_eq!(fs::read_to_string(again.join("fonts/LICENSE")).unwrap(), "Bitstream Vera");
        assert!(unpack(&[], cache.path()).unwrap().is_none(), "no bundle, nothing to unpack");
    }

    #[test]
    fn a_corrupt_bundle_is_a_clear_error_and_writes_nothing() {
        let good = file("models/tokenizer.json", b"{\"model\": 1}");
        let mut wrong_hash = file("models/model.onnx", &vec![1u8; 100_000]);
        wrong_hash.sha256 = good.sha256;
        let mut truncated = file("models/config.json", &vec![2u8; 100_000]);
        truncated.zst = &truncated.zst[..truncated.zst.len() / 2];
        let mut wrong_size = file("fonts/DejaVuSans.ttf", b"font");
        wrong_size.size = 5;
        for (bad, what) in [(wrong_hash, "sha256"), (truncated, "decompress"), (wrong_size, "5 bytes")] {
            let cache = tempfile::tempdir().unwrap();
            let err = unpack(&[good, bad], cache.path()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, BundleError::Corrupt { .. }), "{msg}");
            assert!(msg.contains(bad.path) && msg.contains(what) && msg.contains("download the binary again"), "{msg}");
            assert!(entries(cache.path()).is_empty(), "nothing half-written: {:?}", entries(cache.path()));
        }
    }

    #[test]
    fn a_path_outside_the_directory_is_refused() {
        let cache = tempfile::tempdir().unwrap();
        let err = unpack(&[file("../escape", b"x")], cache.path()).unwrap_err().to_string();
        assert!(err.contains("not a relative path"), "{err}");
        assert!(entries(cache.path()).is_empty());
    }

    #[test]
    fn a_temporary_directory_of_a_dead_process_is_removed() {
        let cache = tempfile::tempdir().unwrap();
        let files = [file("a", b"1")];
        let stale = cache.path().join(format!(".tmp-{}-{}", bundle_id(&files), u32::MAX - 1));
        fs::create_dir_all(stale.join("models")).unwrap();
        unpack(&files, cache.path()).unwrap();
        assert!(!stale.exists());
    }
}
