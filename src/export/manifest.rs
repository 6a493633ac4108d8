//! The manifest of a finished export, and the hidden progress file of an unfinished one.
//!
//! Both are JSON. The manifest contains no timestamp and nothing else that changes between reruns of
//! the same command, so reruns write the same bytes.

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::pipeline::{DomainStats, Fingerprint, LoaderState};

/// The version of the manifest and progress file formats written by this build.
pub const MANIFEST_FORMAT: u32 = 1;

/// The manifest's file name in the output folder.
pub const MANIFEST_NAME: &str = "manifest.json";

/// The hidden progress file's name in the output folder.
pub const PROGRESS_NAME: &str = ".progress.json";

/// The file name of shard `index`: `shard-00000.parquet`, `shard-00001.parquet`, ...
pub fn shard_name(index: usize) -> String {
    format!("shard-{index:05}.parquet")
}

/// Whether `name` has the form of a shard name, `shard-<digits>.parquet`.
pub fn is_shard_name(name: &str) -> bool {
    name.strip_prefix("shard-").and_then(|rest| rest.strip_suffix(".parquet")).is_some_and(|digits| !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()))
}

/// The arguments that shape an export's files; two runs with equal arguments and fingerprints
/// write the same files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExportShape {
    /// Batches exported: the requested tokens rounded up to whole batches.
    pub steps: u64,
    /// Batches per shard; the last shard may hold fewer.
    pub shard_batches: u64,
}

/// One shard of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardEntry {
    /// The file name, relative to the output folder.
    pub file: String,
    /// The step of the shard's first batch.
    pub first_step: u64,
    /// Batches in the shard.
    pub batches: u64,
    /// Rows (sequences) in the shard: `batches * batch_size`.
    pub rows: u64,
    /// Tokens in the shard: `rows * (seq_len + 1)`.
    pub tokens: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, as 64 lowercase hex digits.
    pub sha256: String,
}

pub use crate::pipeline::MixtureVersion;

/// `manifest.json`: what an export holds and how it was made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// The manifest format, [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The chameleon version that wrote the export.
    pub version: String,
    /// The configuration, with paths resolved.
    pub config: Config,
    /// Everything that shaped the stream (see [`Fingerprint`]).
    pub fingerprint: Fingerprint,
    /// The seed of the stream.
    pub seed: u64,
    /// Tokens a sequence feeds the model; rows hold `seq_len + 1` tokens.
    pub seq_len: usize,
    /// Rows per batch.
    pub batch_size: usize,
    /// Batches exported, from step 0.
    pub steps: u64,
    /// Batches per shard; the last shard may hold fewer.
    pub shard_batches: u64,
    /// Tokens exported: `steps * batch_size * (seq_len + 1)`.
    pub tokens: u64,
    /// The stream digest over the exported batches, as `chameleon stream --json` reports it for
    /// the same configuration and steps.
    pub digest: String,
    /// The mixtures the batches were drawn from, in step order.
    pub mixture_versions: Vec<MixtureVersion>,
    /// Per-domain counts after the last batch.
    pub domains: Vec<DomainStats>,
    /// The shards, in step order.
    pub shards: Vec<ShardEntry>,
}

/// The parts of a manifest that identify an export, read leniently so that a manifest of another
/// version or shape still names what differs.
#[derive(Debug, Clone, Deserialize)]
pub(crate) struct ManifestIdentity {
    pub format: u32,
    pub version: String,
    pub fingerprint: Fingerprint,
    pub steps: u64,
    pub shard_batches: u64,
    pub shards: Vec<ShardEntry>,
}

/// `.progress.json`: where an unfinished export continues, rewritten after every shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Progress {
    /// The format, [`MANIFEST_FORMAT`].
    pub format: u32,
    /// The chameleon version that started the export.
    pub version: String,
    /// The export's shape.
    pub shape: ExportShape,
    /// The loader state after the last complete shard; its fingerprint identifies the stream.
    pub state: LoaderState,
    /// The hash of every batch in the complete shards, as hex, in step order.
    pub batch_hashes: Vec<String>,
    /// The complete shards.
    pub shards: Vec<ShardEntry>,
}

/// Serialises a manifest or progress file as pretty JSON with a final newline.
pub(crate) fn to_json_bytes<T: Serialize>(value: &T) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(value).expect("manifest and progress types serialise");
    bytes.push(b'\n');
    bytes
}
