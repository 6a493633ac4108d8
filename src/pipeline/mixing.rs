//! The running mixture: which domains are in it, their weights at each step, and every change
//! made since the start, as numbered versions.
//!
//! Version 0 is the mixture the loader starts with. A change (a domain added or removed, new
//! weights, a new policy, a batch of reported losses for `online-exp3`) makes the next version,
//! which holds from the step of the next batch. With a ramp of `N` steps, the weights move from
//! the previous version's to the new ones linearly over `N` batches. The versions and the state
//! of the online bandit are part of the loader state, so a resumed run draws from the same
//! weights at every step as the run that saved it.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mixture::online::OnlineExp3;
use crate::mixture::{self, DomainSummary, MixtureConfig, PolicyName};

/// At most this many online-policy versions are kept in the history; changes of the domain set
/// or the policy are always kept.
pub const ONLINE_VERSIONS_KEPT: usize = 256;

/// One version of the mixture: the weights from `step` on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureVersion {
    /// The version number: 0 at the start, then one more per change.
    pub version: u64,
    /// The first step drawn with these weights.
    pub step: u64,
    /// The domains in the mixture, in id order (removed domains are left out).
    pub domains: Vec<String>,
    /// The target weight of each domain in `domains`, summing to 1.
    pub weights: Vec<f64>,
    /// The policy that chose the weights.
    pub policy: String,
    /// Normalised leverage scores of `domains`, under the Chameleon policies.
    #[serde(default)]
    pub scores: Option<Vec<f64>>,
    /// Effective dimension, under the Chameleon policies.
    #[serde(default)]
    pub effective_dimension: Option<f64>,
    /// What changed, in words: "start", "added domain web", ...
    pub change: String,
    /// Batches over which the weights move from the previous version's; 0 jumps.
    #[serde(default)]
    pub ramp_steps: u64,
    /// The previous version's weight of each domain in `domains` (0 for a new one), when ramping.
    #[serde(default)]
    pub ramp_from: Option<Vec<f64>>,
}

/// What the mixture knows of one domain id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureDomain {
    /// The domain.
    pub name: String,
    /// Whether it is in the mixture (false once removed).
    pub active: bool,
    /// Its static weight.
    pub weight: Option<f64>,
    /// Its token count, or an estimate, for the token-count policies.
    pub tokens: Option<u64>,
    /// Its embedding, for the Chameleon policies.
    pub embedding: Option<Vec<f64>>,
}

/// The running mixture of a loader.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureRuntime {
    /// The current policy and its parameters.
    pub config: MixtureConfig,
    /// Per domain id.
    pub domains: Vec<MixtureDomain>,
    /// The history, oldest first.
    pub versions: Vec<MixtureVersion>,
    /// The ramp applied to the next changes, in batches.
    pub ramp_steps: u64,
    /// The bandit of the `online-exp3` policy.
    pub online: Option<OnlineExp3>,
}

impl MixtureRuntime {
    /// Starts the mixture at step 0 with version 0.
    ///
    /// # Errors
    ///
    /// The policy's errors ([`mixture::compute`]).
    pub fn start(config: MixtureConfig, domains: Vec<MixtureDomain>, ramp_steps: u64) -> Result<MixtureRuntime> {
        let mut runtime = MixtureRuntime { config, domains, versions: Vec::new(), ramp_steps, online: None };
        if runtime.config.policy == PolicyName::OnlineExp3 {
            runtime.online = Some(runtime.start_bandit()?);
        }
        let version = runtime.compute_version(0, "start".to_string())?;
        runtime.versions.push(MixtureVersion { ramp_steps: 0, ramp_from: None, ..version });
        Ok(runtime)
    }

    /// The latest version.
    pub fn current(&self) -> &MixtureVersion {
        self.versions.last().expect("the history starts with version 0")
    }

    /// Ids of the domains in the mixture.
    pub fn active_ids(&self) -> Vec<usize> {
        (0..self.domains.len()).filter(|&id| self.domains[id].active).collect()
    }

    /// The sampling weight of every domain id at `step`, ramp included.
    pub fn weights_at(&self, step: u64) -> Vec<f64> {
        let version = self.current();
        let mut weights = vec![0.0; self.domains.len()];
        let progress = match (&version.ramp_from, version.ramp_steps) {
            (Some(_), ramp) if ramp > 0 => ((step.saturating_sub(version.step) + 1) as f64 / ramp as f64).min(1.0),
            _ => 1.0,
        };
        for (index, name) in version.domains.iter().enumerate() {
            let Some(id) = self.domains.iter().position(|domain| &domain.name == name) else { continue };
            let target = version.weights[index];
            let from = version.ramp_from.as_ref().map_or(target, |from| from[index]);
            weights[id] = from + (target - from) * progress;
        }
        weights
    }

