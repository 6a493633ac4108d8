//! The `chameleon` command-line tool: a thin layer over the library.

use clap::{Parser, Subcommand};

/// Streaming data loader for language-model training with built-in domain reweighting.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {}
}
