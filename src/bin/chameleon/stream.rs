//! `chameleon stream`: run the loader for a number of steps and summarise what it yielded.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use chameleon::batch::to_hex;
use chameleon::config::WatchConfig;
use chameleon::pipeline::MixtureVersion;
use chameleon::{Config, Loader, LoaderState, Partition, StreamDigest};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;

/// Arguments of `chameleon stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    /// The configuration file.
    #[arg(long)]
    config: PathBuf,
    /// Batches to take (after the resume point, with --resume), at least 1.
    #[arg(long, default_value_t = 100, value_parser = parse_steps)]
    steps: u64,
    /// Decode parallelism, at least 1. Default: the available cores. The batches do not depend on it.
    #[arg(long, value_parser = crate::parse_threads)]
    threads: Option<usize>,
    /// Print the summary as one JSON object on stdout.
    #[arg(long)]
    json: bool,
    /// Write one line per batch, `<step>\t<hex hash>`, to this file.
    #[arg(long)]
    batch_hashes: Option<PathBuf>,
    /// Write the loader state after the last step to this file (atomically). A `{step}` in the
    /// name is replaced by the step the state continues from, to keep one file per save.
    #[arg(long)]
    save_state: Option<PathBuf>,
    /// Also write the state every N steps while streaming (with --save-state), N at least 1.
    #[arg(long, requires = "save_state", value_parser = parse_save_every)]
    save_every: Option<u64>,
    /// Continue from a state file written by --save-state.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Watch this folder for new domain folders while streaming (sets `[watch] root`).
    #[arg(long)]
    watch: Option<PathBuf>,
    /// Static weight of the domains the watch adds (sets `[watch] weight`).
    #[arg(long)]
    watch_weight: Option<f64>,
    /// Text column of the domains the watch adds, tokenized on the fly (sets `[watch] text_column`).
    #[arg(long)]
    watch_text_column: Option<String>,
    /// This process's rank, with --world-size. Default: the RANK environment variable, else 0.
    #[arg(long, env = "RANK")]
    rank: Option<usize>,
    /// The number of ranks, with --rank. Default: the WORLD_SIZE environment variable, else 1.
    #[arg(long, env = "WORLD_SIZE")]
    world_size: Option<usize>,
}

#[derive(Debug, Serialize)]
struct Summary {
    batches: u64,
    tokens: u64,
    seconds: f64,
    tokens_per_second: f64,
    digest: String,
    first_step: u64,
    domains: Vec<DomainSummary>,
    policy: String,
    scores: Option<Vec<f64>>,
    effective_dimension: Option<f64>,
    mixture_versions: Vec<VersionSummary>,
}

#[derive(Debug, Serialize)]
struct VersionSummary {
    version: u64,
    step: u64,
    domains: Vec<String>,
    weights: Vec<f64>,
    policy: String,
    change: String,
}

#[derive(Debug, Serialize)]
struct DomainSummary {
    name: String,
    target_weight: f64,
    realized_share: f64,
    tokens: u64,
    sequences: u64,
    epochs: u64,
    null_rows: u64,
    skipped_shards: u64,
    skipped_row_groups: u64,
}

