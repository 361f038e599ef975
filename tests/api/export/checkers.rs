//! Independent checkers for export output: Python `srt`, npm `webvtt-parser`,
//! python-docx, qpdf and pdftotext. A missing tool FAILS the test (CI installs them via
//! `.ci/run`); nothing here is skipped.

use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `cmd` with `input` on stdin; panics with a clear message if the tool is missing.
fn run(cmd: &mut Command, input: &[u8], what: &str) -> (bool, String, String) {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what} is required for this test (.ci/run installs it): {e}"));
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn python(script: &str, input: &[u8]) -> String {
    let (ok, out, err) = run(Command::new("python3").arg("-c").arg(script), input, "python3");
    assert!(ok, "python checker failed:\n{err}\n{out}");
    out
}

/// Parses SRT with the `srt` library, re-composes it and requires byte identity; returns
/// the number of subtitles.
pub fn check_srt(bytes: &[u8]) -> usize {
    let script = r#"
import sys, srt
text = sys.stdin.buffer.read().decode('utf-8')
subs = list(srt.parse(text))
again = srt.compose(subs)
if again != text:
    import difflib
    sys.stderr.write(''.join(difflib.unified_diff(text.splitlines(True), again.splitlines(True)))[:4000])
    sys.exit(1)
for i, s in enumerate(subs, 1):
    assert s.index == i, (s.index, i)
    assert s.end > s.start, s
print(len(subs))
"#;
    python(script, bytes).trim().parse().unwrap()
}

/// Validates WebVTT with `webvtt-parser` (no errors allowed); returns the cue count.
pub fn check_vtt(bytes: &[u8]) -> usize {
    let node_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(".ci/node/node_modules");
    assert!(node_path.join("webvtt-parser").is_dir(), "webvtt-parser missing: npm install --prefix .ci/node webvtt-parser");
    let script = r#"
const { WebVTTParser } = require('webvtt-parser');
const text = require('fs').readFileSync(0, 'utf8');
const tree = new WebVTTParser().parse(text, 'metadata');
if (tree.errors.length) { console.error(JSON.stringify(tree.errors)); process.exit(1); }
console.log(tree.cues.length);
"#;
    let (ok, out, err) = run(Command::new("node").arg("-e").arg(script).env("NODE_PATH", node_path), bytes, "node");
    assert!(ok, "webvtt-parser rejected the file: {err}");
    out.trim().parse().unwrap()
}

/// What python-docx reads from a DOCX: paragraphs `(style name, text)`, table cell texts,
/// header and footer texts.
#[derive(Debug, serde::Deserialize)]
pub struct DocxView {
    pub paragraphs: Vec<(String, String)>,
    pub tables: Vec<Vec<Vec<String>>>,
    pub header: Vec<String>,
    pub footer: Vec<String>,
}

/// Opens a DOCX with python-docx.
pub fn read_docx(bytes: &[u8]) -> DocxView {
    let script = r#"
import sys, io, json, docx
d = docx.Document(io.BytesIO(sys.stdin.buffer.read()))
sec = d.sections[0]
print(json.dumps({
  "paragraphs": [[p.style.name, p.text] for p in d.paragraphs],
  "tables": [[[c.text for c in r.cells] for r in t.rows] for t in d.tables],
  "header": [p.text for p in sec.header.paragraphs],
  "footer": [p.text for p in sec.footer.paragraphs],
}))
"#;
    serde_json::from_str(&python(script, bytes)).unwrap()
}

/// `qpdf --check` must pass; returns (page count, text from pdftotext).
pub fn check_pdf(bytes: &[u8]) -> (usize, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.pdf");
    std::fs::write(&path, bytes).unwrap();
    let out = Command::new("qpdf").arg("--check").arg(&path).output().unwrap_or_else(|e| panic!("qpdf is required (apt qpdf): {e}"));
    assert_eq!(
        out.status.code(),
        Some(0),
        "qpdf --check: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let pages = Command::new("qpdf").arg("--show-npages").arg(&path).output().unwrap();
    let pages = String::from_utf8_lossy(&pages.stdout).trim().parse().unwrap();
    let text = Command::new("pdftotext")
        .arg("-enc")
        .arg("UTF-8")
        .arg(&path)
        .arg("-")
        .output()
        .unwrap_or_else(|e| panic!("pdftotext is required (apt poppler-utils): {e}"));
    assert!(text.status.success(), "pdftotext failed");
    (pages, String::from_utf8_lossy(&text.stdout).into_owned())
}
