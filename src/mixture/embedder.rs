//! A built-in hashed embedder: domain embeddings from token ids, with no model to download.
//!
//! The embedding of one document (a slice of `u32` token ids) is computed in four steps, and the
//! domain embedding is the mean of its non-empty documents' embeddings.
//!
//! 1. **Features.** Every unigram `t` and every bigram `(a, b)` of adjacent tokens is hashed to a
//!    64-bit key with the SplitMix64 finaliser
//!    `mix64(x)`: `x ^= x >> 30; x *= 0xbf58476d1ce4e5b9; x ^= x >> 27; x *= 0x94d049bb133111eb;
//!    x ^= x >> 31` (wrapping `u64` arithmetic). A unigram's key is `mix64(t)`, a bigram's key is
//!    `mix64(((a << 32) | b) ^ 0x9e3779b97f4a7c15)`. The bucket is `key % buckets`
//!    (default 2^18 buckets).
//! 2. **Term frequency.** With `tf_b` the number of unigrams and bigrams that fall into bucket
//!    `b`, the feature value is the sublinear term frequency `1 + ln(tf_b)`.
//! 3. **Normalisation.** The sparse feature vector is divided by its L2 norm.
//! 4. **Projection.** The vector is multiplied by a Gaussian random matrix `R` of shape
//!    `buckets × dimension` (default dimension 256) with entries `N(0, 1) / sqrt(dimension)`, so
//!    that squared distances are preserved in expectation. `R` is never stored. Row `b` is drawn
//!    from a `rand_chacha` 0.9 `ChaCha8Rng` built with `from_seed` on the 32-byte key made of the
//!    seed's 8 little-endian bytes followed by 24 zero bytes, with `set_stream(b)`, as
//!    `dimension` successive `f64` samples of `rand_distr` 0.5's `StandardNormal`.
//!
//! Because the projection is linear, the domain embedding is computed as the projection of the
//! mean of the normalised feature vectors, which generates each bucket's row once per domain.
//!
//! ```
//! use chameleon::mixture::embedder::HashedEmbedder;
//!
//! let embedder = HashedEmbedder::new(1 << 18, 64, 7).unwrap();
//! let documents: [&[u32]; 2] = [&[1, 2, 3, 2, 3], &[4, 5]];
//! let embedding = embedder.embed_domain("code", documents).unwrap();
//! assert_eq!(embedding.len(), 64);
//! ```

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::StandardNormal;
use rayon::prelude::*;

use crate::error::{Error, Result};

/// Salt XORed into a bigram's packed token pair before hashing, so that a bigram `(0, t)` does not
/// share its key with the unigram `t`.
const BIGRAM_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// Buckets projected per parallel task. The sum over tasks is taken in bucket order, so the
/// result does not depend on the number of threads.
const PROJECTION_CHUNK: usize = 4096;

/// Embeds documents given as token ids by feature hashing and a seeded Gaussian random projection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HashedEmbedder {
    buckets: usize,
    dimension: usize,
    seed: u64,
}

impl HashedEmbedder {
    /// The default number of hash buckets, 2^18.
    pub const DEFAULT_BUCKETS: usize = 1 << 18;
    /// The default embedding dimension.
    pub const DEFAULT_DIMENSION: usize = 256;

    /// Creates an embedder with `buckets` hash buckets, output `dimension` and projection `seed`.
    ///
    /// # Errors
    ///
    /// [`Error::MixtureParameter`] when `buckets` is 0 or above 2^32, or `dimension` is 0.
    pub fn new(buckets: usize, dimension: usize, seed: u64) -> Result<Self> {
        if buckets == 0 || buckets as u64 > 1 << 32 {
            return Err(Error::MixtureParameter { key: "buckets", value: buckets as f64, expected: "the number of hash buckets must be between 1 and 2^32".into() });
        }
        if dimension == 0 {
            return Err(Error::MixtureParameter { key: "embed_dimension", value: 0.0, expected: "the embedding dimension must be at least 1 (default 256)".into() });
        }
        Ok(HashedEmbedder { buckets, dimension, seed })
    }

    /// Returns the number of hash buckets.
    pub fn buckets(&self) -> usize {
        self.buckets
    }