pub fn run(args: StreamArgs) -> anyhow::Result<()> {
    let mut config = Config::read_file(&args.config)?;
    if let Some(root) = &args.watch {
        match &mut config.watch {
            Some(watch) => watch.root = root.clone(),
            None => config.watch = Some(WatchConfig::new(root.clone())),
        }
    }
    if let Some(weight) = args.watch_weight {
        let Some(watch) = &mut config.watch else {
            anyhow::bail!("--watch-weight sets the weight of watched domains; pass --watch FOLDER or add a [watch] table too");
        };
        watch.weight = Some(weight);
    }
    if let Some(column) = args.watch_text_column {
        let Some(watch) = &mut config.watch else {
            anyhow::bail!("--watch-text-column sets the text column of watched domains; pass --watch FOLDER or add a [watch] table too");
        };
        watch.text_column = Some(column);
    }
    if let Some(path) = &args.save_state {
        check_state_path(&state_path(path, 0))?;
    }
    let mut builder = Loader::builder(config);
    if let Some(threads) = args.threads {
        builder = builder.threads(threads);
    }
    builder = builder.partition(Partition::from_parts(args.rank, args.world_size)?);
    if let Some(path) = &args.resume {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read state file {}", path.display()))?;
        let state: LoaderState = serde_json::from_str(&text).with_context(|| format!("state file {} is not a valid loader state", path.display()))?;
        builder = builder.resume(state);
    }

    let start = Instant::now();
    let mut loader = builder.build()?;
    let first_step = loader.step();
    let mut hashes = match &args.batch_hashes {
        Some(path) => Some(BufWriter::new(File::create(path).with_context(|| format!("cannot create {}", path.display()))?)),
        None => None,
    };

    let progress = ProgressBar::new(args.steps);
    progress.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} batches ({per_sec}, {eta} left)")
            .expect("the template is valid"),
    );
    let mut last_version = loader.mixture().version;
    let mut digest = StreamDigest::new();
    let mut tokens = 0u64;
    let mut first_batch_at = None;
    for _ in 0..args.steps {
        let batch = loader.next().expect("the loader never ends by itself")?;
        first_batch_at.get_or_insert_with(|| start.elapsed());
        let hash = batch.hash();
        digest.update(&hash);
        tokens += batch.tokens.len() as u64;
        if let Some(out) = hashes.as_mut() {
            writeln!(out, "{}\t{}", batch.step, to_hex(&hash)).context("cannot write batch hashes")?;
        }
        if let (Some(path), Some(every)) = (&args.save_state, args.save_every) {
            if (batch.step + 1) % every == 0 {
                save_state(&state_path(path, batch.step + 1), &loader.state())?;
            }
        }
        progress.inc(1);
        // Changes apply at a batch boundary; online-policy updates, one per batch, are not printed.
        if loader.mixture().version != last_version {
            for version in loader.mixture_versions().iter().filter(|version| version.version > last_version && !version.change.starts_with("online update")) {
                // A hidden bar (stderr not a terminal) prints nothing, and logs need these lines most.
                if progress.is_hidden() {
                    eprintln!("{}", event_line(version));
                } else {
                    progress.println(event_line(version));
                }
            }
            last_version = loader.mixture().version;
        }
    }
    progress.finish_and_clear();
    if let Some(mut out) = hashes {
        out.flush().context("cannot write batch hashes")?;
    }
    if let Some(path) = &args.save_state {
        save_state(&state_path(path, loader.step()), &loader.state())?;
    }
    let seconds = start.elapsed().as_secs_f64();
    if let Some(first) = first_batch_at {
        tracing::info!(milliseconds = first.as_secs_f64() * 1e3, "time to first batch");
    }

    let summary = summarise(&loader, args.steps, tokens, seconds, digest.hex(), first_step);
    if args.json {
        println!("{}", serde_json::to_string(&summary)?);
    } else {
        print_table(&summary);
    }
    Ok(())
}

fn summarise(loader: &Loader, batches: u64, tokens: u64, seconds: f64, digest: String, first_step: u64) -> Summary {
    let stats = loader.stats();
    let emitted: u64 = stats.iter().map(|domain| domain.tokens).sum();
    let domains = stats
        .into_iter()
        .map(|domain| DomainSummary {
            realized_share: if emitted == 0 { 0.0 } else { domain.tokens as f64 / emitted as f64 },
            name: domain.name,
            target_weight: domain.target_weight,
            tokens: domain.tokens,
            sequences: domain.sequences,
            epochs: domain.epochs,
            null_rows: domain.null_rows,
            skipped_shards: domain.skipped_shards,
            skipped_row_groups: domain.skipped_row_groups,
        })
        .collect();
    let current = loader.mixture();
    let mixture_versions = loader
        .mixture_versions()
        .iter()
        .map(|version| VersionSummary {
            version: version.version,
            step: version.step,
            domains: version.domains.clone(),
            weights: version.weights.clone(),
            policy: version.policy.clone(),
            change: version.change.clone(),
        })
        .collect();
    Summary {
        batches,
        tokens,
        seconds,
        tokens_per_second: if seconds > 0.0 { tokens as f64 / seconds } else { 0.0 },
        digest,
        first_step,
        domains,
        policy: current.policy.clone(),
        scores: current.scores.clone(),
        effective_dimension: current.effective_dimension,
        mixture_versions,
    }
}

