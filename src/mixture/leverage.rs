//! Kernel ridge leverage scores of domain embeddings.
//!
//! With `k` domains and `Z` the `k × d` matrix of centred embeddings `z_i = x_i − x̄`, the
//! affinity matrix is the centred linear kernel `K = Z Zᵀ`, and the leverage score of domain `i`
//! is `S_i = [K (K + λk I)⁻¹]_ii`. No inverse is formed. With the eigendecomposition
//! `K = U diag(μ) Uᵀ`, `S_i = Σ_j U_ij² μ_j / (μ_j + λk)`, and eigenvalues that rounding made
//! negative are clipped to 0, so every score lies in `[0, 1]`. When `d < k` the same scores come
//! from the `d × d` matrix `G = Zᵀ Z + λk I` through the identity
//! `Z Zᵀ (Z Zᵀ + λk I)⁻¹ = Z (Zᵀ Z + λk I)⁻¹ Zᵀ`: with the Cholesky factorisation `G = L Lᵀ`,
//! `S_i = ‖L⁻¹ z_i‖²`. `G` is positive definite because of the ridge; if the factorisation fails
//! all the same, the scores come from the eigendecomposition `Zᵀ Z = V diag(μ) Vᵀ` as
//! `S_i = Σ_j (Z V)_ij² / (μ_j + λk)`.
//!
//! The effective dimension is `Σ S_i`, the trace of `K (K + λk I)⁻¹`. The scores are then
//! normalised to sum to 1.
//!
//! ```
//! use chameleon::mixture::leverage::leverage_scores;
//!
//! let a = [1.0, 0.0];
//! let b = [0.0, 1.0];
//! let c = [0.9, 0.1];
//! let result = leverage_scores(&[("a", &a[..]), ("b", &b[..]), ("c", &c[..])], 10.0).unwrap();
//! assert!((result.scores.iter().sum::<f64>() - 1.0).abs() < 1e-12);
//! // `b` is the most distinctive domain, so it has the largest leverage score.
//! assert!(result.scores[1] > result.scores[0] && result.scores[1] > result.scores[2]);
//! ```

use faer::linalg::matmul::matmul;
use faer::linalg::triangular_solve::solve_lower_triangular_in_place;
use faer::{Accum, Mat, MatRef, Par, Side};

use crate::error::{Error, Result};

/// The leverage scores of a set of domains.
#[derive(Debug, Clone, PartialEq)]
pub struct LeverageScores {
    /// One leverage score per domain, in input order, normalised to sum to 1.
    pub scores: Vec<f64>,
    /// The effective dimension `Σ S_i`, the sum of the scores before normalisation.
    pub effective_dimension: f64,
    /// The reason the scores were set uniform instead of computed, if they were.
    pub degenerate: Option<Degenerate>,
}

/// A case in which the leverage scores carry no information, so each domain gets `1/k`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Degenerate {
    /// There is one domain: its centred embedding is 0.
    SingleDomain,
    /// Every domain has the same embedding, so the centred kernel is 0 and `Σ S_i = 0`.
    IdenticalEmbeddings,
}

/// Computes the normalised leverage scores of named domain embeddings with ridge `lambda`.
///
/// Embeddings are read as given (`f64`). A single domain gets score 1; domains whose embeddings
/// are all equal get `1/k` each, with a warning.
///
/// # Errors
///
/// [`Error::MixtureParameter`] when `lambda` is not a positive finite number,
/// [`Error::Weights`] when `domains` is empty or the kernel overflows,
/// [`Error::EmbeddingDimension`] when two embeddings differ in dimension,
/// [`Error::MissingEmbedding`] when one is empty, and
/// [`Error::NonFiniteEmbedding`] when an embedding contains NaN or an infinity.
pub fn leverage_scores(domains: &[(&str, &[f64])], lambda: f64) -> Result<LeverageScores> {
    if !(lambda.is_finite() && lambda > 0.0) {
        return Err(Error::MixtureParameter {
            key: "lambda",
            value: lambda,
            expected: "the ridge must be a positive finite number (default 10)".into(),
        });
    }
    let Some(&(first_name, first)) = domains.first() else {
        return Err(Error::Weights { message: "the mixture has no domains".into() });
    };
    let dimension = first.len();
    for &(name, embedding) in domains {
        if embedding.is_empty() {
            return Err(Error::MissingEmbedding { domain: name.to_string(), hint: "its embedding is empty (dimension 0); give it at least one value".into() });
        }
        if embedding.len() != dimension {
            return Err(Error::EmbeddingDimension {
                domain: name.to_string(),
                dimension: embedding.len(),
                other_domain: first_name.to_string(),
                other_dimension: dimension,
            });
        }
        if let Some((column, &value)) = embedding.iter().enumerate().find(|(_, v)| !v.is_finite()) {
            return Err(Error::NonFiniteEmbedding { domain: name.to_string(), row: None, column, value });
        }
    }

    let count = domains.len();
    if count == 1 {
        return Ok(uniform(1, 0.0, Degenerate::SingleDomain));
    }
    if domains.iter().all(|(_, embedding)| *embedding == first) {
        tracing::warn!(domains = count, "all domain embeddings are equal, so the leverage scores carry no information; using uniform scores");
        return Ok(uniform(count, 0.0, Degenerate::IdenticalEmbeddings));
    }

    let centred = centre(domains);
    let raw = raw_scores(centred.as_ref(), lambda)?;
    let effective_dimension: f64 = raw.iter().sum();
    if !effective_dimension.is_finite() {
        return Err(Error::Weights {
            message: format!("the leverage scores are not finite (effective dimension {effective_dimension}); the embeddings are too large for f64 products, scale them down"),
        });
    }
    if effective_dimension <= 0.0 {
        tracing::warn!(domains = count, "the centred kernel of the domain embeddings is 0, so the leverage scores carry no information; using uniform scores");
        return Ok(uniform(count, 0.0, Degenerate::IdenticalEmbeddings));
    }

    let scores = raw.iter().map(|score| score / effective_dimension).collect();
    Ok(LeverageScores { scores, effective_dimension, degenerate: None })
}

