//! Mixture: the share of each domain in what the model sees.
//!
//! A [`MixtureConfig`] (the `[mixture]` table of the configuration) names a policy. [`compute`]
//! turns the policy and a [`DomainSummary`] per domain into a [`Mixture`]: one weight per domain,
//! summing to 1, that the sampler draws from.
//!
//! The policies are:
//!
//! - `static`: the `weight` given to each domain, normalised.
//! - `proportional`: weights proportional to each domain's token count.
//! - `temperature`: `p_i ∝ n_i^(1/T)` for token counts `n_i` (default `T` = 2).
//! - `unimax`: a token budget spread uniformly with at most `max_epochs` passes over any domain
//!   (Chung et al. 2023), see [`policy::unimax`].
//! - `chameleon-pretrain` and `chameleon-finetune`: Chameleon (Xie, Tonin, Cevher, ICML 2025).
//!   The kernel ridge leverage score `S_i` of each domain embedding in the centred linear kernel
//!   (see [`leverage`]) is normalised to sum to 1. Pretraining weights are
//!   `softmax((1/S_i) / T)` with default `T` = 5, so domains that share structure with the others
//!   gain weight. Finetuning weights are `softmax(S_i / T)` with default `T` = 0.2, so
//!   distinctive domains gain weight. The ridge `λ` defaults to 10.
//!
//! Domain embeddings come from files ([`embeddings`]) or from the built-in hashed embedder
//! ([`embedder`]); the caller loads them and passes them in [`DomainSummary::embedding`].
//! `min_weight` and `max_weight` bound every policy's weights ([`policy::apply_bounds`]).
//!
//! ```
//! use chameleon::mixture::{compute, DomainSummary, MixtureConfig, PolicyName};
//!
//! let config = MixtureConfig { policy: PolicyName::ChameleonPretrain, ..MixtureConfig::default() };
//! let (web, code, books) = ([1.0, 0.0, 0.2], [0.0, 1.0, 0.1], [0.8, 0.1, 0.3]);
//! let domains = [
//!     DomainSummary::new("web").with_embedding(&web),
//!     DomainSummary::new("code").with_embedding(&code),
//!     DomainSummary::new("books").with_embedding(&books),
//! ];
//! let mixture = compute(&config, &domains).unwrap();
//! assert!((mixture.weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
//! assert!(mixture.effective_dimension.unwrap() > 0.0);
//! ```

pub mod embedder;
pub mod embeddings;
pub mod leverage;
pub mod online;
pub mod policy;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The default ridge `λ` of the Chameleon policies.
pub const DEFAULT_LAMBDA: f64 = 10.0;
/// The default temperature of `chameleon-pretrain`.
pub const DEFAULT_PRETRAIN_TEMPERATURE: f64 = 5.0;
/// The default temperature of `chameleon-finetune`.
pub const DEFAULT_FINETUNE_TEMPERATURE: f64 = 0.2;
/// The default temperature of the `temperature` policy.
pub const DEFAULT_SAMPLING_TEMPERATURE: f64 = 2.0;
/// The default number of documents sampled per domain for the hashed embedder.
pub const DEFAULT_EMBED_DOCUMENTS: usize = 512;

/// The `[mixture]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureConfig {
    /// The policy that sets the weights. Default: `static`.
    #[serde(default)]
    pub policy: PolicyName,
    /// The source of domain embeddings for the Chameleon policies: `"hashed"` for the built-in
    /// hashed embedder, or a path to a folder of `<domain>.npy` files or a safetensors file. The
    /// caller resolves relative paths. See [`MixtureConfig::embedding_source`].
    #[serde(default)]
    pub embeddings: Option<String>,
    /// The ridge `λ` of the leverage scores, a positive number. Default: 10.
    #[serde(default = "default_lambda")]
    pub lambda: f64,
    /// The softmax temperature, a positive number. Default: 5 for `chameleon-pretrain`, 0.2 for
    /// `chameleon-finetune`, 2 for `temperature`; see [`MixtureConfig::temperature`].
    #[serde(default)]
    pub temperature: Option<f64>,
    /// The lowest weight any domain may get, in `[0, 1]`, with `min_weight × domains ≤ 1`.
    #[serde(default)]
    pub min_weight: Option<f64>,
    /// The highest weight any domain may get, in `[0, 1]`.
    #[serde(default)]
    pub max_weight: Option<f64>,
    /// The total number of tokens to train on, for `unimax`.
    #[serde(default)]
    pub budget_tokens: Option<u64>,
    /// The maximum number of passes over any one domain, for `unimax`.
    #[serde(default)]
    pub max_epochs: Option<f64>,
    /// The number of documents sampled from each domain for the hashed embedder. Default: 512.
    #[serde(default = "default_embed_documents")]
    pub embed_documents: usize,
    /// The dimension of the hashed embedder's embeddings. Default: 256.
    #[serde(default = "default_embed_dimension")]
    pub embed_dimension: usize,
    /// For `online-exp3`: the policy whose weights are the bandit's prior. Default: uniform.
    #[serde(default)]
    pub prior: Option<PolicyName>,
    /// For `online-exp3`: the smoothing `α` of the reward estimates, in [0, 1). Default: 0.9.
    #[serde(default)]
    pub smoothing: Option<f64>,
    /// Batches over which a mid-run change moves the weights from the old to the new ones;
    /// 0 (the default) switches at once.
    #[serde(default)]
    pub ramp_steps: u64,
}

