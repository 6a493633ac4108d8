//! Loader state for exact resume, the fingerprint that guards it, and rank partitioning.
//!
//! A [`LoaderState`] is small: the next step, the sampler's generator position, and per domain the
//! cursor just past the last sequence the consumer took, with a few counters. It never holds token
//! data, because everything after a cursor can be re-derived from the shards and the seed.
//!
//! The [`Fingerprint`] records everything that shapes the stream, field by field, so that resuming
//! with a configuration that differs fails with the name of the field.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

use super::handle::DomainSpec;
use super::mixing::MixtureRuntime;
use super::reader::DomainCursor;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sampler::SamplerState;
use crate::source::DomainSource;

/// The version of the state format written by this build.
pub const STATE_FORMAT: u32 = 1;

/// Which part of every domain this process reads: rank `rank` of `world_size`.
///
/// In each epoch a domain's row groups come in one global order (see
/// [`epoch_units`](super::epoch_units)). When there are at least as many row groups as ranks,
/// rank `r` reads the row groups at positions `r, r + W, r + 2W, ...` of that order; otherwise
/// every rank visits every row group and reads the rows at positions `r, r + W, ...` of the
/// epoch's global row order. Either way the ranks' documents are disjoint and together cover each
/// document exactly once per epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Partition {
    /// This process's rank, from 0.
    pub rank: usize,
    /// The number of ranks.
    pub world_size: usize,
}

impl Default for Partition {
    fn default() -> Self {
        Partition { rank: 0, world_size: 1 }
    }
}

impl Partition {
    /// Makes a partition, checking `rank < world_size`.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when the world size is 0 or the rank is not below it.
    pub fn new(rank: usize, world_size: usize) -> Result<Partition> {
        if world_size == 0 {
            return Err(Error::config("world size 0 is invalid; it is the number of ranks, at least 1"));
        }
        if rank >= world_size {
            return Err(Error::config(format!("rank {rank} of world size {world_size} is invalid; the rank must be below the world size")));
        }
        Ok(Partition { rank, world_size })
    }

    /// Reads `RANK` and `WORLD_SIZE` from the environment, as torchrun sets them; rank 0 of 1
    /// when neither is set.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when only one is set, either is not a number, or the rank is not below
    /// the world size.
    pub fn from_env() -> Result<Partition> {
        let read = |name: &str| -> Result<Option<usize>> {
            match std::env::var(name) {
                Ok(value) => value
                    .trim()
                    .parse()
                    .map(Some)
                    .map_err(|_| Error::config(format!("environment variable {name}={value:?} is not a whole number"))),
                Err(_) => Ok(None),
            }
        };
        Partition::from_parts(read("RANK")?, read("WORLD_SIZE")?)
    }

    /// Makes a partition from a rank and a world size that are both given or both left out
    /// (rank 0 of 1), such as the `--rank` and `--world-size` options.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] when only one is given, or as [`Partition::new`].
    pub fn from_parts(rank: Option<usize>, world_size: Option<usize>) -> Result<Partition> {
        match (rank, world_size) {
            (None, None) => Ok(Partition::default()),
            (Some(rank), Some(world_size)) => Partition::new(rank, world_size),
            (Some(_), None) => Err(Error::config("a rank is set (--rank or RANK) but no world size; pass --world-size or set WORLD_SIZE too")),
            (None, Some(_)) => Err(Error::config("a world size is set (--world-size or WORLD_SIZE) but no rank; pass --rank or set RANK too")),
        }
    }
}

/// Everything that shapes the stream, as named fields with readable values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Fingerprint(pub BTreeMap<String, String>);

