//! `chameleon inspect`: summarise an export folder or a domain folder of parquet shards.

use std::path::PathBuf;

use chameleon::export::inspect::{self, DomainSummary, ExportSummary, Inspection, ShardSummary};
use clap::Args;

/// Arguments of `chameleon inspect`.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// An export folder (with manifest.json), a domain folder of parquet shards, or one shard.
    path: PathBuf,
    /// The token column of a domain's shards, whose tokens are counted.
    #[arg(long, default_value = "tokens")]
    column: String,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let inspection = inspect::inspect(&args.path, &args.column)?;
    if args.json {
        println!("{}", serde_json::to_string(&inspection)?);
    } else {
        match &inspection {
            Inspection::Export(summary) => print_export(summary),
            Inspection::Domain(summary) => print_domain(summary),
        }
    }
    // A damaged export fails the command, so that a script that checks an export detects it.
    if let Inspection::Export(summary) = &inspection {
        let mismatched: Vec<&str> = summary.shards.iter().filter(|shard| shard.matches_manifest == Some(false)).map(|shard| shard.file.as_str()).collect();
        if !mismatched.is_empty() {
            anyhow::bail!(
                "rows or tokens differ from the manifest in {}: the export is damaged; write it again with `chameleon export --overwrite`",
                mismatched.join(", ")
            );
        }
    }
    Ok(())
}

fn print_export(summary: &ExportSummary) {
    println!("export {} (chameleon {})", summary.path.display(), summary.version);
    println!(
        "{} steps of {} rows x {} tokens = {} tokens, digest {}",
        summary.steps,
        summary.batch_size,
        summary.seq_len + 1,
        summary.tokens,
        summary.digest
    );
    for version in &summary.mixture_versions {
        let weights: Vec<String> = version.domains.iter().zip(&version.weights).map(|(name, weight)| format!("{name} {weight:.4}")).collect();
        let policy = version.policy.clone();
        println!("mixture version {} from step {} ({policy}): {}", version.version, version.step, weights.join(", "));
    }
    println!("{:<20} {:>8} {:>14} {:>10} {:>7}", "domain", "weight", "tokens", "sequences", "epochs");
    for domain in &summary.domains {
        println!("{:<20} {:>8.4} {:>14} {:>10} {:>7}", domain.name, domain.target_weight, domain.tokens, domain.sequences, domain.epochs);
    }
    print_shards(&summary.shards);
    println!("schema: {}", summary.schema.join(", "));
}

fn print_domain(summary: &DomainSummary) {
    let column = &summary.token_column;
    let present = summary.schema.iter().any(|field| field.starts_with(&format!("{column}: ")));
    let tokens = match summary.tokens {
        Some(tokens) => format!("{tokens} tokens"),
        None if present => format!("column '{column}' is not a list of token ids, so no tokens are counted"),
        None => format!("no token column '{column}'"),
    };
    println!(
        "{}: {}, {} rows, {}, {}",
        summary.path.display(),
        crate::count(summary.shards.len() as u64, "shard"),
        summary.rows,
        crate::count(summary.row_groups as u64, "row group"),
        tokens
    );
    print_shards(&summary.shards);
    println!("schema: {}", summary.schema.join(", "));
}

fn print_shards(shards: &[ShardSummary]) {
    println!("{:<28} {:>12} {:>10} {:>10} {:>14}", "shard", "bytes", "rows", "row groups", "tokens");
    for shard in shards {
        let tokens = shard.tokens.map_or_else(|| "-".to_string(), |tokens| tokens.to_string());
        let flag = if shard.matches_manifest == Some(false) { "  differs from the manifest" } else { "" };
        println!("{:<28} {:>12} {:>10} {:>10} {:>14}{flag}", shard.file, shard.bytes, shard.rows, shard.row_groups, tokens);
    }
}
