//! Mixture: the share of each domain in what the model sees.
//!
//! A [`MixtureConfig`] (the `[mixture]` table of the configuration) names a policy. [`compute`]
//! turns the policy and a [`DomainSummary`] per domain into a [`Mixture`]: one weight per domain,
//! summing to 1, that the sampler draws from.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The `[mixture]` table of the configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixtureConfig {
    /// The policy that sets the weights. Default: `static`.
    #[serde(default)]
    pub policy: PolicyName,
}

impl Default for MixtureConfig {
    fn default() -> Self {
        MixtureConfig { policy: PolicyName::Static }
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
}

/// What a policy knows of one domain.
#[derive(Debug, Clone, Copy)]
pub struct DomainSummary<'a> {
    /// The domain's name.
    pub name: &'a str,
    /// The weight given in the configuration, if any.
    pub weight: Option<f64>,
}

/// The weights a policy chose, one per domain in configuration order, summing to 1.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Mixture {
    /// The policy that chose the weights.
    pub policy: PolicyName,
    /// One weight per domain, each in [0, 1], summing to 1.
    pub weights: Vec<f64>,
}

/// Computes the mixture weights of `domains` under the configured policy.
///
/// # Errors
///
/// [`Error::Weights`] when a weight is missing, negative or not finite, or when all are zero.
pub fn compute(config: &MixtureConfig, domains: &[DomainSummary<'_>]) -> Result<Mixture> {
    match config.policy {
        PolicyName::Static => {
            let weights = static_weights(domains)?;
            Ok(Mixture { policy: PolicyName::Static, weights })
        }
    }
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
        DomainSummary { name, weight: Some(weight) }
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
