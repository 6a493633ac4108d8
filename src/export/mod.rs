//! Export: the loader's batches written to parquet shards, for trainers that read files.
//!
//! [`export`] takes the first `steps` batches of a [`Loader`] and writes them, in order, to
//! `shard-00000.parquet`, `shard-00001.parquet`, ... in an output folder, then `manifest.json`.
//! Each shard contains whole batches, one row per sequence, with the columns of [`shard_schema`]:
//!
//! | column | type | content |
//! |---|---|---|
//! | `tokens` | `list<uint32>` | the row's `seq_len + 1` tokens |
//! | `domain` | `dictionary<int32, utf8>` | the row's domain |
//! | `doc_starts` | `list<int32>` | positions in the row where a document starts |
//!
//! The [`Manifest`] records the configuration, its fingerprint, the steps, the stream digest
//! (equal to what `chameleon stream --json` reports for the same configuration and steps), the
//! mixture, per-domain counts and every shard's rows, tokens and SHA-256.
//!
//! An export survives being killed at any moment. A shard appears under its final name only when
//! complete, and after each shard a hidden progress file records the loader state, the batch
//! hashes and the shards so far. Running the same export again continues after the last complete
//! shard, and the files end byte-identical to those of an uninterrupted run.

mod folder;
pub mod inspect;
mod manifest;
mod shard;

use std::path::{Path, PathBuf};

pub use manifest::{is_shard_name, shard_name, ExportShape, Manifest, MixtureVersion, ShardEntry, MANIFEST_FORMAT, MANIFEST_NAME, PROGRESS_NAME};
pub use shard::{row_group_rows, sha256_file, shard_schema};

use folder::{Expected, Start};
use manifest::{to_json_bytes, Progress};
use shard::{write_atomically, ShardWriter};

use crate::batch::{to_hex, Batch, StreamDigest};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::pipeline::{Loader, Partition};

/// The default shard size, in tokens: 64 Mi.
pub const DEFAULT_SHARD_TOKENS: u64 = 64 << 20;

/// Options of an export: the output folder, the size, and the loader settings.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The output folder; created when missing.
    pub output: PathBuf,
    /// Tokens to export, rounded up to whole batches.
    pub tokens: u64,
    /// Tokens per shard, rounded up to whole batches; at least one batch.
    pub shard_tokens: u64,
    /// Decode parallelism of the loader; the files do not depend on it. Default: the available
    /// cores.
    pub threads: Option<usize>,
    /// The rank whose stream is exported.
    pub partition: Partition,
    /// Replace another export in the output folder, and export into a folder with other files.
    pub overwrite: bool,
}

impl ExportOptions {
    /// Options for `tokens` tokens into `output`, with the defaults for everything else.
    pub fn new(output: impl Into<PathBuf>, tokens: u64) -> ExportOptions {
        ExportOptions { output: output.into(), tokens, shard_tokens: DEFAULT_SHARD_TOKENS, threads: None, partition: Partition::default(), overwrite: false }
    }

    /// The steps and batches per shard these options give for `config`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when `tokens` or `shard_tokens` is 0.
    pub fn shape(&self, config: &Config) -> Result<ExportShape> {
        if self.tokens == 0 {
            return Err(Error::Config { message: "the export has 0 tokens; pass --tokens of at least 1".into() });
        }
        if self.shard_tokens == 0 {
            return Err(Error::Config { message: "shards of 0 tokens; pass --shard-tokens of at least 1".into() });
        }
        let batch_tokens = (config.batch_size as u64) * (config.seq_len as u64 + 1);
        Ok(ExportShape { steps: self.tokens.div_ceil(batch_tokens), shard_batches: self.shard_tokens.div_ceil(batch_tokens).max(1) })
    }
}

/// How far an export has come, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExportProgress {
    /// Tokens in the batches written so far, counting those of an earlier, interrupted run.
    pub tokens_done: u64,
    /// Tokens the export will hold.
    pub tokens_total: u64,
}

/// The outcome of [`export`].
#[derive(Debug, Clone)]
pub struct ExportReport {
    /// The manifest written, or found when the export was already complete.
    pub manifest: Manifest,
    /// The step the run started at: 0, or where an interrupted run had stopped.
    pub first_step: u64,
    /// Shards this run wrote.
    pub shards_written: u64,
    /// Whether the output folder already held this export, complete.
    pub already_complete: bool,
}

