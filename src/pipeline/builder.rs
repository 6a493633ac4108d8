//! [`LoaderBuilder`]: opens the domains, computes the mixture, restores a saved state and starts
//! the readers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::domains::{embed_domain, embed_new_domain, mixture_domain, needs_embeddings};
use super::handle::{DomainSpec, EmbeddingInput, SharedView};
use super::mixing::MixtureRuntime;
use super::reader::{DomainCursor, Permits};
use super::state::{Fingerprint, LoaderState, Partition};
use super::{DomainRuntime, Loader};
use crate::config::Config;
use crate::error::{Error, Result};
use crate::mixture::MixtureConfig;
use crate::sampler::Sampler;
use crate::source::{DomainSource, Tokenizer};

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

    /// Decode parallelism: how many readers may decode at once. Default: the available cores.
    /// The batches are the same whatever this is.
    pub fn threads(mut self, threads: usize) -> LoaderBuilder {
        self.threads = Some(threads.max(1));
        self
    }

    /// Reads rank `partition.rank` of `partition.world_size` (see [`Partition`]). Default:
    /// [`Partition::from_env`], from `RANK` and `WORLD_SIZE`, else rank 0 of 1.
    pub fn partition(mut self, partition: Partition) -> LoaderBuilder {
        self.partition = Some(partition);
        self
    }

    /// Continues from a state saved by [`Loader::state`], with its mixture history and the
    /// domains added during the run.
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
    /// mixture errors for unusable weights or embeddings, [`Error::EmptyDomain`] for a domain
    /// with a positive weight and no rows, and [`Error::Resume`] for a state that does not fit.
    pub fn build(self) -> Result<Loader> {
        let mut config = self.config;
        config.validate()?;
        let partition = match self.partition {
            Some(partition) => Partition::new(partition.rank, partition.world_size)?,
            None => Partition::from_env()?,
        };
        let threads = self.threads.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |cores| cores.get()));

        let mut tokenizers: HashMap<String, Arc<Tokenizer>> = HashMap::new();
        let mut sources = Vec::with_capacity(config.domains.len());
        for index in 0..config.domains.len() {
            sources.push(DomainSource::open(&config, index, &mut tokenizers)?);
        }
        let fingerprint = Fingerprint::new(&config, &sources, partition);

        // Domains added during the saved run come back in the order they were added.
        let added: Vec<DomainSpec> = self.state.as_ref().map(|state| state.added_domains.clone()).unwrap_or_default();
        for spec in &added {
            config.domains.push(spec.config.clone());
            sources.push(DomainSource::open(&config, config.domains.len() - 1, &mut tokenizers)?);
        }

        let mixture = match &self.state {
            Some(state) => {
                let names: Vec<String> = sources[..fingerprint_domains(&fingerprint)].iter().map(|source| source.name.clone()).collect();
                state.check_fits(&fingerprint, &names)?;
                state.mixture.clone()
            }
            None => start_mixture(&config, &sources)?,
        };
        check_rows(&sources, &mixture.weights_at(0))?;

        let step = self.state.as_ref().map_or(0, |state| state.step);
        let mut sampler = Sampler::for_rank(config.seed, partition.rank, &mixture.weights_at(step))?;
        let mut domains: Vec<DomainRuntime> = sources.into_iter().map(|source| DomainRuntime::new(source, DomainCursor::default())).collect();
        if let Some(state) = &self.state {
            sampler.restore(state.sampler)?;
            for (domain, saved) in domains.iter_mut().zip(&state.domains) {
                domain.cursor = saved.cursor;
                domain.tokens = saved.tokens;
                domain.sequences = saved.sequences;
            }
        }

        let (sender, messages) = crossbeam_channel::unbounded();
        let view = Arc::new(Mutex::new(SharedView { versions: mixture.versions.clone() }));
        let names = Arc::new(domains.iter().map(|domain| domain.source.name.clone()).collect::<Vec<_>>());
        let mut loader = Loader {
            config,
            permits: Permits::new(threads),
            partition,
            fingerprint,
            names,
            domains,
            sampler,
            mixture,
            added,
            tokenizers,
            messages,
            handle_sender: sender,
            view,
            step,
            failed: false,
            panic_after: self.panic_after,
            watcher: None,
        };
        loader.start_positive_readers()?;
        if let Some(watch) = loader.config.watch.clone() {
            // Folders of the configured domains count as known, whatever their domain names.
            let mut known: Vec<String> = loader.names.to_vec();
            known.extend(loader.config.domains.iter().filter_map(|domain| domain.path.file_name().map(|name| name.to_string_lossy().into_owned())));
            tracing::info!(root = %watch.root.display(), poll_interval_ms = watch.poll_interval_ms, "watching for new domains");
            loader.watcher = Some(crate::watch::WatcherThread::spawn(watch, known, loader.handle())?);
        }
        tracing::info!(threads, rank = partition.rank, world_size = partition.world_size, step, "loader started");
        Ok(loader)
    }
}

