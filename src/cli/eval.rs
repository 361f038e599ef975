//! `hearth eval`: indexes a BEIR-format corpus in a temporary data directory, runs every
//! query in each mode and prints nDCG@10 and recall@100 (the measures are in
//! `search/eval.rs`), showing how far it is on standard error.

use crate::search::eval::{BeirSet, evaluate_service};
use std::path::PathBuf;

/// Command-line arguments of `hearth eval`.
#[derive(Debug, Clone, clap::Args)]
pub struct EvalArgs {
    /// BEIR corpus.jsonl.
    #[arg(long)]
    pub corpus: PathBuf,
    /// BEIR queries.jsonl.
    #[arg(long)]
    pub queries: PathBuf,
    /// BEIR qrels .tsv (query-id, corpus-id, score; header line).
    #[arg(long)]
    pub qrels: PathBuf,
    /// keyword, semantic or hybrid (default: all three).
    #[arg(long)]
    pub mode: Option<String>,
    /// Directory of the embedding model (default: search.embeddings.model_dir, ./models).
    #[arg(long)]
    pub model_dir: Option<PathBuf>,
    /// Fusion for hybrid: weighted or rrf (default: configured).
    #[arg(long)]
    pub fusion: Option<String>,
    /// Weighted fusion's semantic ratio.
    #[arg(long)]
    pub semantic_ratio: Option<f32>,
    /// RRF's k.
    #[arg(long)]
    pub rrf_k: Option<f32>,
}

/// Runs the evaluation and prints a table. Used by `hearth eval`.
pub fn run(args: EvalArgs) -> Result<(), String> {
    let set = BeirSet::read(&args.corpus, &args.queries, &args.qrels)?;
    let modes: Vec<&str> = match args.mode.as_deref() {
        Some(m) if ["keyword", "semantic", "hybrid"].contains(&m) => vec![m],
        Some(m) => return Err(format!("unknown mode '{m}'; use keyword, semantic or hybrid")),
        None => vec!["keyword", "semantic", "hybrid"],
    };
    let dir = tempfile_dir()?;
    let mut config = crate::Config::default();
    config.server.data_dir = dir.clone();
    if let Some(m) = &args.model_dir {
        config.search.embeddings.model_dir = m.display().to_string();
    }
    if let Some(f) = &args.fusion {
        config.search.fusion.method = f.clone();
    }
    if let Some(r) = args.semantic_ratio {
        config.search.fusion.semantic_ratio = r;
    }
    if let Some(k) = args.rrf_k {
        config.search.fusion.rrf_k = k;
    }
    config.search.search.max_limit = config.search.search.max_limit.max(100);
    super::models::apply_bundle(&mut config)?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    let result = rt.block_on(async {
        let app = crate::App::build(config).await.map_err(|e| e.to_string())?;
        let started = std::time::Instant::now();
        let reporter = super::progress::Reporter::stderr();
        let scores = evaluate_service(&app.search, &set, &modes, &|what, done, total| reporter.report(what, done, total)).await;
        app.shutdown().await;
        let scores = scores?;
        eprintln!("{} documents, {} queries, {:.1}s", set.docs.len(), set.queries.len(), started.elapsed().as_secs_f64());
        println!("{:<10} {:>9} {:>11} {:>8}", "mode", "nDCG@10", "recall@100", "queries");
        for s in scores {
            println!("{:<10} {:>9.4} {:>11.4} {:>8}", s.mode, s.ndcg10, s.recall100, s.queries);
        }
        Ok::<(), String>(())
    });
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn tempfile_dir() -> Result<PathBuf, String> {
    let dir = std::env::temp_dir().join(format!("hearth-eval-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    Ok(dir)
}
