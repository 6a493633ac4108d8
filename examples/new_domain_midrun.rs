//! A run that gains a domain while it streams.
//!
//! The loader starts on three fixture domains with a watched folder. After a few batches the
//! example copies a fourth domain's shards into the watched folder (under a temporary name, then
//! renamed, as a careful writer would), keeps streaming, and prints the mixture before and after
//! the watcher takes the new folder in, with the time from the folder being complete to the first
//! batch that holds the new domain.
//!
//! Run: `cargo run --release --example new_domain_midrun -- [POLL_INTERVAL_MS]` (default 1000).

use std::path::Path;
use std::time::{Duration, Instant};

use chameleon::config::WatchConfig;
use chameleon::pipeline::MixtureVersion;
use chameleon::{Config, Loader};

fn print_mixture(label: &str, version: &MixtureVersion) {
    let weights: Vec<String> = version.domains.iter().zip(&version.weights).map(|(name, weight)| format!("{name} {weight:.3}")).collect();
    println!("{label} (version {}, step {}, {}): {}", version.version, version.step, version.policy, weights.join(", "));
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let poll_interval_ms: u64 = std::env::args().nth(1).map(|text| text.parse()).transpose()?.unwrap_or(1000);
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let mut config = Config::from_file(fixtures.join("mix.toml"))?;
    config.domains.retain(|domain| ["books", "code_rust", "qa"].contains(&domain.name.as_str()));

    let watched = tempfile::tempdir()?;
    config.watch = Some(WatchConfig {
        poll_interval_ms,
        weight: Some(0.25),
        text_column: Some("text".into()),
        ..WatchConfig::new(watched.path())
    });
    let mut loader = Loader::new(config)?;
    print_mixture("before", loader.mixture());
    for _ in 0..5 {
        loader.next().expect("the loader never ends")?;
    }

    // Copy the new domain in: each shard under a hidden temporary name, renamed when complete.
    let target = watched.path().join("speeches");
    std::fs::create_dir(&target)?;
    for entry in std::fs::read_dir(fixtures.join("domains/speeches"))? {
        let entry = entry?;
        let temporary = target.join(format!(".{}.tmp", entry.file_name().to_string_lossy()));
        std::fs::copy(entry.path(), &temporary)?;
        std::fs::rename(&temporary, target.join(entry.file_name()))?;
    }
    let complete = Instant::now();

    let latency = loop {
        let batch = loader.next().expect("the loader never ends")?;
        if (0..batch.rows()).any(|row| batch.domain_name(row) == "speeches") {
            break complete.elapsed();
        }
        if complete.elapsed() > Duration::from_secs(30) {
            return Err("the new domain was not taken in within 30 s".into());
        }
    };
    print_mixture("after", loader.mixture());
    println!("time from the complete folder to the first batch holding it: {:.0} ms (poll interval {poll_interval_ms} ms)", latency.as_secs_f64() * 1e3);

    let batches: Vec<_> = loader.by_ref().take(400).collect::<Result<_, _>>()?;
    let rows: usize = batches.iter().map(|batch| batch.rows()).sum();
    let new_rows: usize = batches.iter().map(|batch| (0..batch.rows()).filter(|&row| batch.domain_name(row) == "speeches").count()).sum();
    println!("share of speeches over the next 400 batches: {:.3} (target {:.3})", new_rows as f64 / rows as f64, loader.mixture().weights[3]);
    Ok(())
}
