//! `chameleon tokenize`: text parquet or JSONL files into token shards.

use std::path::{Path, PathBuf};
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
    /// Worker threads, at least 1. Default: the available cores.
    #[arg(long, value_parser = crate::parse_threads)]
    threads: Option<usize>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Replace shards that already exist in the output folder.
    #[arg(long)]
    overwrite: bool,
}

pub fn run(args: TokenizeArgs) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().context("cannot size the thread pool")?;
    }
    let tokenizer = Tokenizer::load(&args.tokenizer)?;
    let jobs = tokenize::plan(&args.input, &args.output)?;
    let existing: Vec<&Path> = jobs.iter().map(|job| job.output.as_path()).filter(|path| path.exists()).collect();
    if let Some(first) = existing.first().filter(|_| !args.overwrite) {
        let verb = if existing.len() == 1 { "exists" } else { "exist" };
        anyhow::bail!(
            "{} of {} to write already {verb}, the first {}; pass --overwrite to replace them, or choose another output folder",
            existing.len(),
            crate::count(jobs.len() as u64, "shard"),
            first.display()
        );
    }
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

    let output_existed = args.output.exists();
    let outcome: anyhow::Result<Vec<TokenizeReport>> = jobs
        .par_iter()
        .map(|job| tokenize::tokenize_file(job, &tokenizer, &options, &on_rows).map_err(|error| name_input(error, &job.input)))
        .collect();
    progress.finish_and_clear();
    let reports = match outcome {
        Ok(reports) => reports,
        Err(error) => {
            // Rayon has joined every job here, so no shard is still being written.
            if !output_existed {
                remove_empty_folders(&args.output);
            }
            return Err(error);
        }
    };

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
            "wrote {} to {}: {} rows, {} tokens, {} null rows, in {:.1} s",
            crate::count(total.files as u64, "shard"),
            args.output.display(),
            total.rows,
            total.tokens,
            total.null_rows,
            seconds
        );
    }
    Ok(())
}

/// Adds the input file to a tokenizer error. The other errors of `tokenize_file` name their file
/// already.
fn name_input(error: chameleon::Error, input: &Path) -> anyhow::Error {
    match error {
        chameleon::Error::Tokenizer { .. } => anyhow::Error::new(error).context(format!("cannot tokenize {}", input.display())),
        other => other.into(),
    }
}

/// Removes `folder` and the folders under it that contain no file, so that a failed run leaves no
/// empty output tree. `remove_dir` fails on a folder that is not empty, so no file is deleted.
fn remove_empty_folders(folder: &Path) {
    if let Ok(entries) = std::fs::read_dir(folder) {
        for entry in entries.flatten() {
            if entry.file_type().is_ok_and(|kind| kind.is_dir()) {
                remove_empty_folders(&entry.path());
            }
        }
    }
    let _ = std::fs::remove_dir(folder);
}
