//! Export benchmarks: per format, render time and output size for a 10,000-segment
//! transcript, plus a ~100-page PDF. Prints its figures (no criterion statistics: one
//! warm-up, then the median of a few runs keeps the whole bench to a few seconds).
//!
//! Run: `cargo bench --bench export`

use hearth::export::config::ExportConfig;
use hearth::export::formats::RenderOptions;
use hearth::export::{Renderer, Segment, Source, Transcript};
use std::time::{Duration, Instant};

fn transcript(n: usize) -> Source {
    let segments = (0..n)
        .map(|i| Segment {
            start: i as f64 * 3.0,
            end: i as f64 * 3.0 + 2.5,
            speaker: Some(format!("Sprecher {}", i % 4)),
            text: format!("Segment {i}: Grüße aus München, café — a sentence of ordinary length here."),
        })
        .collect();
    Source::Transcript(Transcript {
        id: "bench".into(),
        title: "Benchmark".into(),
        language: Some("de".into()),
        segments,
        metadata: Default::default(),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(r: &Renderer, source: &Source, format: &str, runs: usize) -> (Duration, usize) {
    let opts = RenderOptions::default();
    let out = r.render(source, format, "default", &opts).expect("render");
    let times = (0..runs)
        .map(|_| {
            let t = Instant::now();
            let b = r.render(source, format, "default", &opts).expect("render");
            std::hint::black_box(b.len());
            t.elapsed()
        })
        .collect();
    (median(times), out.len())
}

fn main() {
    let mut cfg = ExportConfig::default();
    cfg.template_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/templates/exports").into();
    let r = Renderer::new(&cfg);
    let big = transcript(10_000);
    println!("export bench: 10,000-segment transcript (median of runs after one warm-up)");
    println!("{:<6} {:>12} {:>14}", "format", "time", "size (bytes)");
    for format in ["txt", "json", "srt", "vtt", "md", "docx", "pdf"] {
        let runs = if matches!(format, "docx" | "pdf") { 3 } else { 7 };
        let (t, size) = measure(&r, &big, format, runs);
        println!("{format:<6} {:>9.2} ms {size:>14}", t.as_secs_f64() * 1e3);
    }
    // ~100 pages: 11 pt A4 holds ~25 of these (two-line) segments per page.
    let hundred = transcript(2_600);
    let (t, size) = measure(&r, &hundred, "pdf", 3);
    let pages = count_pages(&r.render(&hundred, "pdf", "default", &RenderOptions::default()).unwrap());
    println!("pdf of 2,600 segments: {pages} pages, {:.2} ms, {size} bytes", t.as_secs_f64() * 1e3);
    println!("goals: srt <= 20 ms (10k segments); ~100-page pdf <= 1 s");
}

/// Page count by `qpdf --show-npages` (the bench prints `?` when qpdf is not installed).
fn count_pages(pdf: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("hearth-export-bench-{}.pdf", std::process::id()));
    let n = std::fs::write(&path, pdf)
        .ok()
        .and_then(|_| std::process::Command::new("qpdf").arg("--show-npages").arg(&path).output().ok())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "?".into());
    let _ = std::fs::remove_file(&path);
    n
}