/// Computes the raw (unnormalised) leverage scores `S_i = [K (K + λk I)⁻¹]_ii` of a centred
/// embedding matrix `Z` (`k × d`, one domain per row), through the smaller of the `k × k` and
/// `d × d` problems.
///
/// # Errors
///
/// [`Error::Weights`] when the eigendecomposition does not converge.
pub fn raw_scores(centred: MatRef<'_, f64>, lambda: f64) -> Result<Vec<f64>> {
    let (count, dimension) = (centred.nrows(), centred.ncols());
    let ridge = lambda * count as f64;
    if dimension >= count {
        let mut kernel = Mat::<f64>::zeros(count, count);
        matmul(kernel.as_mut(), Accum::Replace, centred, centred.transpose(), 1.0, Par::Seq);
        return scores_from_kernel(kernel.as_ref(), lambda);
    }

    let mut gram = Mat::<f64>::zeros(dimension, dimension);
    matmul(gram.as_mut(), Accum::Replace, centred.transpose(), centred, 1.0, Par::Seq);
    let mut regularised = gram.clone();
    for j in 0..dimension {
        regularised[(j, j)] += ridge;
    }
    let Ok(cholesky) = regularised.llt(Side::Lower) else {
        tracing::debug!(domains = count, dimension, "the Cholesky factorisation of Zᵀ Z + λk I failed; using its eigendecomposition");
        return gram_scores_by_eigen(centred, gram, ridge);
    };
    let mut solved = centred.transpose().to_owned();
    solve_lower_triangular_in_place(cholesky.L(), solved.as_mut(), Par::Seq);
    let scores = (0..count).map(|i| solved.col(i).iter().map(|value| value * value).sum::<f64>());
    Ok(scores.map(|score| score.clamp(0.0, 1.0)).collect())
}

/// Computes `S_i = Σ_j (Z V)_ij² / (μ_j + λk)` from the eigendecomposition `Zᵀ Z = V diag(μ) Vᵀ`.
fn gram_scores_by_eigen(centred: MatRef<'_, f64>, gram: Mat<f64>, ridge: f64) -> Result<Vec<f64>> {
    let (count, dimension) = (centred.nrows(), centred.ncols());
    let eigen = gram.self_adjoint_eigen(Side::Lower).map_err(eigen_error)?;
    let eigenvalues = eigen.S().column_vector();
    let mut projected = Mat::<f64>::zeros(count, dimension);
    matmul(projected.as_mut(), Accum::Replace, centred, eigen.U(), 1.0, Par::Seq);

    let mut scores = vec![0.0; count];
    for j in 0..dimension {
        let denominator = eigenvalues[j].max(0.0) + ridge;
        let column = projected.col(j);
        for (score, value) in scores.iter_mut().zip(column.iter()) {
            *score += value * value / denominator;
        }
    }
    Ok(scores.into_iter().map(|score| score.clamp(0.0, 1.0)).collect())
}

