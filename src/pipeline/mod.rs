//! Pipeline: reader threads, bounded channels, and the [`Loader`] that turns them into batches.
//!
//! ```text
//!  reader (domain 0) ──bounded channel──┐
//!  reader (domain 1) ──bounded channel──┼──> Loader: sampler draws a domain per row,
//!  reader (domain k) ──bounded channel──┘    takes that domain's next sequence, yields Batch
//! ```
//!
//! Each domain has one reader thread that decodes row groups, packs documents into sequences and
//! sends them over a bounded channel (see [`reader`]). The loader, on the consumer's thread, draws
//! the domain of each row with the seeded [`Sampler`] and receives the next sequence of that
//! domain. Because each domain's sequences and the draws are both fixed by the seed, the batches
//! do not depend on thread timing or on `threads`.
//!
//! Dropping the loader disconnects every channel and joins the readers. A reader's error or panic
//! reaches the consumer as an `Err` from [`Loader::next`], after which the loader yields nothing.

mod order;
pub mod reader;
mod state;

use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use serde::{Deserialize, Serialize};

pub use order::{epoch_units, EpochPlan, Unit};
use reader::{DomainCursor, Permits, ReaderTask, Sequence};
pub use state::{DomainState, Fingerprint, LoaderState, Partition, STATE_FORMAT};

use crate::batch::Batch;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mixture::{self, DomainSummary, Mixture};
use crate::sampler::Sampler;
use crate::source::DomainSource;

/// Builds a [`Loader`] with options that do not change the stream.
#[derive(Debug, Clone)]
#[must_use]
pub struct LoaderBuilder {
    config: Config,
    threads: Option<usize>,
    partition: Option<Partition>,
    state: Option<LoaderState>,
    panic_after: Option<(String, u64)>,
}

impl LoaderBuilder {
    /// Starts a builder over a validated configuration.
    pub fn new(config: Config) -> LoaderBuilder {
        LoaderBuilder { config, threads: None, partition: None, state: None, panic_after: None }
    }

    /// Reads rank `partition.rank` of `partition.world_size` (see [`Partition`]). Default:
    /// [`Partition::from_env`], from `RANK` and `WORLD_SIZE`, else rank 0 of 1.
    pub fn partition(mut self, partition: Partition) -> LoaderBuilder {
        self.partition = Some(partition);
        self
    }

    /// Decode parallelism: how many readers may decode at once. Default: the available cores.
    /// The batches are the same whatever this is.
    pub fn threads(mut self, threads: usize) -> LoaderBuilder {
        self.threads = Some(threads.max(1));
        self
    }

    /// Continues from a state saved by [`Loader::state`].
    pub fn resume(mut self, state: LoaderState) -> LoaderBuilder {
        self.state = Some(state);
        self
    }

    /// Fault injection for tests: the reader of `domain` panics after sending `sequences`
    /// sequences.
    #[doc(hidden)]
    pub fn inject_reader_panic(mut self, domain: &str, sequences: u64) -> LoaderBuilder {
        self.panic_after = Some((domain.to_string(), sequences));
        self
    }

    /// Opens every domain, computes the mixture and starts the readers.
    ///
    /// # Errors
    ///
    /// Configuration, shard and schema errors from opening the domains ([`DomainSource::open`]),
    /// [`Error::Weights`] for unusable weights, [`Error::EmptyDomain`] for a domain with a
    /// positive weight and no rows, and [`Error::Resume`] for a state that does not fit.
    pub fn build(self) -> Result<Loader> {
        let config = self.config;
        config.validate()?;
        let partition = match self.partition {
            Some(partition) => Partition::new(partition.rank, partition.world_size)?,
            None => Partition::from_env()?,
        };
        let threads = self.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()));

        let mut tokenizers = HashMap::new();
        let mut sources = Vec::with_capacity(config.domains.len());
        for index in 0..config.domains.len() {
            sources.push(DomainSource::open(&config, index, &mut tokenizers)?);
        }

        let summaries: Vec<_> = config.domains.iter().map(|domain| DomainSummary { name: &domain.name, weight: domain.weight }).collect();
        let mixture = mixture::compute(&config.mixture, &summaries)?;
        for (source, weight) in sources.iter().zip(&mixture.weights) {
            if *weight > 0.0 && source.num_rows() == 0 {
                let reason = if source.shards.is_empty() { "every shard is unreadable" } else { "every shard has zero rows" };
                return Err(Error::EmptyDomain { domain: source.name.clone(), reason: reason.to_string() });
            }
        }
        tracing::info!(domains = sources.len(), policy = ?mixture.policy, weights = ?mixture.weights, "mixture computed");

        let names = Arc::new(sources.iter().map(|source| source.name.clone()).collect::<Vec<_>>());
        let fingerprint = Fingerprint::new(&config, &sources, partition);
        let mut sampler = Sampler::for_rank(config.seed, partition.rank, &mixture.weights)?;
        let mut domains: Vec<DomainRuntime> = sources.into_iter().map(|source| DomainRuntime::new(source, DomainCursor::default())).collect();
        let mut step = 0;
        if let Some(state) = &self.state {
            state.check_fits(&fingerprint, &names)?;
            sampler.restore(state.sampler)?;
            for (domain, saved) in domains.iter_mut().zip(&state.domains) {
                domain.cursor = saved.cursor;
                domain.tokens = saved.tokens;
                domain.sequences = saved.sequences;
            }
            step = state.step;
        }

        let mut loader = Loader {
            seq_len: config.seq_len,
            batch_size: config.batch_size,
            seed: config.seed,
            prefetch_sequences: config.prefetch_sequences,
            skip_bad_shards: config.skip_bad_shards,
            permits: Permits::new(threads),
            partition,
            fingerprint,
            names,
            domains,
            sampler,
            mixture,
            step,
            failed: false,
            panic_after: self.panic_after,
        };
        for index in 0..loader.domains.len() {
            if loader.mixture.weights[index] > 0.0 {
                loader.start_reader(index)?;
            }
        }
        tracing::info!(threads, rank = partition.rank, world_size = partition.world_size, step, "loader started");
        Ok(loader)
    }
}

