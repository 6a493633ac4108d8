//! Applying the requests of [`MixtureHandle`](super::MixtureHandle)s at a batch boundary.

use std::sync::Arc;

use super::builder::{check_rows, embedding_for};
use super::domains::{embed_domain, mixture_domain, needs_embeddings};
use super::handle::{DomainSpec, Message, Request};
use super::reader::DomainCursor;
use super::{DomainRuntime, Loader};
use crate::error::{Error, Result};
use crate::mixture::MixtureConfig;
use crate::source::DomainSource;

impl Loader {
    /// Applies every request sent since the last batch, in order, then folds reported losses into
    /// an online policy. Each request's outcome goes back to its ticket.
    pub(super) fn apply_requests(&mut self) {
        let mut losses = Vec::new();
        while let Ok(message) = self.messages.try_recv() {
            match message {
                Message::Change { request, reply } => {
                    let outcome = self.apply(request);
                    if let Err(error) = &outcome {
                        tracing::warn!(step = self.step, %error, "mixture change rejected");
                    }
                    let _ = reply.send(outcome);
                }
                Message::Loss { domain, loss } => match self.domains.iter().position(|runtime| runtime.source.name == domain) {
                    Some(id) => losses.push((id, loss)),
                    None => tracing::debug!(%domain, "loss reported for an unknown domain; ignored"),
                },
            }
        }
        if !losses.is_empty() {
            if let Err(error) = self.mixture.report_losses(self.step, &losses) {
                tracing::warn!(step = self.step, %error, "online mixture update failed; the weights stay as they were");
            }
        }
        self.publish_versions();
    }

    fn apply(&mut self, request: Request) -> Result<u64> {
        match request {
            Request::AddDomain(spec) => self.add_domain(*spec),
            Request::RemoveDomain(name) => self.remove_domain(&name),
            Request::SetWeights(weights) => self.set_weights(&weights),
            Request::SetPolicy(config) => self.set_policy(*config),
            Request::SetRamp(steps) => {
                self.mixture.ramp_steps = steps;
                Ok(self.mixture.current().version)
            }
        }
    }

    fn add_domain(&mut self, spec: DomainSpec) -> Result<u64> {
        let name = &spec.config.name;
        if self.domains.iter().any(|runtime| &runtime.source.name == name) {
            return Err(Error::config(format!("cannot add domain '{name}': a domain of that name is already present")));
        }
        let path = std::fs::canonicalize(&spec.config.path).unwrap_or_else(|_| spec.config.path.clone());
        if let Some(other) = self.config.domains.iter().find(|domain| std::fs::canonicalize(&domain.path).unwrap_or_else(|_| domain.path.clone()) == path) {
            return Err(Error::config(format!("cannot add domain '{name}': its folder {} is already domain '{}'", spec.config.path.display(), other.name)));
        }

        let mut config = self.config.clone();
        config.domains.push(spec.config.clone());
        let source = DomainSource::open(&config, config.domains.len() - 1, &mut self.tokenizers)?;
        check_rows(std::slice::from_ref(&source), &[1.0])?;
        let mut domain = mixture_domain(&source, spec.config.weight);
        domain.embedding = embedding_for(&self.mixture.config, self.config.seed, &source, &spec)?;

        let mut mixture = self.mixture.clone();
        mixture.domains.push(domain);
        if let Some(bandit) = mixture.online.as_mut() {
            bandit.add_domain(1.0 / mixture.domains.iter().filter(|domain| domain.active).count() as f64);
        }
        let version = mixture.record_change(self.step, format!("added domain {name}"))?;

        // Only now that the change is valid does the loader take it.
        self.mixture = mixture;
        self.config = config;
        self.added.push(spec);
        self.domains.push(DomainRuntime::new(source, DomainCursor::default()));
        self.names = Arc::new(self.domains.iter().map(|runtime| runtime.source.name.clone()).collect());
        Ok(version)
    }

    fn remove_domain(&mut self, name: &str) -> Result<u64> {
        let Some(id) = self.domains.iter().position(|runtime| runtime.source.name == name) else {
            return Err(Error::config(format!("cannot remove domain '{name}': no such domain")));
        };
        let mut mixture = self.mixture.clone();
        if !mixture.domains[id].active {
            return Err(Error::config(format!("cannot remove domain '{name}': it was removed already")));
        }
        mixture.domains[id].active = false;
        // The bandit's arms follow the active domains, so it starts over without this one.
        if mixture.online.is_some() {
            mixture.set_policy(mixture.config.clone())?;
        }
        let version = mixture.record_change(self.step, format!("removed domain {name}"))?;
        self.mixture = mixture;
        Ok(version)
    }

    fn set_weights(&mut self, weights: &[(String, f64)]) -> Result<u64> {
        let mut mixture = self.mixture.clone();
        for (name, weight) in weights {
            let Some(domain) = mixture.domains.iter_mut().find(|domain| &domain.name == name && domain.active) else {
                return Err(Error::config(format!("cannot set the weight of domain '{name}': no such domain in the mixture")));
            };
            domain.weight = Some(*weight);
        }
        if mixture.config.policy != crate::mixture::PolicyName::Static {
            mixture.set_policy(MixtureConfig { policy: crate::mixture::PolicyName::Static, ..mixture.config.clone() })?;
        }
        let names: Vec<&str> = weights.iter().map(|(name, _)| name.as_str()).collect();
        let version = mixture.record_change(self.step, format!("set weights of {}", names.join(", ")))?;
        self.mixture = mixture;
        Ok(version)
    }

    fn set_policy(&mut self, config: MixtureConfig) -> Result<u64> {
        let mut mixture = self.mixture.clone();
        if needs_embeddings(&config) {
            for (domain, runtime) in mixture.domains.iter_mut().zip(&self.domains) {
                if domain.active && domain.embedding.is_none() {
                    domain.embedding = Some(embed_domain(&config, self.config.seed, &runtime.source)?);
                }
            }
        }
        let policy = config.policy;
        mixture.set_policy(config)?;
        let version = mixture.record_change(self.step, format!("policy {}", policy.as_str()))?;
        self.mixture = mixture;
        Ok(version)
    }

    /// Lets handles see the versions recorded so far.
    fn publish_versions(&self) {
        if let Ok(mut view) = self.view.lock() {
            if view.versions.len() != self.mixture.versions.len() || view.versions.last() != self.mixture.versions.last() {
                view.versions = self.mixture.versions.clone();
            }
        }
    }
}
