//! The `chameleon` command-line tool: a thin layer over the library.

mod export;
mod inspect;
mod stream;
mod tokenize;
mod weights;

use std::io::IsTerminal;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Streaming data loader for language-model training with built-in domain reweighting.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Log more: -v for info, -vv for debug, -vvv for trace. Default: warnings and errors only.
    /// RUST_LOG overrides this.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Stream packed batches from a configuration and print a summary.
    Stream(stream::StreamArgs),
    /// Pre-tokenize text parquet or JSONL files into token shards.
    Tokenize(tokenize::TokenizeArgs),
    /// Compute Chameleon leverage scores and mixture weights from domain embeddings.
    Weights(weights::WeightsArgs),
    /// Write the stream to parquet shards with a manifest; rerun to continue after a stop.
    Export(export::ExportArgs),
    /// Summarise an export folder or a domain folder of parquet shards.
    Inspect(inspect::InspectArgs),
}

fn main() {
    restore_sigpipe();
    let cli = Cli::parse();
    install_logging(cli.verbose);

    let outcome = match cli.command {
        Command::Stream(args) => stream::run(args),
        Command::Tokenize(args) => tokenize::run(args),
        Command::Weights(args) => weights::run(args),
        Command::Export(args) => export::run(args),
        Command::Inspect(args) => inspect::run(args),
    };
    if let Err(error) = outcome {
        eprintln!("error: {error:#}");
        std::process::exit(1);
    }
}

/// Sends logs to stderr at the level the flags choose, unless RUST_LOG is set. Colours are used
/// only when stderr is a terminal, so redirected logs contain no ANSI escape codes.
fn install_logging(verbose: u8) {
    let level = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}

/// Restores the default action of SIGPIPE, which Rust programs ignore, so that output piped into
/// a reader that exits early (`chameleon inspect DIR | head`) ends the process quietly instead of
/// making `println!` panic.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: this runs first in `main`, before any other thread exists, and only resets a signal
    // disposition to its default.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// Formats a count with its noun, singular for one: `1 shard`, `3 shards`.
fn parse_threads(text: &str) -> Result<usize, String> {
    let threads: usize = text.parse().map_err(|error| format!("{error}; pass a whole number of threads"))?;
    if threads == 0 {
        return Err("--threads must be at least 1; leave it out to use every core".into());
    }
    Ok(threads)
}

fn count(number: u64, noun: &str) -> String {
    if number == 1 {
        format!("1 {noun}")
    } else {
        format!("{number} {noun}s")
    }
}