    /// Returns the embedding dimension.
    pub fn dimension(&self) -> usize {
        self.dimension
    }

    /// Returns the projection seed.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// Computes a document's L2-normalised sparse feature vector as `(bucket, value)` pairs sorted
    /// by bucket, or an empty vector for a document without tokens.
    pub fn features(&self, tokens: &[u32]) -> Vec<(u32, f64)> {
        let mut keys: Vec<u32> = Vec::with_capacity(2 * tokens.len());
        keys.extend(tokens.iter().map(|&token| self.bucket(mix64(u64::from(token)))));
        keys.extend(tokens.windows(2).map(|pair| self.bucket(mix64(((u64::from(pair[0]) << 32) | u64::from(pair[1])) ^ BIGRAM_SALT))));
        keys.sort_unstable();

        let mut features: Vec<(u32, f64)> = Vec::new();
        for run in keys.chunk_by(|a, b| a == b) {
            features.push((run[0], 1.0 + (run.len() as f64).ln()));
        }
        let norm = features.iter().map(|(_, value)| value * value).sum::<f64>().sqrt();
        for (_, value) in &mut features {
            *value /= norm;
        }
        features
    }

    /// Computes one document's embedding, or `None` for a document without tokens.
    pub fn embed_document(&self, tokens: &[u32]) -> Option<Vec<f64>> {
        let features = self.features(tokens);
        if features.is_empty() {
            return None;
        }
        Some(self.project(&features))
    }

    /// Computes the domain embedding: the mean of the embeddings of the non-empty `documents`.
    ///
    /// # Errors
    ///
    /// [`Error::NoDocumentsToEmbed`] when no document has a token.
    pub fn embed_domain<'d, I>(&self, domain: &str, documents: I) -> Result<Vec<f64>>
    where
        I: IntoIterator<Item = &'d [u32]>,
    {
        let mut accumulator = vec![0.0f64; self.buckets];
        let mut touched: Vec<u32> = Vec::new();
        let mut offered = 0;
        let mut embedded = 0;
        for tokens in documents {
            offered += 1;
            let features = self.features(tokens);
            if features.is_empty() {
                continue;
            }
            embedded += 1;
            for (bucket, value) in features {
                let slot = &mut accumulator[bucket as usize];
                if *slot == 0.0 {
                    touched.push(bucket);
                }
                *slot += value;
            }
        }
        if embedded == 0 {
            return Err(Error::NoDocumentsToEmbed { domain: domain.to_string(), documents: offered });
        }

        touched.sort_unstable();
        let mean: Vec<(u32, f64)> = touched.iter().map(|&bucket| (bucket, accumulator[bucket as usize] / embedded as f64)).collect();
        Ok(self.project(&mean))
    }

    /// Generates row `bucket` of the random projection matrix: `dimension` samples of
    /// `N(0, 1) / sqrt(dimension)`.
    pub fn projection_row(&self, bucket: u32) -> Vec<f64> {
        let mut row = vec![0.0; self.dimension];
        self.fill_projection_row(bucket, &mut row);
        row
    }

    fn fill_projection_row(&self, bucket: u32, row: &mut [f64]) {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&self.seed.to_le_bytes());
        let mut rng = ChaCha8Rng::from_seed(key);
        rng.set_stream(u64::from(bucket));
        let scale = 1.0 / (self.dimension as f64).sqrt();
        for value in row.iter_mut() {
            let sample: f64 = rng.sample(StandardNormal);
            *value = sample * scale;
        }
    }

    /// Multiplies a sparse vector (sorted by bucket) by the projection matrix.
    fn project(&self, sparse: &[(u32, f64)]) -> Vec<f64> {
        let partials: Vec<Vec<f64>> = sparse
            .par_chunks(PROJECTION_CHUNK)
            .map(|chunk| {
                let mut partial = vec![0.0; self.dimension];
                let mut row = vec![0.0; self.dimension];
                for &(bucket, value) in chunk {
                    self.fill_projection_row(bucket, &mut row);
                    for (total, entry) in partial.iter_mut().zip(&row) {
                        *total += value * entry;
                    }
                }
                partial
            })
            .collect();

        let mut embedding = vec![0.0; self.dimension];
        for partial in partials {
            for (total, value) in embedding.iter_mut().zip(partial) {
                *total += value;
            }
        }
        embedding
    }

    fn bucket(&self, key: u64) -> u32 {
        // `buckets` is at most 2^32, so the remainder fits in a u32.
        (key % self.buckets as u64) as u32
    }
}