fn print_table(summary: &Summary) {
    println!(
        "{} batches, {} tokens in {:.2} s ({:.3e} tokens/s), policy {}",
        summary.batches, summary.tokens, summary.seconds, summary.tokens_per_second, summary.policy
    );
    println!("digest {}", summary.digest);
    if let Some(dimension) = summary.effective_dimension {
        println!("effective dimension {dimension:.4}; leverage scores in the mixture's domain order: {:?}", summary.scores.as_deref().unwrap_or_default());
    }
    if summary.mixture_versions.len() > 1 {
        println!("{} mixture versions; the last: {}", summary.mixture_versions.len(), summary.mixture_versions.last().map_or("", |version| version.change.as_str()));
    }
    println!("{:<20} {:>8} {:>8} {:>12} {:>7} {:>10}", "domain", "weight", "share", "tokens", "epochs", "null rows");
    for domain in &summary.domains {
        println!(
            "{:<20} {:>8.4} {:>8.4} {:>12} {:>7} {:>10}",
            domain.name, domain.target_weight, domain.realized_share, domain.tokens, domain.epochs, domain.null_rows
        );
    }
}

/// Parses `--steps`, rejecting 0 as `export` rejects `--tokens 0`: a stream of no batches
/// measures nothing.
fn parse_steps(text: &str) -> Result<u64, String> {
    let steps: u64 = text.parse().map_err(|error| format!("{error}; pass a whole number of batches"))?;
    if steps == 0 {
        return Err("--steps must be at least 1".into());
    }
    Ok(steps)
}

fn parse_save_every(text: &str) -> Result<u64, String> {
    let every: u64 = text.parse().map_err(|error| format!("{error}; pass a whole number of batches"))?;
    if every == 0 {
        return Err("--save-every must be at least 1; leave it out to save only after the last step".into());
    }
    Ok(every)
}

/// The state file for `step`: `path` with `{step}` replaced by the step.
fn state_path(path: &Path, step: u64) -> PathBuf {
    PathBuf::from(path.to_string_lossy().replace("{step}", &step.to_string()))
}

/// Writes the state to a temporary file beside `path`, syncs it and renames it over `path`, so
/// that `path` always holds either the old state or the new one.
fn save_state(path: &Path, state: &LoaderState) -> anyhow::Result<()> {
    let (folder, temporary) = temporary_state_path(path)?;
    let mut file = File::create(&temporary).with_context(|| format!("cannot write the state file {} (creating {})", path.display(), temporary.display()))?;
    serde_json::to_writer_pretty(&mut file, state)?;
    file.write_all(b"\n")?;
    file.sync_all().with_context(|| format!("cannot sync {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("cannot rename {} to {}", temporary.display(), path.display()))?;
    if let Ok(directory) = File::open(&folder) {
        let _ = directory.sync_all();
    }
    Ok(())
}

/// Returns the folder of a state file and the temporary file written there before the rename.
fn temporary_state_path(path: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    let folder = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("the state path {} has no file name; pass a file such as state.json", path.display()))?.to_string_lossy();
    let temporary = folder.join(format!(".{name}.{}.tmp", std::process::id()));
    Ok((folder.to_path_buf(), temporary))
}

/// Checks before streaming that the state file can be written, so a typo in `--save-state` fails
/// at once rather than after the run.
fn check_state_path(path: &Path) -> anyhow::Result<()> {
    let (folder, temporary) = temporary_state_path(path)?;
    if !folder.is_dir() {
        anyhow::bail!("cannot save the state to {}: the folder {} does not exist; create it or choose another --save-state path", path.display(), folder.display());
    }
    File::create(&temporary).with_context(|| format!("cannot save the state to {}: the folder {} is not writable; choose another --save-state path", path.display(), folder.display()))?;
    std::fs::remove_file(&temporary).with_context(|| format!("cannot remove the probe file {}", temporary.display()))?;
    Ok(())
}

/// One stderr line for a mixture change: version, step, what changed, and the new weights.
fn event_line(version: &MixtureVersion) -> String {
    let weights: Vec<String> = version.domains.iter().zip(&version.weights).map(|(name, weight)| format!("{name}={weight:.4}")).collect();
    format!("mixture version {} at step {}: {} ({}); weights {}", version.version, version.step, version.change, version.policy, weights.join(" "))
}
