//! Batch exports: several rendered files packed into one zip.

use super::error::ExportError;
use std::io::Write;

/// Makes `name` unique among `taken` by inserting `-2`, `-3`... before the extension.
pub fn unique_name(name: &str, taken: &mut std::collections::HashSet<String>) -> String {
    if taken.insert(name.to_string()) {
        return name.to_string();
    }
    let (stem, ext) = name.rsplit_once('.').map(|(s, e)| (s, format!(".{e}"))).unwrap_or((name, String::new()));
    (2..).map(|i| format!("{stem}-{i}{ext}")).find(|n| taken.insert(n.clone())).expect("unbounded")
}

/// Packs `(file name, bytes)` entries into a deflate-compressed zip.
pub fn zip_files(files: &[(String, Vec<u8>)]) -> Result<Vec<u8>, ExportError> {
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    let err = |e: &dyn std::fmt::Display| ExportError::Render(format!("zip: {e}"));
    for (name, bytes) in files {
        zip.start_file(name.as_str(), opts).map_err(|e| err(&e))?;
        zip.write_all(bytes).map_err(|e| err(&e))?;
    }
    Ok(zip.finish().map_err(|e| err(&e))?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_deduplicated_and_zip_reads_back() {
        let mut taken = Default::default();
        assert_eq!(unique_name("a.srt", &mut taken), "a.srt");
        assert_eq!(unique_name("a.srt", &mut taken), "a-2.srt");
        let z = zip_files(&[("a.srt".into(), b"x".to_vec()), ("ü.txt".into(), "é".as_bytes().to_vec())]).unwrap();
        let mut r = zip::ZipArchive::new(std::io::Cursor::new(z)).unwrap();
        assert_eq!(r.len(), 2);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut r.by_name("ü.txt").unwrap(), &mut s).unwrap();
        assert_eq!(s, "é");
    }
}
