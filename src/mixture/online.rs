//! `online-exp3`: the Online Data Mixing bandit (Albalak et al. 2023, "Efficient Online Data
//! Mixing For Language Model Pre-Training").
//!
//! Each domain is an arm. The trainer reports the training loss of the rows it drew from a
//! domain; the loss is the reward (a domain the model still finds hard is worth more), divided by
//! the probability with which the domain was sampled (importance weighting, so rarely drawn
//! domains are not starved of credit), and folded into a per-domain estimate with exponential
//! smoothing:
//!
//! ```text
//! R_i ← α R_i + (1 − α) · loss / π_i          (α = `smoothing`, default 0.9)
//! ```
//!
//! After `t` updates the weights are
//!
//! ```text
//! ε_t = min(1/k, sqrt(ln k / (k t)))
//! π_i = (1 − k ε_t) · q_i exp(ε_{t−1} R_i) / Σ_j q_j exp(ε_{t−1} R_j) + ε_t
//! ```
//!
//! where `q` is the prior (uniform, or the weights another policy chose, such as Chameleon's)
//! and `k` the number of domains. The exponent is computed stably by subtracting its maximum.
//!
//! ```
//! use chameleon::mixture::online::OnlineExp3;
//!
//! let mut bandit = OnlineExp3::new(vec![1.0 / 3.0; 3], 0.9);
//! for _ in 0..200 {
//!     let weights = bandit.weights();
//!     bandit.update(&[(0, 2.0), (1, 2.0), (2, 6.0)], &weights);
//! }
//! let weights = bandit.weights();
//! assert!(weights[2] > weights[0] && weights[2] > weights[1]);
//! ```

use serde::{Deserialize, Serialize};

/// The default smoothing `α` of the reward estimates.
pub const DEFAULT_SMOOTHING: f64 = 0.9;

/// The bandit's state: small, serialisable, and enough to continue exactly.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OnlineExp3 {
    /// The prior `q`, one weight per domain, summing to 1.
    pub prior: Vec<f64>,
    /// The smoothed importance-weighted reward estimate `R_i` of each domain.
    pub rewards: Vec<f64>,
    /// The smoothing `α` in [0, 1).
    pub smoothing: f64,
    /// Updates made so far, `t`.
    pub updates: u64,
}

impl OnlineExp3 {
    /// Starts a bandit over `prior.len()` domains with rewards 0.
    pub fn new(prior: Vec<f64>, smoothing: f64) -> OnlineExp3 {
        let rewards = vec![0.0; prior.len()];
        OnlineExp3 { prior, rewards, smoothing, updates: 0 }
    }

    /// Exploration rate `ε_t = min(1/k, sqrt(ln k / (k t)))`; `1/k` before the first update.
    pub fn exploration(&self, updates: u64) -> f64 {
        let k = self.prior.len().max(1) as f64;
        if updates == 0 || k <= 1.0 {
            return 1.0 / k;
        }
        (1.0 / k).min((k.ln() / (k * updates as f64)).sqrt())
    }

    /// The current sampling weights, summing to 1.
    pub fn weights(&self) -> Vec<f64> {
        let k = self.prior.len();
        if k == 0 {
            return Vec::new();
        }
        let epsilon = self.exploration(self.updates);
        let rate = self.exploration(self.updates.saturating_sub(1));
        let exponents: Vec<f64> = self.rewards.iter().map(|reward| rate * reward).collect();
        let max = exponents.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let scaled: Vec<f64> = self.prior.iter().zip(&exponents).map(|(prior, exponent)| prior * (exponent - max).exp()).collect();
        let total: f64 = scaled.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            return vec![1.0 / k as f64; k];
        }
        scaled.iter().map(|value| (1.0 - k as f64 * epsilon) * value / total + epsilon).collect()
    }

    /// Folds reported losses `(domain, loss)` into the reward estimates, dividing each by the
    /// probability `sampled_with[domain]` the domain had when its rows were drawn, then counts one
    /// update. Non-finite losses and domains out of range are ignored.
    pub fn update(&mut self, losses: &[(usize, f64)], sampled_with: &[f64]) {
        let mut touched = false;
        for &(domain, loss) in losses {
            let Some(&probability) = sampled_with.get(domain) else { continue };
            if !loss.is_finite() || probability <= 0.0 || domain >= self.rewards.len() {
                continue;
            }
            self.rewards[domain] = self.smoothing * self.rewards[domain] + (1.0 - self.smoothing) * loss / probability;
            touched = true;
        }
        if touched {
            self.updates += 1;
        }
    }

    /// Adds a domain with prior weight `prior_weight` (the other priors are scaled to make room)
    /// and reward estimate 0.
    pub fn add_domain(&mut self, prior_weight: f64) {
        let keep = (1.0 - prior_weight).max(0.0);
        self.prior.iter_mut().for_each(|prior| *prior *= keep);
        self.prior.push(prior_weight);
        self.rewards.push(0.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_start_uniform() {
        let bandit = OnlineExp3::new(vec![0.5, 0.3, 0.2], DEFAULT_SMOOTHING);
        let weights = bandit.weights();
        // Before any update ε = 1/k, so the weights are uniform whatever the prior.
        assert!(weights.iter().all(|weight| (weight - 1.0 / 3.0).abs() < 1e-12), "{weights:?}");
    }

    #[test]
    fn high_loss_domain_gains_weight() {
        let mut bandit = OnlineExp3::new(vec![0.25; 4], DEFAULT_SMOOTHING);
        for _ in 0..500 {
            let weights = bandit.weights();
            bandit.update(&[(0, 1.0), (1, 1.0), (2, 4.0), (3, 1.0)], &weights);
        }
        let weights = bandit.weights();
        // The smoothed reward tends to loss / π, and the rate ε shrinks as updates accrue, so the
        // high-loss domain settles clearly above the others rather than taking everything.
        assert!(weights[2] > 0.28 && weights[2] > weights[0] + 0.04, "{weights:?}");
        assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(weights.iter().all(|&weight| weight >= bandit.exploration(bandit.updates) - 1e-15));
    }

    #[test]
    fn exploration_follows_the_schedule() {
        let bandit = OnlineExp3::new(vec![0.25; 4], DEFAULT_SMOOTHING);
        assert_eq!(bandit.exploration(0), 0.25);
        assert_eq!(bandit.exploration(1), 0.25f64.min((4f64.ln() / 4.0).sqrt()));
        assert!((bandit.exploration(10_000) - (4f64.ln() / 40_000.0).sqrt()).abs() < 1e-15);
    }
}
