//! `chameleon tokenize`: text parquet or JSONL files into token shards.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use chameleon::source::Tokenizer;
use chameleon::tokenize::{self, TokenizeOptions, TokenizeReport};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

/// Arguments of `chameleon tokenize`.
#[derive(Debug, Args)]
pub struct TokenizeArgs {
    /// A parquet or JSONL file, or a folder of them (walked recursively, layout kept).
    #[arg(long)]
    input: PathBuf,
    /// The folder the token shards are written to.
    #[arg(long)]
    output: PathBuf,
    /// A tokenizer name (gpt2, r50k_base, p50k_base, cl100k_base, o200k_base) or a Hugging Face
    /// tokenizer.json file.
    #[arg(long)]
    tokenizer: String,
    /// The column that holds each document's text.
    #[arg(long, default_value = "text")]
    text_column: String,
    /// Worker threads. Default: the available cores.
    #[arg(long)]
    threads: Option<usize>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: TokenizeArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build_global().context("cannot size the thread pool")?;
    }
    let tokenizer = Tokenizer::load(&args.tokenizer)?;
    let jobs = tokenize::plan(&args.input, &args.output)?;
    let options = TokenizeOptions { text_column: args.text_column };
    tracing::info!(files = jobs.len(), tokenizer = tokenizer.name(), "tokenizing");

    let progress = ProgressBar::new(tokenize::count_rows(&jobs));
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} rows ({per_sec}, {eta} left)")
            .expect("the template is valid"),
    );
    let done = AtomicU64::new(0);
    let start = std::time::Instant::now();
    let on_rows = |rows: u64| {
        done.fetch_add(rows, Ordering::Relaxed);
        progress.inc(rows);
    };

    let reports: Vec<TokenizeReport> = jobs
        .par_iter()
        .map(|job| tokenize::tokenize_file(job, &tokenizer, &options, &on_rows).with_context(|| format!("cannot tokenize {}", job.input.display())))
        .collect::<anyhow::Result<_>>()?;
    progress.finish_and_clear();

    let total = reports.iter().fold(TokenizeReport::default(), |sum, report| TokenizeReport {
        files: sum.files + report.files,
        rows: sum.rows + report.rows,
        tokens: sum.tokens + report.tokens,
        null_rows: sum.null_rows + report.null_rows,
    });
    let seconds = start.elapsed().as_secs_f64();
    if args.json {
        let summary = serde_json::json!({
            "files": total.files, "rows": total.rows, "tokens": total.tokens, "null_rows": total.null_rows,
            "seconds": seconds, "output": args.output,
        });
        println!("{summary}");
    } else {
        println!(
            "wrote {} shards to {}: {} rows, {} tokens, {} null rows, in {:.1} s",
            total.files,
            args.output.display(),
            total.rows,
            total.tokens,
            total.null_rows,
            seconds
        );
    }
    Ok(())
}