/// One domain's reader, channel and counts, as the consumer sees them.
struct DomainRuntime {
    source: DomainSource,
    receiver: Option<Receiver<Result<Sequence>>>,
    worker: Option<JoinHandle<()>>,
    /// The end of the last sequence the consumer took.
    cursor: DomainCursor,
    tokens: u64,
    sequences: u64,
}

impl DomainRuntime {
    fn new(source: DomainSource, cursor: DomainCursor) -> DomainRuntime {
        DomainRuntime { source, receiver: None, worker: None, cursor, tokens: 0, sequences: 0 }
    }
}

/// A streaming loader of packed token batches from several domains mixed by weight.
///
/// An `Iterator<Item = Result<Batch>>` that never ends by itself: domains start a new epoch when
/// they run out. Take as many batches as the run needs.
pub struct Loader {
    seq_len: usize,
    batch_size: usize,
    seed: u64,
    prefetch_sequences: usize,
    skip_bad_shards: bool,
    permits: Permits,
    partition: Partition,
    fingerprint: Fingerprint,
    names: Arc<Vec<String>>,
    domains: Vec<DomainRuntime>,
    sampler: Sampler,
    mixture: Mixture,
    step: u64,
    failed: bool,
    panic_after: Option<(String, u64)>,
}

impl std::fmt::Debug for Loader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loader").field("domains", &self.names).field("step", &self.step).finish_non_exhaustive()
    }
}

/// Per-domain counts of what the consumer has received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainStats {
    /// The domain.
    pub name: String,
    /// Its weight in the current mixture.
    pub target_weight: f64,
    /// Tokens in the rows it filled.
    pub tokens: u64,
    /// Rows (sequences) it filled.
    pub sequences: u64,
    /// Epochs its rows came from: 1 while the first pass lasts, 2 once a row holds tokens of the
    /// second pass, and so on; 0 when it filled no row.
    pub epochs: u64,
    /// Null rows skipped.
    pub null_rows: u64,
    /// Shards left out at start because they were unreadable.
    pub skipped_shards: u64,
    /// Row groups skipped because they were unreadable.
    pub skipped_row_groups: u64,
}

impl Loader {
    /// Builds a loader with default options; see [`LoaderBuilder`] for more.
    ///
    /// # Errors
    ///
    /// As [`LoaderBuilder::build`].
    pub fn new(config: Config) -> Result<Loader> {
        LoaderBuilder::new(config).build()
    }

    /// Starts a [`LoaderBuilder`].
    pub fn builder(config: Config) -> LoaderBuilder {
        LoaderBuilder::new(config)
    }

    /// The mixture the sampler draws from.
    pub fn mixture(&self) -> &Mixture {
        &self.mixture
    }

    /// Domain names, in id order.
    pub fn domain_names(&self) -> &[String] {
        &self.names
    }

    /// The step of the next batch.
    pub fn step(&self) -> u64 {
        self.step
    }