/// Computes the raw leverage scores `S_i = Σ_j U_ij² μ_j / (μ_j + λk)` of a symmetric positive
/// semi-definite kernel `K = U diag(μ) Uᵀ` (`k × k`). Only the lower triangle is read, and
/// eigenvalues below 0 (rounding) are clipped to 0.
///
/// # Errors
///
/// [`Error::Weights`] when the eigendecomposition does not converge.
pub fn scores_from_kernel(kernel: MatRef<'_, f64>, lambda: f64) -> Result<Vec<f64>> {
    let count = kernel.nrows();
    let ridge = lambda * count as f64;
    let eigen = kernel.self_adjoint_eigen(Side::Lower).map_err(eigen_error)?;
    let eigenvalues = eigen.S().column_vector();
    let vectors = eigen.U();

    let mut scores = vec![0.0; count];
    for j in 0..count {
        let eigenvalue = eigenvalues[j].max(0.0);
        let shrinkage = eigenvalue / (eigenvalue + ridge);
        if shrinkage == 0.0 {
            continue;
        }
        for (score, value) in scores.iter_mut().zip(vectors.col(j).iter()) {
            *score += value * value * shrinkage;
        }
    }
    Ok(scores.into_iter().map(|score| score.clamp(0.0, 1.0)).collect())
}

/// Subtracts the column means from the embeddings, returning `Z` (`k × d`).
///
/// The mean is computed in two passes (the mean, then the mean of the residuals added back), so
/// a large component shared by every domain cancels to within rounding of the values themselves.
fn centre(domains: &[(&str, &[f64])]) -> Mat<f64> {
    let count = domains.len();
    let dimension = domains[0].1.len();
    let mut mean = vec![0.0; dimension];
    for (_, embedding) in domains {
        for (total, value) in mean.iter_mut().zip(embedding.iter()) {
            *total += value;
        }
    }
    for total in &mut mean {
        *total /= count as f64;
    }
    let mut correction = vec![0.0; dimension];
    for (_, embedding) in domains {
        for ((total, value), centre) in correction.iter_mut().zip(embedding.iter()).zip(&mean) {
            *total += value - centre;
        }
    }
    for (centre, total) in mean.iter_mut().zip(&correction) {
        *centre += total / count as f64;
    }

    Mat::from_fn(count, dimension, |i, j| domains[i].1[j] - mean[j])
}

/// Uniform scores for a degenerate case.
fn uniform(count: usize, effective_dimension: f64, reason: Degenerate) -> LeverageScores {
    LeverageScores { scores: vec![1.0 / count as f64; count], effective_dimension, degenerate: Some(reason) }
}

fn eigen_error(error: faer::linalg::evd::EvdError) -> Error {
    Error::Weights { message: format!("the eigendecomposition of the domain kernel failed ({error:?}); check the embeddings for extreme values") }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel route and the Gram route give the same scores.
    #[test]
    fn kernel_and_gram_routes_agree() {
        let rows: Vec<Vec<f64>> = (0..6).map(|i| (0..3).map(|j| ((i * 7 + j * 3) % 5) as f64 + 0.1 * i as f64).collect()).collect();
        let centred = Mat::from_fn(6, 3, |i, j| rows[i][j] - rows.iter().map(|r| r[j]).sum::<f64>() / 6.0);
        let gram_route = raw_scores(centred.as_ref(), 0.5).unwrap();
        let mut kernel = Mat::<f64>::zeros(6, 6);
        matmul(kernel.as_mut(), Accum::Replace, centred.as_ref(), centred.transpose(), 1.0, Par::Seq);
        let kernel_route = scores_from_kernel(kernel.as_ref(), 0.5).unwrap();
        for (a, b) in gram_route.iter().zip(&kernel_route) {
            assert!((a - b).abs() < 1e-12, "{gram_route:?} vs {kernel_route:?}");
        }
    }

    /// The Cholesky and eigendecomposition versions of the Gram route agree.
    #[test]
    fn gram_cholesky_and_eigen_agree() {
        let centred = Mat::from_fn(9, 3, |i, j| ((i * 5 + j * 7) % 11) as f64 - 5.0 + 0.01 * (i * j) as f64);
        let mut gram = Mat::<f64>::zeros(3, 3);
        matmul(gram.as_mut(), Accum::Replace, centred.transpose(), centred.as_ref(), 1.0, Par::Seq);
        let by_eigen = gram_scores_by_eigen(centred.as_ref(), gram, 0.3 * 9.0).unwrap();
        let by_cholesky = raw_scores(centred.as_ref(), 0.3).unwrap();
        for (a, b) in by_eigen.iter().zip(&by_cholesky) {
            assert!((a - b).abs() < 1e-12, "{by_eigen:?} vs {by_cholesky:?}");
        }
    }

    #[test]
    fn lambda_must_be_positive() {
        let a = [1.0, 2.0];
        for lambda in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let error = leverage_scores(&[("a", &a[..]), ("b", &a[..])], lambda).unwrap_err();
            assert!(error.to_string().contains("lambda"), "{error}");
        }
    }
}