impl Default for MixtureConfig {
    fn default() -> Self {
        MixtureConfig {
            policy: PolicyName::Static,
            embeddings: None,
            lambda: DEFAULT_LAMBDA,
            temperature: None,
            min_weight: None,
            max_weight: None,
            budget_tokens: None,
            max_epochs: None,
            embed_documents: DEFAULT_EMBED_DOCUMENTS,
            embed_dimension: embedder::HashedEmbedder::DEFAULT_DIMENSION,
            prior: None,
            smoothing: None,
            ramp_steps: 0,
        }
    }
}

fn default_lambda() -> f64 {
    DEFAULT_LAMBDA
}

fn default_embed_documents() -> usize {
    DEFAULT_EMBED_DOCUMENTS
}

fn default_embed_dimension() -> usize {
    embedder::HashedEmbedder::DEFAULT_DIMENSION
}

/// The source of domain embeddings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EmbeddingSource {
    /// The built-in [`embedder::HashedEmbedder`] over a sample of each domain's documents.
    Hashed,
    /// A folder of `<domain>.npy` files or a safetensors file, read by
    /// [`embeddings::load_embeddings`].
    Path(PathBuf),
}

impl MixtureConfig {
    /// Returns where embeddings come from, or `None` when `embeddings` is not set.
    pub fn embedding_source(&self) -> Option<EmbeddingSource> {
        match self.embeddings.as_deref() {
            None => None,
            Some("hashed") => Some(EmbeddingSource::Hashed),
            Some(path) => Some(EmbeddingSource::Path(PathBuf::from(path))),
        }
    }

    /// Returns the softmax temperature: the configured one, or the policy's default (5 for
    /// `chameleon-pretrain`, 0.2 for `chameleon-finetune`, 2 for `temperature`, and `None` for
    /// policies without one).
    pub fn temperature(&self) -> Option<f64> {
        let default = match self.policy {
            PolicyName::ChameleonPretrain => DEFAULT_PRETRAIN_TEMPERATURE,
            PolicyName::ChameleonFinetune => DEFAULT_FINETUNE_TEMPERATURE,
            PolicyName::Temperature => DEFAULT_SAMPLING_TEMPERATURE,
            PolicyName::Static | PolicyName::Proportional | PolicyName::Unimax | PolicyName::OnlineExp3 => return self.temperature,
        };
        Some(self.temperature.unwrap_or(default))
    }

    /// Checks the numeric keys and that the policy has the keys it needs.
    ///
    /// # Errors
    ///
    /// [`Error::MixtureParameter`] for a value out of range, [`Error::Config`] for a missing key.
    pub fn validate(&self) -> Result<()> {
        if !(self.lambda.is_finite() && self.lambda > 0.0) {
            return Err(Error::MixtureParameter { key: "lambda", value: self.lambda, expected: "the ridge must be a positive finite number (default 10)".into() });
        }
        if let Some(temperature) = self.temperature {
            if !(temperature.is_finite() && temperature > 0.0) {
                return Err(Error::MixtureParameter { key: "temperature", value: temperature, expected: "the softmax temperature must be a positive finite number".into() });
            }
        }
        if self.embed_documents == 0 {
            return Err(Error::MixtureParameter { key: "embed_documents", value: 0.0, expected: "sample at least 1 document per domain (default 512)".into() });
        }
        if self.embed_dimension == 0 {
            return Err(Error::MixtureParameter { key: "embed_dimension", value: 0.0, expected: "the embedding dimension must be at least 1 (default 256)".into() });
        }
        if let Some(smoothing) = self.smoothing {
            if !(0.0..1.0).contains(&smoothing) {
                return Err(Error::MixtureParameter { key: "smoothing", value: smoothing, expected: "the smoothing of online rewards must be in [0, 1) (default 0.9)".into() });
            }
        }
        if self.prior == Some(PolicyName::OnlineExp3) {
            return Err(Error::config("the prior of online-exp3 must be another policy, such as chameleon-pretrain"));
        }
        if self.policy == PolicyName::Unimax {
            if self.budget_tokens.is_none() {
                return Err(Error::config("the unimax policy needs `budget_tokens`, the total number of tokens to train on"));
            }
            if self.max_epochs.is_none() {
                return Err(Error::config("the unimax policy needs `max_epochs`, the maximum number of passes over any one domain"));
            }
        }
        Ok(())
    }
}