impl Fingerprint {
    /// Takes the fingerprint of a configuration, its opened domains and the partition.
    pub fn new(config: &Config, sources: &[DomainSource], partition: Partition) -> Fingerprint {
        let mut fields = BTreeMap::new();
        fields.insert("seed".to_string(), config.seed.to_string());
        fields.insert("seq_len".to_string(), config.seq_len.to_string());
        fields.insert("batch_size".to_string(), config.batch_size.to_string());
        fields.insert("skip_bad_shards".to_string(), config.skip_bad_shards.to_string());
        fields.insert("rank".to_string(), partition.rank.to_string());
        fields.insert("world_size".to_string(), partition.world_size.to_string());
        fields.insert("mixture".to_string(), serde_json::to_string(&config.mixture).expect("the mixture configuration serialises"));
        fields.insert("domains".to_string(), sources.iter().map(|source| source.name.as_str()).collect::<Vec<_>>().join(","));

        for (domain, source) in config.domains.iter().zip(sources) {
            let key = |field: &str| format!("domains.{}.{field}", source.name);
            fields.insert(key("path"), domain.path.display().to_string());
            fields.insert(key("column"), source.reader_description());
            fields.insert(key("eos_token"), source.eos_token.to_string());
            fields.insert(key("weight"), format!("{:?}", domain.weight));
            fields.insert(key("files"), files_summary(source));
        }
        Fingerprint(fields)
    }

    /// Checks that `self` (from a saved state) equals `current`.
    ///
    /// # Errors
    ///
    /// [`Error::Resume`] naming the first field that differs, with both values.
    pub fn check(&self, current: &Fingerprint) -> Result<()> {
        let keys: std::collections::BTreeSet<&String> = self.0.keys().chain(current.0.keys()).collect();
        for key in keys {
            let saved = self.0.get(key);
            let now = current.0.get(key);
            if saved != now {
                let show = |value: Option<&String>| value.map_or_else(|| "nothing".to_string(), |value| format!("{value:?}"));
                let hint = if key == "world_size" || key == "rank" {
                    "; a state continues only on the rank and world size that saved it"
                } else {
                    "; resume with the configuration that saved the state, or start a new run"
                };
                return Err(Error::Resume {
                    message: format!("`{key}` differs: the state has {}, the configuration has {}{hint}", show(saved), show(now)),
                });
            }
        }
        Ok(())
    }
}

/// The number of shards and a hash of their names, sizes and row counts.
fn files_summary(source: &DomainSource) -> String {
    let mut hasher = Xxh3::new();
    for shard in &source.shards {
        let name = shard.path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        hasher.update(&(name.len() as u64).to_le_bytes());
        hasher.update(name.as_bytes());
        hasher.update(&shard.num_rows().to_le_bytes());
        hasher.update(&shard.num_row_groups().to_le_bytes());
    }
    format!("{} shards, {} skipped, xxh3 {:032x}", source.shards.len(), source.skipped.len(), hasher.digest128())
}

/// One domain's part of the state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DomainState {
    /// The domain.
    pub name: String,
    /// The end of the last sequence the consumer took from it.
    pub cursor: DomainCursor,
    /// Tokens in the rows it filled.
    pub tokens: u64,
    /// Rows it filled.
    pub sequences: u64,
}

/// Everything needed to continue a stream exactly: small, and free of token data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoaderState {
    /// The state format, [`STATE_FORMAT`].
    pub format: u32,
    /// The next batch's step.
    pub step: u64,
    /// What shaped the stream.
    pub fingerprint: Fingerprint,
    /// The domain sampler's generator position.
    pub sampler: SamplerState,
    /// Per domain, in id order (the configured domains, then those added during the run).
    pub domains: Vec<DomainState>,
    /// The mixture: its history of versions, current policy and per-domain inputs.
    pub mixture: MixtureRuntime,
    /// Domains added during the run, in order.
    pub added_domains: Vec<DomainSpec>,
}

impl LoaderState {
    /// Checks that the state was saved by a loader of the same format, fingerprint and domains.
    ///
    /// # Errors
    ///
    /// [`Error::Resume`] naming what differs.
    pub fn check_fits(&self, current: &Fingerprint, domains: &[String]) -> Result<()> {
        if self.format != STATE_FORMAT {
            return Err(Error::Resume { message: format!("the state has format {}, this build reads format {STATE_FORMAT}", self.format) });
        }
        self.fingerprint.check(current)?;
        let saved: Vec<&str> = self.domains.iter().take(domains.len()).map(|domain| domain.name.as_str()).collect();
        if saved != domains.iter().map(String::as_str).collect::<Vec<_>>() || self.domains.len() != domains.len() + self.added_domains.len() {
            return Err(Error::Resume { message: format!("the state's domains {saved:?} differ from the configuration's {domains:?}") });
        }
        Ok(())
    }
}
