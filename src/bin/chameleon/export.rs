//! `chameleon export`: write the stream to parquet shards with a manifest.

use std::path::PathBuf;
use std::time::Instant;

use chameleon::export::{self, ExportOptions, ExportProgress, DEFAULT_SHARD_TOKENS};
use chameleon::{Config, Partition};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Arguments of `chameleon export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// The output folder; created when missing. Running the same command again after an
    /// interruption continues where it stopped.
    #[arg(long)]
    output: PathBuf,
    /// Tokens to export, rounded up to whole batches.
    #[arg(long)]
    tokens: u64,
    /// Tokens per shard, rounded up to whole batches (at least one batch).
    #[arg(long, default_value_t = DEFAULT_SHARD_TOKENS)]
    shard_tokens: u64,
    /// Decode parallelism, at least 1. Default: the available cores. The files do not depend on it.
    #[arg(long, value_parser = crate::parse_threads)]
    threads: Option<usize>,
    /// Replace another export in the output folder, or export into a folder with other files
    /// (they are kept).
    #[arg(long)]
    overwrite: bool,
    /// This process's rank, with --world-size. Default: the RANK environment variable, else 0.
    #[arg(long, env = "RANK")]
    rank: Option<usize>,
    /// The number of ranks, with --rank. Default: the WORLD_SIZE environment variable, else 1.
    #[arg(long, env = "WORLD_SIZE")]
    world_size: Option<usize>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Serialize)]
struct Summary {
    output: PathBuf,
    steps: u64,
    tokens: u64,
    shards: usize,
    digest: String,
    first_step: u64,
    shards_written: u64,
    already_complete: bool,
    seconds: f64,
    tokens_per_second: f64,
}

pub fn run(args: ExportArgs) -> anyhow::Result<()> {
    let config = Config::from_file(&args.config)?;
    let partition = Partition::from_parts(args.rank, args.world_size)?;
    let options = ExportOptions {
        output: args.output.clone(),
        tokens: args.tokens,
        shard_tokens: args.shard_tokens,
        threads: args.threads,
        partition,
        overwrite: args.overwrite,
    };

    let progress = ProgressBar::new(0);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {human_pos}/{human_len} tokens ({per_sec}, {eta} left)")
            .expect("the template is valid"),
    );
    let mut started = false;
    let mut on_progress = |update: ExportProgress| {
        if !started {
            progress.set_length(update.tokens_total);
            progress.set_position(update.tokens_done);
            progress.reset_eta();
            started = true;
        }
        progress.set_position(update.tokens_done);
    };

    let start = Instant::now();
    let report = export::export(&config, &options, &mut on_progress)?;
    progress.finish_and_clear();
    let seconds = start.elapsed().as_secs_f64();

    let batch_tokens = report.manifest.batch_size as u64 * (report.manifest.seq_len as u64 + 1);
    let written_tokens = (report.manifest.steps - report.first_step) * batch_tokens;
    let summary = Summary {
        output: args.output,
        steps: report.manifest.steps,
        tokens: report.manifest.tokens,
        shards: report.manifest.shards.len(),
        digest: report.manifest.digest,
        first_step: report.first_step,
        shards_written: report.shards_written,
        already_complete: report.already_complete,
        seconds,
        tokens_per_second: if seconds > 0.0 { written_tokens as f64 / seconds } else { 0.0 },
    };
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
        return Ok(());
    }
    if summary.already_complete {
        println!("{} already holds this export: {} steps, {} tokens in {}", summary.output.display(), summary.steps, summary.tokens, crate::count(summary.shards as u64, "shard"));
    } else {
        println!(
            "exported {} steps ({} tokens) to {} in {}, from step {}, in {:.2} s ({:.3e} tokens/s)",
            summary.steps,
            summary.tokens,
            crate::count(summary.shards as u64, "shard"),
            summary.output.display(),
            summary.first_step,
            summary.seconds,
            summary.tokens_per_second
        );
    }
    println!("digest {}", summary.digest);
    Ok(())
}