/// The number of domains the configuration itself names, from its fingerprint.
fn fingerprint_domains(fingerprint: &Fingerprint) -> usize {
    fingerprint.0.keys().filter(|key| key.starts_with("domains.") && key.ends_with(".path")).count()
}

/// Computes version 0 of the mixture: token counts always, embeddings when the policy needs them.
fn start_mixture(config: &Config, sources: &[DomainSource]) -> Result<MixtureRuntime> {
    let mut domains: Vec<_> = config.domains.iter().zip(sources).map(|(domain, source)| mixture_domain(source, domain.weight)).collect();
    if needs_embeddings(&config.mixture) {
        for (domain, source) in domains.iter_mut().zip(sources) {
            domain.embedding = Some(embed_domain(&config.mixture, config.seed, source)?);
        }
    }
    let runtime = MixtureRuntime::start(config.mixture.clone(), domains, config.mixture.ramp_steps)?;
    let version = runtime.current();
    let weights = by_domain(&version.domains, &version.weights);
    let scores = version.scores.as_deref().map(|scores| by_domain(&version.domains, scores));
    tracing::info!(policy = %version.policy, %weights, scores = scores.as_deref().unwrap_or("none"), effective_dimension = ?version.effective_dimension, "mixture computed");
    Ok(runtime)
}

/// Formats `name=value` pairs to four significant digits, so a log line shows weights without
/// float noise and the small weights of many domains stay readable.
fn by_domain(domains: &[String], values: &[f64]) -> String {
    let pairs: Vec<String> = domains.iter().zip(values).map(|(name, value)| format!("{name}={}", format_significant(*value))).collect();
    pairs.join(" ")
}

fn format_significant(value: f64) -> String {
    if value == 0.0 || !value.is_finite() {
        return value.to_string();
    }
    let decimals = (3 - value.abs().log10().floor() as i32).clamp(0, 12) as usize;
    format!("{value:.decimals$}")
}

/// Rejects a domain with a positive weight and no rows at all, which no reader could ever serve.
pub(super) fn check_rows(sources: &[DomainSource], weights: &[f64]) -> Result<()> {
    for (source, weight) in sources.iter().zip(weights) {
        if *weight > 0.0 && source.num_rows() == 0 {
            let reason = if source.shards.is_empty() { "every shard is unreadable" } else { "every shard has zero rows" };
            return Err(Error::EmptyDomain { domain: source.name.clone(), reason: reason.to_string() });
        }
    }
    Ok(())
}

/// Embeds a domain added during the run: always when the spec carries its embedding, and with
/// the mixture's embedder when the current policy needs embeddings.
pub(super) fn embedding_for(mixture: &MixtureConfig, seed: u64, source: &DomainSource, spec: &DomainSpec) -> Result<Option<Vec<f64>>> {
    if spec.embedding == EmbeddingInput::Hashed && !needs_embeddings(mixture) {
        return Ok(None);
    }
    embed_new_domain(mixture, seed, source, &spec.embedding).map(Some)
}

#[cfg(test)]
mod tests {
    use super::format_significant;

    #[test]
    fn log_values_keep_four_significant_digits() {
        assert_eq!(format_significant(0.30000000000000004), "0.3000");
        assert_eq!(format_significant(0.0012345678), "0.001235");
        assert_eq!(format_significant(12.5), "12.50");
        assert_eq!(format_significant(0.0), "0");
    }
}