/// The policies that set domain weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PolicyName {
    /// The `weight` given to each domain in the configuration, normalised to sum to 1.
    #[default]
    Static,
    /// Weights proportional to each domain's token count.
    Proportional,
    /// Temperature sampling over token counts, `p_i ∝ n_i^(1/T)`.
    Temperature,
    /// UniMax: a uniform token budget with at most `max_epochs` passes over any domain.
    Unimax,
    /// Chameleon pretraining weights, `softmax((1/S_i) / T)` over leverage scores `S_i`.
    ChameleonPretrain,
    /// Chameleon finetuning weights, `softmax(S_i / T)` over leverage scores `S_i`.
    ChameleonFinetune,
    /// The Online Data Mixing bandit over reported training losses; see [`online`].
    OnlineExp3,
}

impl PolicyName {
    /// Returns the policy's name as written in the configuration, for example `chameleon-pretrain`.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyName::Static => "static",
            PolicyName::Proportional => "proportional",
            PolicyName::Temperature => "temperature",
            PolicyName::Unimax => "unimax",
            PolicyName::ChameleonPretrain => "chameleon-pretrain",
            PolicyName::ChameleonFinetune => "chameleon-finetune",
            PolicyName::OnlineExp3 => "online-exp3",
        }
    }
}

/// What a policy knows of one domain.
#[derive(Debug, Clone, Copy, Default)]
pub struct DomainSummary<'a> {
    /// The domain's name.
    pub name: &'a str,
    /// The weight given in the configuration, if any.
    pub weight: Option<f64>,
    /// The number of tokens in the domain, if known; the `proportional`, `temperature` and
    /// `unimax` policies need it.
    pub tokens: Option<u64>,
    /// The domain embedding, if any; the Chameleon policies need it.
    pub embedding: Option<&'a [f64]>,
}

impl<'a> DomainSummary<'a> {
    /// Creates a summary of the domain `name` with nothing else known.
    pub fn new(name: &'a str) -> Self {
        DomainSummary { name, ..DomainSummary::default() }
    }

    /// Sets the configured weight.
    pub fn with_weight(self, weight: f64) -> Self {
        DomainSummary { weight: Some(weight), ..self }
    }

    /// Sets the token count.
    pub fn with_tokens(self, tokens: u64) -> Self {
        DomainSummary { tokens: Some(tokens), ..self }
    }

    /// Sets the domain embedding.
    pub fn with_embedding(self, embedding: &'a [f64]) -> Self {
        DomainSummary { embedding: Some(embedding), ..self }
    }
}

/// The weights a policy chose, one per domain in configuration order, summing to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    /// The policy that chose the weights.
    pub policy: PolicyName,
    /// One weight per domain, each in [0, 1], summing to 1.
    pub weights: Vec<f64>,
    /// The normalised leverage scores (summing to 1), for the Chameleon policies.
    #[serde(default)]
    pub scores: Option<Vec<f64>>,
    /// The effective dimension `Σ S_i` before normalisation, for the Chameleon policies.
    #[serde(default)]
    pub effective_dimension: Option<f64>,
}

