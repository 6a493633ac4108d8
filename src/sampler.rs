//! Sampler: the seeded weighted multinomial draw that picks the domain of each sequence.
//!
//! Weights are kept as `f64` cumulative sums, and each draw takes a 53-bit uniform `f64` from a
//! ChaCha8 generator, so a domain of weight 1e-8 next to one of weight 1 keeps its share of the
//! generator's range, and a domain of weight 0 owns none of it and is never drawn. The generator
//! is portable: the same seed gives the same draws on every platform. Its state is the seed and
//! a word position, which [`Sampler::state`] returns and [`Sampler::restore`] takes back.
//!
//! ```
//! use chameleon::sampler::Sampler;
//!
//! let mut sampler = Sampler::new(42, &[0.75, 0.25, 0.0]).unwrap();
//! let draws: Vec<usize> = (0..1000).map(|_| sampler.draw()).collect();
//! assert!(draws.iter().all(|&domain| domain < 2));
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// A seeded weighted multinomial sampler over domain indices.
#[derive(Debug, Clone)]
pub struct Sampler {
    rng: ChaCha8Rng,
    seed: u64,
    /// The weights last given.
    weights: Vec<f64>,
    /// `cumulative[i]` is the sum of the normalised weights of domains 0..=i.
    cumulative: Vec<f64>,
    /// The last domain with a positive weight, drawn when rounding puts a draw past the end.
    last_positive: usize,
}

/// The sampler's generator position, enough to continue its draws exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SamplerState {
    /// The seed the generator was made from.
    pub seed: u64,
    /// The generator's position in its ChaCha8 key stream, in 32-bit words.
    pub word_position: u128,
}

impl Sampler {
    /// Makes a sampler over `weights` whose draws are fixed by `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::Weights`] when a weight is negative or not finite, or all are zero.
    pub fn new(seed: u64, weights: &[f64]) -> Result<Sampler> {
        Sampler::for_rank(seed, 0, weights)
    }

    /// Makes the sampler of rank `rank`: each rank draws its own sequence of domains, and rank 0's
    /// draws are those of [`Sampler::new`].
    ///
    /// # Errors
    ///
    /// As [`Sampler::new`].
    pub fn for_rank(seed: u64, rank: usize, weights: &[f64]) -> Result<Sampler> {
        let rank_bytes = (rank as u64).to_le_bytes();
        let parts: &[&[u8]] = if rank == 0 { &[] } else { &[&rank_bytes] };
        let rng = ChaCha8Rng::from_seed(derive_seed(seed, "sampler", parts));
        let mut sampler = Sampler { rng, seed, weights: Vec::new(), cumulative: Vec::new(), last_positive: 0 };
        sampler.set_weights(weights)?;
        Ok(sampler)
    }

    /// Replaces the weights; draws continue from the same generator position.
    ///
    /// # Errors
    ///
    /// As [`Sampler::new`].
    pub fn set_weights(&mut self, weights: &[f64]) -> Result<()> {
        if let Some((index, weight)) = weights.iter().enumerate().find(|(_, weight)| !weight.is_finite() || **weight < 0.0) {
            return Err(Error::Weights { message: format!("weight {weight} of domain {index} is not a finite number at least 0") });
        }
        let total: f64 = weights.iter().sum();
        if total <= 0.0 || !total.is_finite() {
            return Err(Error::Weights { message: format!("the weights sum to {total}; at least one must be positive") });
        }

        let mut sum = 0.0;
        self.cumulative = weights
            .iter()
            .map(|weight| {
                sum += weight / total;
                sum
            })
            .collect();
        self.last_positive = weights.iter().rposition(|&weight| weight > 0.0).expect("the total is positive, so one weight is");
        self.weights = weights.to_vec();
        Ok(())
    }

    /// The weights last given, as given.
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Draws a domain index; domain `i` comes with probability `weights[i] / sum(weights)`.
    pub fn draw(&mut self) -> usize {
        let total = *self.cumulative.last().expect("set_weights rejects an empty weight list");
        let point = self.rng.random::<f64>() * total;
        let index = self.cumulative.partition_point(|&edge| edge <= point);
        index.min(self.last_positive)
    }

    /// Returns the probability of drawing each domain: its share of the generator's range, from
    /// the `f64` cumulative weights the draws use.
    pub fn probabilities(&self) -> Vec<f64> {
        let mut previous = 0.0;
        self.cumulative
            .iter()
            .map(|&edge| {
                let share = edge - previous;
                previous = edge;
                share
            })
            .collect()
    }

    /// The generator position, after the draws made so far.
    pub fn state(&self) -> SamplerState {
        SamplerState { seed: self.seed, word_position: self.rng.get_word_pos() }
    }

    /// Moves the generator to a saved position.
    ///
    /// # Errors
    ///
    /// [`Error::Resume`] when the state was saved with another seed.
    pub fn restore(&mut self, state: SamplerState) -> Result<()> {
        if state.seed != self.seed {
            return Err(Error::Resume { message: format!("the sampler state has seed {} but the configuration has seed {}", state.seed, self.seed) });
        }
        self.rng.set_word_pos(state.word_position);
        Ok(())
    }
}

/// Derives a 256-bit generator seed for one purpose (`sampler`, `shuffle`, ...) from the
/// configuration's seed and the purpose's own numbers, so that independent streams of random
/// numbers never share a generator.
pub fn derive_seed(seed: u64, purpose: &str, parts: &[&[u8]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_derive_key("chameleon seed derivation v1");
    hasher.update(&seed.to_le_bytes());
    hasher.update(&(purpose.len() as u64).to_le_bytes());
    hasher.update(purpose.as_bytes());
    for part in parts {
        hasher.update(&(part.len() as u64).to_le_bytes());
        hasher.update(part);
    }
    *hasher.finalize().as_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_weight_domain_is_never_drawn() {
        let mut sampler = Sampler::new(1, &[0.0, 1.0, 0.0]).unwrap();
        assert!((0..100_000).all(|_| sampler.draw() == 1));
    }

    #[test]
    fn same_seed_gives_same_draws() {
        let mut first = Sampler::new(9, &[0.2, 0.3, 0.5]).unwrap();
        let mut second = Sampler::new(9, &[0.2, 0.3, 0.5]).unwrap();
        let a: Vec<_> = (0..1000).map(|_| first.draw()).collect();
        let b: Vec<_> = (0..1000).map(|_| second.draw()).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn restore_continues_the_draws() {
        let mut sampler = Sampler::new(5, &[0.5, 0.5]).unwrap();
        (0..123).for_each(|_| {
            sampler.draw();
        });
        let state = sampler.state();
        let expected: Vec<_> = (0..100).map(|_| sampler.draw()).collect();

        let mut resumed = Sampler::new(5, &[0.5, 0.5]).unwrap();
        resumed.restore(state).unwrap();
        let actual: Vec<_> = (0..100).map(|_| resumed.draw()).collect();
        assert_eq!(expected, actual);
    }

    #[test]
    fn rejects_bad_weights() {
        assert!(Sampler::new(0, &[0.0, 0.0]).is_err());
        assert!(Sampler::new(0, &[-1.0, 2.0]).is_err());
        assert!(Sampler::new(0, &[f64::NAN, 1.0]).is_err());
        assert!(Sampler::new(0, &[]).is_err());
    }

    #[test]
    fn tiny_weight_keeps_a_share_of_the_range() {
        let sampler = Sampler::new(0, &[1.0, 1e-8]).unwrap();
        let share = sampler.cumulative[1] - sampler.cumulative[0];
        assert!(share > 0.0 && (share - 1e-8).abs() < 1e-15, "share {share}");
    }
}