    /// Recomputes the weights with the current policy and records them as a new version from
    /// `step`, ramped from the weights in force at `step`.
    ///
    /// # Errors
    ///
    /// The policy's errors; the history is unchanged then.
    pub fn record_change(&mut self, step: u64, change: String) -> Result<u64> {
        let in_force = self.weights_at(step);
        let version = self.compute_version(step, change)?;
        let ramp_from = (self.ramp_steps > 0).then(|| {
            version
                .domains
                .iter()
                .map(|name| self.domains.iter().position(|domain| &domain.name == name).map_or(0.0, |id| in_force[id]))
                .collect()
        });
        tracing::info!(
            version = version.version,
            step,
            change = %version.change,
            old = ?self.current().domains.iter().zip(&self.current().weights).collect::<Vec<_>>(),
            new = ?version.domains.iter().zip(&version.weights).collect::<Vec<_>>(),
            "mixture changed"
        );
        let number = version.version;
        self.versions.push(MixtureVersion { ramp_steps: self.ramp_steps, ramp_from, ..version });
        self.trim_online_versions();
        Ok(number)
    }

    /// Folds reported losses into the `online-exp3` bandit and records its new weights; returns
    /// `None` when the policy is not online or no loss applies.
    pub fn report_losses(&mut self, step: u64, losses: &[(usize, f64)]) -> Result<Option<u64>> {
        let Some(bandit) = self.online.as_mut() else {
            return Ok(None);
        };
        let active = self.domains.iter().enumerate().filter(|(_, domain)| domain.active).map(|(id, _)| id).collect::<Vec<_>>();
        let sampled_with = bandit.weights();
        let by_arm: Vec<(usize, f64)> =
            losses.iter().filter_map(|&(id, loss)| active.iter().position(|&active_id| active_id == id).map(|arm| (arm, loss))).collect();
        if by_arm.is_empty() {
            return Ok(None);
        }
        bandit.update(&by_arm, &sampled_with);
        let updates = bandit.updates;
        let version = self.compute_version(step, format!("online update {updates}"))?;
        let number = version.version;
        self.versions.push(version);
        self.trim_online_versions();
        Ok(Some(number))
    }

    /// Computes the weights of the active domains under the current policy, as an unrecorded
    /// version numbered after the latest.
    fn compute_version(&self, step: u64, change: String) -> Result<MixtureVersion> {
        let active = self.active_ids();
        if active.is_empty() {
            return Err(Error::Weights { message: "the mixture has no domains left".into() });
        }
        let names: Vec<String> = active.iter().map(|&id| self.domains[id].name.clone()).collect();
        let version = self.versions.last().map_or(0, |latest| latest.version + 1);

        let (weights, scores, effective_dimension) = match &self.online {
            Some(bandit) => (bandit.weights(), None, None),
            None => {
                let summaries: Vec<DomainSummary<'_>> = active.iter().map(|&id| self.summary(id)).collect();
                let mixture = mixture::compute(&self.config, &summaries)?;
                (mixture.weights, mixture.scores, mixture.effective_dimension)
            }
        };
        Ok(MixtureVersion {
            version,
            step,
            domains: names,
            weights,
            policy: self.config.policy.as_str().to_string(),
            scores,
            effective_dimension,
            change,
            ramp_steps: 0,
            ramp_from: None,
        })
    }

    fn summary(&self, id: usize) -> DomainSummary<'_> {
        let domain = &self.domains[id];
        DomainSummary { name: &domain.name, weight: domain.weight, tokens: domain.tokens, embedding: domain.embedding.as_deref() }
    }

    /// A bandit whose prior is the weights of the configured prior policy (uniform by default).
    fn start_bandit(&self) -> Result<OnlineExp3> {
        let active = self.active_ids();
        let prior = match self.config.prior {
            None => vec![1.0 / active.len().max(1) as f64; active.len()],
            Some(prior) => {
                let config = MixtureConfig { policy: prior, ..self.config.clone() };
                let summaries: Vec<DomainSummary<'_>> = active.iter().map(|&id| self.summary(id)).collect();
                mixture::compute(&config, &summaries)?.weights
            }
        };
        Ok(OnlineExp3::new(prior, self.config.smoothing.unwrap_or(crate::mixture::online::DEFAULT_SMOOTHING)))
    }

    /// Replaces the policy; an online policy starts a new bandit.
    ///
    /// # Errors
    ///
    /// Invalid parameters, or a prior policy that cannot be computed.
    pub fn set_policy(&mut self, config: MixtureConfig) -> Result<()> {
        config.validate()?;
        let previous = std::mem::replace(&mut self.config, config);
        self.online = None;
        if self.config.policy == PolicyName::OnlineExp3 {
            match self.start_bandit() {
                Ok(bandit) => self.online = Some(bandit),
                Err(error) => {
                    self.config = previous;
                    return Err(error);
                }
            }
        }
        Ok(())
    }

    /// Keeps the history small: online updates beyond the last [`ONLINE_VERSIONS_KEPT`] are
    /// dropped; every other change is kept.
    fn trim_online_versions(&mut self) {
        let online: Vec<usize> =
            (0..self.versions.len()).filter(|&index| self.versions[index].change.starts_with("online update")).collect();
        if online.len() <= ONLINE_VERSIONS_KEPT {
            return;
        }
        let drop: std::collections::HashSet<usize> = online[..online.len() - ONLINE_VERSIONS_KEPT].iter().copied().collect();
        let mut index = 0;
        self.versions.retain(|_| {
            let keep = !drop.contains(&index);
            index += 1;
            keep
        });
    }
}