/// Computes the mixture weights of `domains` under the configured policy, then applies
/// `min_weight` and `max_weight`.
///
/// # Errors
///
/// [`Error::Weights`] when a weight or token count is missing, negative or not finite, or when
/// all are zero; [`Error::MissingEmbedding`], [`Error::EmbeddingDimension`] and
/// [`Error::NonFiniteEmbedding`] for unusable embeddings; [`Error::MixtureParameter`] and
/// [`Error::Config`] for out-of-range or missing keys and infeasible bounds.
pub fn compute(config: &MixtureConfig, domains: &[DomainSummary<'_>]) -> Result<Mixture> {
    config.validate()?;
    if domains.is_empty() {
        return Err(Error::Weights { message: "the mixture has no domains".into() });
    }
    let names: Vec<&str> = domains.iter().map(|domain| domain.name).collect();

    let mut scores = None;
    let mut effective_dimension = None;
    let weights = match config.policy {
        PolicyName::Static => static_weights(domains)?,
        // Before any loss is reported the bandit explores uniformly; the loader runs the bandit.
        PolicyName::OnlineExp3 => vec![1.0 / domains.len() as f64; domains.len()],
        PolicyName::Proportional => policy::proportional(&names, &token_counts(domains, config.policy)?)?,
        PolicyName::Temperature => {
            let temperature = config.temperature().unwrap_or(DEFAULT_SAMPLING_TEMPERATURE);
            policy::temperature_sampling(&names, &token_counts(domains, config.policy)?, temperature)?
        }
        PolicyName::Unimax => {
            let (Some(budget), Some(max_epochs)) = (config.budget_tokens, config.max_epochs) else {
                unreachable!("validate() checks that unimax has budget_tokens and max_epochs");
            };
            policy::unimax(&names, &token_counts(domains, config.policy)?, budget, max_epochs)?
        }
        PolicyName::ChameleonPretrain | PolicyName::ChameleonFinetune => {
            let leverage = chameleon_scores(config, domains)?;
            let temperature = config.temperature().unwrap_or(DEFAULT_PRETRAIN_TEMPERATURE);
            let weights = if leverage.degenerate.is_some() {
                vec![1.0 / domains.len() as f64; domains.len()]
            } else if config.policy == PolicyName::ChameleonPretrain {
                policy::chameleon_pretrain(&names, &leverage.scores, temperature)
            } else {
                policy::chameleon_finetune(&leverage.scores, temperature)
            };
            effective_dimension = Some(leverage.effective_dimension);
            scores = Some(leverage.scores);
            weights
        }
    };

    let weights = policy::apply_bounds(&weights, &names, config.min_weight, config.max_weight)?;
    Ok(Mixture { policy: config.policy, weights, scores, effective_dimension })
}

/// Computes the leverage scores of the domains' embeddings, logging the k = 2 case.
fn chameleon_scores(config: &MixtureConfig, domains: &[DomainSummary<'_>]) -> Result<leverage::LeverageScores> {
    let mut named = Vec::with_capacity(domains.len());
    for domain in domains {
        let Some(embedding) = domain.embedding else {
            return Err(Error::MissingEmbedding {
                domain: domain.name.to_string(),
                hint: format!(
                    "the {} policy needs one per domain; set `embeddings` to \"hashed\", a folder with {}.npy, or a safetensors file with a tensor named '{}'",
                    config.policy.as_str(),
                    domain.name,
                    domain.name
                ),
            });
        };
        named.push((domain.name, embedding));
    }
    if domains.len() == 2 {
        tracing::info!(
            domains = ?[domains[0].name, domains[1].name],
            "with two domains the centred embeddings are z and -z, so both leverage scores are equal and the mixture is uniform"
        );
    }
    leverage::leverage_scores(&named, config.lambda)
}

/// Collects every domain's token count, rejecting a missing one.
fn token_counts(domains: &[DomainSummary<'_>], policy: PolicyName) -> Result<Vec<u64>> {
    domains
        .iter()
        .map(|domain| {
            domain.tokens.ok_or_else(|| Error::Weights {
                message: format!("domain '{}' has no token count; the {} policy needs the number of tokens in every domain", domain.name, policy.as_str()),
            })
        })
        .collect()
}

/// Normalises the configured weights to sum to 1, rejecting missing, negative, non-finite and
/// all-zero weights.
fn static_weights(domains: &[DomainSummary<'_>]) -> Result<Vec<f64>> {
    if domains.is_empty() {
        return Err(Error::Weights { message: "the mixture has no domains".into() });
    }

    let mut raw = Vec::with_capacity(domains.len());
    for domain in domains {
        let Some(weight) = domain.weight else {
            return Err(Error::Weights {
                message: format!("domain '{}' has no weight; the static policy needs `weight` on every domain", domain.name),
            });
        };
        if !weight.is_finite() || weight < 0.0 {
            return Err(Error::Weights {
                message: format!("domain '{}' has weight {weight}; weights must be finite and at least 0", domain.name),
            });
        }
        raw.push(weight);
    }

    let total: f64 = raw.iter().sum();
    if total <= 0.0 || !total.is_finite() {
        return Err(Error::Weights {
            message: format!("the weights sum to {total}; at least one domain needs a positive weight"),
        });
    }
    Ok(raw.into_iter().map(|weight| weight / total).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(name: &str, weight: f64) -> DomainSummary<'_> {
        DomainSummary::new(name).with_weight(weight)
    }

    #[test]
    fn static_weights_are_normalised() {
        let mixture = compute(&MixtureConfig::default(), &[summary("a", 1.0), summary("b", 3.0)]).unwrap();
        assert_eq!(mixture.weights, vec![0.25, 0.75]);
    }

    #[test]
    fn static_rejects_bad_weights() {
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            let error = compute(&MixtureConfig::default(), &[summary("a", bad), summary("b", 1.0)]).unwrap_err();
            assert!(error.to_string().contains("domain 'a'"), "{error}");
        }
        let error = compute(&MixtureConfig::default(), &[summary("a", 0.0), summary("b", 0.0)]).unwrap_err();
        assert!(error.to_string().contains("sum to 0"), "{error}");
    }
}
