//! The `chameleon` command-line tool: a thin layer over the library.

use clap::{Parser, Subcommand};

mod weights;

/// Streaming data loader for language-model training with built-in domain reweighting.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Compute Chameleon leverage scores and mixture weights from domain embeddings.
    Weights(weights::WeightsArgs),
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    match cli.command {
        Command::Weights(args) => weights::run(args),
    }
}