    /// Per-domain counts of what the consumer has received so far.
    pub fn stats(&self) -> Vec<DomainStats> {
        self.domains
            .iter()
            .zip(&self.mixture.weights)
            .map(|(domain, weight)| DomainStats {
                name: domain.source.name.clone(),
                target_weight: *weight,
                tokens: domain.tokens,
                sequences: domain.sequences,
                epochs: if domain.sequences == 0 { 0 } else { domain.cursor.epoch + 1 },
                null_rows: domain.cursor.null_rows,
                skipped_shards: domain.source.skipped.len() as u64,
                skipped_row_groups: domain.cursor.skipped_row_groups,
            })
            .collect()
    }

    /// The state after the last batch the consumer received, for [`LoaderBuilder::resume`].
    pub fn state(&self) -> LoaderState {
        LoaderState {
            format: STATE_FORMAT,
            step: self.step,
            fingerprint: self.fingerprint.clone(),
            sampler: self.sampler.state(),
            domains: self
                .domains
                .iter()
                .map(|domain| DomainState { name: domain.source.name.clone(), cursor: domain.cursor, tokens: domain.tokens, sequences: domain.sequences })
                .collect(),
        }
    }

    /// The rank and world size this loader reads for.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    fn start_reader(&mut self, index: usize) -> Result<()> {
        let (sender, receiver) = crossbeam_channel::bounded(self.prefetch_sequences);
        let domain = &mut self.domains[index];
        let panic_after = self.panic_after.as_ref().filter(|(name, _)| *name == domain.source.name).map(|(_, count)| *count);
        let task = ReaderTask {
            source: domain.source.clone(),
            seed: self.seed,
            seq_len: self.seq_len,
            start: domain.cursor,
            skip_bad_shards: self.skip_bad_shards,
            partition: self.partition,
            sender,
            permits: self.permits.clone(),
            panic_after,
        };
        let worker = std::thread::Builder::new()
            .name(format!("chameleon-reader-{}", domain.source.name))
            .spawn(move || reader::run(task))
            .map_err(|source| Error::io("cannot start reader thread", domain.source.name.clone(), source))?;
        domain.receiver = Some(receiver);
        domain.worker = Some(worker);
        Ok(())
    }

    /// Receives the next sequence of domain `index`, turning a disconnect into an error.
    fn next_sequence(&mut self, index: usize) -> Result<Sequence> {
        if self.domains[index].receiver.is_none() {
            self.start_reader(index)?;
        }
        let domain = &mut self.domains[index];
        let receiver = domain.receiver.as_ref().expect("start_reader set the receiver");
        match receiver.recv() {
            Ok(message) => message,
            Err(_) => {
                // The reader ended without sending an error: a panic that escaped catch_unwind
                // (a panic while panicking) or a bug. Report it instead of waiting forever.
                let name = domain.source.name.clone();
                match domain.worker.take().map(JoinHandle::join) {
                    Some(Err(_)) => Err(Error::ReaderPanicked { domain: name, message: "the reader thread panicked".into() }),
                    _ => Err(Error::ReaderStopped { domain: name }),
                }
            }
        }
    }

    fn next_batch(&mut self) -> Result<Batch> {
        let width = self.seq_len + 1;
        let mut tokens = Vec::with_capacity(self.batch_size * width);
        let mut domains = Vec::with_capacity(self.batch_size);
        let mut doc_starts = Vec::new();
        let mut doc_start_offsets = Vec::with_capacity(self.batch_size + 1);
        doc_start_offsets.push(0);

        for _ in 0..self.batch_size {
            let index = self.sampler.draw();
            let sequence = self.next_sequence(index)?;
            tokens.extend_from_slice(&sequence.packed.tokens);
            doc_starts.extend_from_slice(&sequence.packed.doc_starts);
            doc_start_offsets.push(doc_starts.len());
            domains.push(index as u32);

            let domain = &mut self.domains[index];
            domain.cursor = sequence.end;
            domain.tokens += width as u64;
            domain.sequences += 1;
            sequence.recycle();
        }

        let batch = Batch { step: self.step, seq_len: self.seq_len, tokens, domains, doc_starts, doc_start_offsets, domain_names: Arc::clone(&self.names) };
        self.step += 1;
        Ok(batch)
    }

    fn shut_down(&mut self) {
        for domain in &mut self.domains {
            domain.receiver = None;
        }
        for domain in &mut self.domains {
            if let Some(worker) = domain.worker.take() {
                let _ = worker.join();
            }
        }
    }
}

impl Iterator for Loader {
    type Item = Result<Batch>;

    /// The next batch, or the first error; after an error, `None`.
    fn next(&mut self) -> Option<Result<Batch>> {
        if self.failed {
            return None;
        }
        let batch = self.next_batch();
        if batch.is_err() {
            self.failed = true;
            self.shut_down();
        }
        Some(batch)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        self.shut_down();
    }
}