/// Exports the first batches of the stream of `config` to parquet shards and a manifest.
///
/// When the output folder holds an unfinished run of the same export (same fingerprint, steps and
/// shard size), the export continues after its last complete shard. `on_progress` is called once
/// at the start and after every batch.
///
/// # Errors
///
/// Everything [`Loader::builder`]'s `build` and the loader's batches can fail with, and
/// [`Error::Output`] when the output folder holds another export or other files (without
/// `overwrite`), or when a file cannot be written. A failed run leaves no partial shard under a
/// final name, and running it again continues where it stopped.
pub fn export(config: &Config, options: &ExportOptions, on_progress: &mut dyn FnMut(ExportProgress)) -> Result<ExportReport> {
    let shape = options.shape(config)?;
    let batch_tokens = (config.batch_size as u64) * (config.seq_len as u64 + 1);
    let build_loader = |state| {
        let mut builder = Loader::builder(config.clone()).partition(options.partition);
        if let Some(threads) = options.threads {
            builder = builder.threads(threads);
        }
        if let Some(state) = state {
            builder = builder.resume(state);
        }
        builder.build()
    };

    let mut loader = build_loader(None)?;
    let fingerprint = loader.state().fingerprint;
    let version = env!("CARGO_PKG_VERSION");
    let expected = Expected { fingerprint: &fingerprint, shape, version };
    let mut progress = match folder::prepare(&options.output, &expected, options.overwrite)? {
        Start::Complete(manifest) => {
            tracing::info!(folder = %options.output.display(), "the export is already complete");
            on_progress(ExportProgress { tokens_done: manifest.tokens, tokens_total: manifest.tokens });
            return Ok(ExportReport { first_step: manifest.steps, manifest: *manifest, shards_written: 0, already_complete: true });
        }
        Start::Resume(progress) => {
            drop(loader);
            loader = build_loader(Some(progress.state.clone()))?;
            *progress
        }
        Start::Fresh => {
            let progress = Progress { format: MANIFEST_FORMAT, version: version.to_string(), shape, state: loader.state(), batch_hashes: Vec::new(), shards: Vec::new() };
            write_atomically(&options.output.join(PROGRESS_NAME), &to_json_bytes(&progress))?;
            progress
        }
    };

    let first_step = loader.step();
    tracing::info!(folder = %options.output.display(), steps = shape.steps, shard_batches = shape.shard_batches, first_step, "exporting");
    let tokens_total = shape.steps * batch_tokens;
    let mut tokens_done = first_step * batch_tokens;
    on_progress(ExportProgress { tokens_done, tokens_total });

    let domain_names = loader.domain_names().to_vec();
    let row_len = config.seq_len + 1;
    let mut shards_written = 0;
    while loader.step() < shape.steps {
        let index = progress.shards.len();
        let file = shard_name(index);
        let shard_first_step = loader.step();
        let batches = shape.shard_batches.min(shape.steps - shard_first_step);
        let path = options.output.join(&file);
        let mut on_batch = |batch: &Batch| {
            progress.batch_hashes.push(to_hex(&batch.hash()));
            tokens_done += batch.tokens.len() as u64;
            on_progress(ExportProgress { tokens_done, tokens_total });
        };
        let written = match write_shard(&mut loader, &path, batches, row_len, &domain_names, &mut on_batch) {
            Ok(written) => written,
            Err(error) => {
                // Free the space of the unfinished shard, so that a full disk has room again.
                let _ = std::fs::remove_file(shard::temporary_path(&path));
                return Err(error);
            }
        };
        progress.shards.push(ShardEntry { file, first_step: shard_first_step, batches, rows: written.rows, tokens: written.tokens, bytes: written.bytes, sha256: written.sha256 });
        progress.state = loader.state();
        write_atomically(&options.output.join(PROGRESS_NAME), &to_json_bytes(&progress))?;
        shards_written += 1;
        tracing::debug!(shard = index, step = loader.step(), "shard written");
    }

    let manifest = build_manifest(config, &loader, &progress)?;
    write_atomically(&options.output.join(MANIFEST_NAME), &to_json_bytes(&manifest))?;
    let progress_path = options.output.join(PROGRESS_NAME);
    std::fs::remove_file(&progress_path).map_err(|source| Error::io("cannot remove progress file", &progress_path, source))?;
    tracing::info!(folder = %options.output.display(), steps = manifest.steps, digest = %manifest.digest, "export complete");
    Ok(ExportReport { manifest, first_step, shards_written, already_complete: false })
}

/// Writes the next `batches` batches of `loader` to the shard `path`, calling `on_batch` after each.
fn write_shard(loader: &mut Loader, path: &Path, batches: u64, row_len: usize, domain_names: &[String], on_batch: &mut dyn FnMut(&Batch)) -> Result<shard::WrittenShard> {
    let mut writer = ShardWriter::create(path, row_len)?;
    for _ in 0..batches {
        let batch = loader.next().expect("the loader never ends by itself")?;
        writer.write(&batch, domain_names)?;
        on_batch(&batch);
    }
    writer.finish()
}

/// The manifest of a finished export: the loader after its last batch and the progress so far.
fn build_manifest(config: &Config, loader: &Loader, progress: &Progress) -> Result<Manifest> {
    let mut digest = StreamDigest::new();
    for hex in &progress.batch_hashes {
        digest.update(&parse_hash(hex)?);
    }
    let state = loader.state();
    Ok(Manifest {
        format: MANIFEST_FORMAT,
        version: env!("CARGO_PKG_VERSION").to_string(),
        config: config.clone(),
        fingerprint: state.fingerprint,
        seed: config.seed,
        seq_len: config.seq_len,
        batch_size: config.batch_size,
        steps: progress.shape.steps,
        shard_batches: progress.shape.shard_batches,
        tokens: progress.shards.iter().map(|shard| shard.tokens).sum(),
        digest: digest.hex(),
        mixture_versions: loader.mixture_versions().to_vec(),
        domains: loader.stats(),
        shards: progress.shards.clone(),
    })
}

/// Parses a 32-digit hex batch hash from the progress file.
fn parse_hash(hex: &str) -> Result<[u8; 16]> {
    let invalid = || Error::Output { path: PathBuf::from(PROGRESS_NAME), message: format!("batch hash {hex:?} is not 32 hex digits; pass --overwrite to start the export again") };
    if hex.len() != 32 || !hex.is_ascii() {
        return Err(invalid());
    }
    let mut hash = [0u8; 16];
    for (index, byte) in hash.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * index..2 * index + 2], 16).map_err(|_| invalid())?;
    }
    Ok(hash)
}