/// The SplitMix64 finaliser, a bijective 64-bit mixing function.
pub fn mix64(mut x: u64) -> u64 {
    x ^= x >> 30;
    x = x.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x ^= x >> 27;
    x = x.wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn features_follow_documented_formula() {
        let embedder = HashedEmbedder::new(1 << 18, 8, 1).unwrap();
        // Tokens [5, 5]: unigram 5 twice, bigram (5, 5) once.
        let unigram = (mix64(5) % (1 << 18)) as u32;
        let bigram = (mix64(((5u64 << 32) | 5) ^ BIGRAM_SALT) % (1 << 18)) as u32;
        let features = embedder.features(&[5, 5]);
        let a = 1.0 + 2f64.ln();
        let norm = (a * a + 1.0).sqrt();
        let mut expected = vec![(unigram, a / norm), (bigram, 1.0 / norm)];
        expected.sort_by_key(|(bucket, _)| *bucket);
        assert_eq!(features.len(), 2);
        for ((bucket, value), (expected_bucket, expected_value)) in features.iter().zip(&expected) {
            assert_eq!(bucket, expected_bucket);
            assert!((value - expected_value).abs() < 1e-15);
        }
    }

    #[test]
    fn domain_embedding_is_mean_of_documents() {
        let embedder = HashedEmbedder::new(1 << 18, 32, 42).unwrap();
        let documents: [&[u32]; 3] = [&[1, 2, 3], &[], &[3, 2, 1, 1000, 70000]];
        let domain = embedder.embed_domain("d", documents).unwrap();
        let first = embedder.embed_document(documents[0]).unwrap();
        let third = embedder.embed_document(documents[2]).unwrap();
        assert!(embedder.embed_document(documents[1]).is_none());
        for j in 0..32 {
            assert!((domain[j] - 0.5 * (first[j] + third[j])).abs() < 1e-12);
        }
    }

    #[test]
    fn embedding_is_deterministic_per_seed() {
        let documents: [&[u32]; 1] = [&[10, 20, 30, 40]];
        let a = HashedEmbedder::new(1 << 18, 16, 3).unwrap().embed_domain("d", documents).unwrap();
        let b = HashedEmbedder::new(1 << 18, 16, 3).unwrap().embed_domain("d", documents).unwrap();
        let c = HashedEmbedder::new(1 << 18, 16, 4).unwrap().embed_domain("d", documents).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn shared_vocabulary_is_closer() {
        let embedder = HashedEmbedder::new(1 << 18, 256, 5).unwrap();
        let distance = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| (x - y).powi(2)).sum::<f64>();
        let english: [&[u32]; 2] = [&[1, 2, 3, 4, 5, 6], &[2, 3, 4, 5, 6, 7]];
        let english_too: [&[u32]; 2] = [&[1, 2, 3, 4, 5, 8], &[3, 4, 5, 6, 7, 9]];
        let code: [&[u32]; 2] = [&[900, 901, 902, 903], &[904, 905, 906, 907]];
        let english = embedder.embed_domain("english", english).unwrap();
        let english_too = embedder.embed_domain("english-too", english_too).unwrap();
        let code = embedder.embed_domain("code", code).unwrap();
        assert!(distance(&english, &english_too) < distance(&english, &code));
    }

    #[test]
    fn empty_domain_is_rejected() {
        let embedder = HashedEmbedder::new(16, 4, 0).unwrap();
        let documents: [&[u32]; 2] = [&[], &[]];
        let error = embedder.embed_domain("web", documents).unwrap_err();
        assert!(error.to_string().contains("domain 'web'"), "{error}");
        assert!(error.to_string().contains("2 sampled documents"), "{error}");
    }

    #[test]
    fn zero_sizes_are_rejected() {
        assert!(HashedEmbedder::new(0, 4, 0).is_err());
        assert!(HashedEmbedder::new(4, 0, 0).is_err());
    }
}
