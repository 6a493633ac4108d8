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

mod builder;
mod changes;
mod domains;
mod handle;
mod mixing;
mod order;
pub mod reader;
mod state;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use serde::{Deserialize, Serialize};

pub use builder::LoaderBuilder;
pub use handle::{ChangeTicket, DomainSpec, EmbeddingInput, MixtureHandle};
pub use mixing::{MixtureDomain, MixtureRuntime, MixtureVersion};
pub use order::{epoch_units, EpochPlan, Unit};
use reader::{DomainCursor, Permits, ReaderTask, Sequence};
pub use state::{DomainState, Fingerprint, LoaderState, Partition, STATE_FORMAT};

use crate::batch::Batch;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::sampler::Sampler;
use crate::source::{DomainSource, Tokenizer};

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
    /// The configuration, with the domains added during the run appended.
    config: Config,
    permits: Permits,
    partition: Partition,
    /// The fingerprint of the configuration the run started from.
    fingerprint: Fingerprint,
    names: Arc<Vec<String>>,
    domains: Vec<DomainRuntime>,
    sampler: Sampler,
    mixture: MixtureRuntime,
    /// Domains added through a handle, in order, for the state.
    added: Vec<DomainSpec>,
    tokenizers: HashMap<String, Arc<Tokenizer>>,
    messages: Receiver<handle::Message>,
    handle_sender: Sender<handle::Message>,
    view: Arc<Mutex<handle::SharedView>>,
    step: u64,
    failed: bool,
    panic_after: Option<(String, u64)>,
    /// The thread watching `[watch] root`, when set.
    watcher: Option<crate::watch::WatcherThread>,
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

    /// The current mixture version: domains, weights, policy and scores.
    pub fn mixture(&self) -> &MixtureVersion {
        self.mixture.current()
    }

    /// Every mixture version so far, oldest first.
    pub fn mixture_versions(&self) -> &[MixtureVersion] {
        &self.mixture.versions
    }

    /// A handle that changes this loader's mixture from any thread; changes apply at the next
    /// batch boundary.
    pub fn handle(&self) -> MixtureHandle {
        MixtureHandle { sender: self.handle_sender.clone(), view: Arc::clone(&self.view) }
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
            .zip(self.mixture.weights_at(self.step))
            .map(|(domain, weight)| DomainStats {
                name: domain.source.name.clone(),
                target_weight: weight,
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
            mixture: self.mixture.clone(),
            added_domains: self.added.clone(),
        }
    }

    /// The rank and world size this loader reads for.
    pub fn partition(&self) -> Partition {
        self.partition
    }

    /// Starts the reader of every domain with a positive weight now.
    fn start_positive_readers(&mut self) -> Result<()> {
        let weights = self.mixture.weights_at(self.step);
        for index in 0..self.domains.len() {
            if weights[index] > 0.0 && self.domains[index].receiver.is_none() {
                self.start_reader(index)?;
            }
        }
        Ok(())
    }

    fn start_reader(&mut self, index: usize) -> Result<()> {
        let (sender, receiver) = crossbeam_channel::bounded(self.config.prefetch_sequences_for(self.domains.len()));
        let domain = &mut self.domains[index];
        let panic_after = self.panic_after.as_ref().filter(|(name, _)| *name == domain.source.name).map(|(_, count)| *count);
        let task = ReaderTask {
            source: domain.source.clone(),
            seed: self.config.seed,
            seq_len: self.config.seq_len,
            start: domain.cursor,
            skip_bad_shards: self.config.skip_bad_shards,
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

    /// Applies pending mixture changes and sets the sampler's weights for this step.
    fn prepare_step(&mut self) -> Result<()> {
        if !self.messages.is_empty() {
            self.apply_requests();
        }
        let weights = self.mixture.weights_at(self.step);
        if weights != self.sampler.weights() {
            self.sampler.set_weights(&weights)?;
        }
        Ok(())
    }

    fn next_batch(&mut self) -> Result<Batch> {
        self.prepare_step()?;
        let (seq_len, batch_size) = (self.config.seq_len, self.config.batch_size);
        let width = seq_len + 1;
        let mut tokens = Vec::with_capacity(batch_size * width);
        let mut domains = Vec::with_capacity(batch_size);
        let mut doc_starts = Vec::new();
        let mut doc_start_offsets = Vec::with_capacity(batch_size + 1);
        doc_start_offsets.push(0);

        for _ in 0..batch_size {
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

        let batch = Batch { step: self.step, seq_len, tokens, domains, doc_starts, doc_start_offsets, domain_names: Arc::clone(&self.names) };
        self.step += 1;
        Ok(batch)
    }

    fn shut_down(&mut self) {
        self.watcher = None;
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
        // The step and the token counts include the batches before a resume.
        let tokens: u64 = self.domains.iter().map(|domain| domain.tokens).sum();
        tracing::info!(step = self.step, tokens, failed = self.failed, "loader stopped");
    }
}
