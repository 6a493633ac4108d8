//! Mixture policies that turn per-domain statistics into weights, and weight bounds.
//!
//! Every function here returns weights that are finite, at least 0 and sum to 1.
//!
//! ```
//! use chameleon::mixture::policy::{apply_bounds, softmax};
//!
//! let weights = softmax(&[1.0, 2.0, 3.0], 1.0);
//! assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12);
//! let bounded = apply_bounds(&weights, &["a", "b", "c"], Some(0.2), Some(0.5)).unwrap();
//! assert!(bounded.iter().all(|w| (0.2 - 1e-12..=0.5 + 1e-12).contains(w)));
//! ```

use crate::error::{Error, Result};

/// Returns `softmax(logits / temperature)`, computed stably by subtracting the max logit.
///
/// Logits of `-∞` get weight 0. When some logits are `+∞`, the weight is shared equally among
/// them, which is the limit of the softmax.
///
/// # Panics
///
/// Panics when `logits` is empty or all `-∞`, or when a logit is NaN; callers check these.
pub fn softmax(logits: &[f64], temperature: f64) -> Vec<f64> {
    let scaled: Vec<f64> = logits.iter().map(|logit| logit / temperature).collect();
    assert!(scaled.iter().all(|value| !value.is_nan()), "softmax needs logits that are not NaN: {logits:?}");
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    assert!(max > f64::NEG_INFINITY, "softmax needs at least one logit above -inf");

    if max == f64::INFINITY {
        let infinite = scaled.iter().filter(|value| **value == f64::INFINITY).count() as f64;
        return scaled.iter().map(|value| if *value == f64::INFINITY { 1.0 / infinite } else { 0.0 }).collect();
    }
    let exponentials: Vec<f64> = scaled.iter().map(|value| (value - max).exp()).collect();
    let total: f64 = exponentials.iter().sum();
    exponentials.into_iter().map(|value| value / total).collect()
}

/// Computes Chameleon pretraining weights `softmax((1/S_i) / T)` from normalised leverage scores:
/// domains that share structure with the others (low score) gain weight.
///
/// A domain with score 0 has an infinite logit; the domains with score 0 then share the whole
/// mixture, with a warning.
pub fn chameleon_pretrain(names: &[&str], scores: &[f64], temperature: f64) -> Vec<f64> {
    let logits: Vec<f64> = scores.iter().map(|score| 1.0 / score).collect();
    let zero: Vec<&str> = names.iter().zip(scores).filter(|(_, score)| **score == 0.0).map(|(name, _)| *name).collect();
    if !zero.is_empty() {
        tracing::warn!(domains = ?zero, "these domains have leverage score 0 (their embedding equals the mean embedding), so the pretraining mixture gives them all the weight");
    }
    softmax(&logits, temperature)
}

/// Computes Chameleon finetuning weights `softmax(S_i / T)` from normalised leverage scores:
/// distinctive domains (high score) gain weight.
pub fn chameleon_finetune(scores: &[f64], temperature: f64) -> Vec<f64> {
    softmax(scores, temperature)
}

/// Computes weights proportional to each domain's token count.
///
/// # Errors
///
/// [`Error::Weights`] when every count is 0.
pub fn proportional(names: &[&str], tokens: &[u64]) -> Result<Vec<f64>> {
    let total: f64 = tokens.iter().map(|&count| count as f64).sum();
    if total <= 0.0 {
        return Err(all_empty(names, "proportional"));
    }
    Ok(tokens.iter().map(|&count| count as f64 / total).collect())
}

/// Computes temperature-sampling weights `p_i ∝ n_i^(1/T)` from token counts `n_i`, in log space
/// so that large counts and small temperatures do not overflow. A domain with no tokens gets 0.
///
/// # Errors
///
/// [`Error::Weights`] when every count is 0.
pub fn temperature_sampling(names: &[&str], tokens: &[u64], temperature: f64) -> Result<Vec<f64>> {
    if tokens.iter().all(|&count| count == 0) {
        return Err(all_empty(names, "temperature"));
    }
    let logits: Vec<f64> = tokens.iter().map(|&count| (count as f64).ln()).collect();
    Ok(softmax(&logits, temperature))
}

/// Computes UniMax weights (Chung et al. 2023): a token budget spread as uniformly as possible
/// over the domains, with no domain repeated more than `max_epochs` times.
///
/// Domains are visited from smallest to largest. Each gets `min(remaining budget / remaining
/// domains, max_epochs × its tokens)`, so what a capped domain cannot use goes to the larger ones.
/// The weights are the allocations divided by their sum. When the budget exceeds
/// `max_epochs × total tokens` every domain is capped, which is logged at info level.
///
/// # Errors
///
/// [`Error::MixtureParameter`] when `budget_tokens` is 0 or `max_epochs` is not positive and
/// finite, [`Error::Weights`] when every count is 0.
pub fn unimax(names: &[&str], tokens: &[u64], budget_tokens: u64, max_epochs: f64) -> Result<Vec<f64>> {
    if budget_tokens == 0 {
        return Err(Error::MixtureParameter { key: "budget_tokens", value: 0.0, expected: "the unimax token budget must be at least 1".into() });
    }
    if !(max_epochs.is_finite() && max_epochs > 0.0) {
        return Err(Error::MixtureParameter { key: "max_epochs", value: max_epochs, expected: "the unimax epoch cap must be a positive finite number".into() });
    }
    if tokens.iter().all(|&count| count == 0) {
        return Err(all_empty(names, "unimax"));
    }

    let mut order: Vec<usize> = (0..tokens.len()).collect();
    order.sort_by_key(|&index| tokens[index]);
    let mut allocations = vec![0.0; tokens.len()];
    let mut remaining = budget_tokens as f64;
    let mut capped = Vec::new();
    for (position, &index) in order.iter().enumerate() {
        let share = remaining / (order.len() - position) as f64;
        let cap = max_epochs * tokens[index] as f64;
        if cap < share {
            capped.push(names[index]);
        }
        allocations[index] = share.min(cap);
        remaining -= allocations[index];
    }
    if !capped.is_empty() {
        tracing::info!(domains = ?capped, max_epochs, "unimax: these domains are capped at max_epochs times their tokens");
    }
    if capped.len() == tokens.len() {
        tracing::info!(budget_tokens, max_epochs, "unimax: the budget exceeds max_epochs times all tokens, so every domain is capped and the weights are proportional");
    }

    let total: f64 = allocations.iter().sum();
    Ok(allocations.into_iter().map(|allocation| allocation / total).collect())
}

/// Clamps weights into `[min_weight, max_weight]` and renormalises the domains that stay free,
/// repeating until no bound is violated.
///
/// The fixed point of that iteration is `w_i = clamp(c · p_i, min, max)` with the one scale `c`
/// for which the weights sum to 1. Its left-hand side is piecewise linear and non-decreasing in
/// `c`, with breakpoints at `min/p_i` and `max/p_i`, so `c` is solved exactly on the segment
/// where the sum crosses 1. Domains with weight 0 are raised to `min_weight`. An info line names
/// each bound that binds and its domains.
///
/// # Errors
///
/// [`Error::MixtureParameter`] when a bound is outside `[0, 1]` or `min_weight > max_weight`,
/// [`Error::Config`] when the bounds are infeasible: `min_weight × k > 1`, or `max_weight` times
/// the number of domains with positive weight is below 1.
pub fn apply_bounds(weights: &[f64], names: &[&str], min_weight: Option<f64>, max_weight: Option<f64>) -> Result<Vec<f64>> {
    if min_weight.is_none() && max_weight.is_none() {
        return Ok(weights.to_vec());
    }
    let lower = min_weight.unwrap_or(0.0);
    let upper = max_weight.unwrap_or(1.0);
    check_bounds(lower, upper, weights)?;

    let total: f64 = weights.iter().sum();
    let shares: Vec<f64> = weights.iter().map(|weight| weight / total).collect();
    let sum_at = |scale: f64| -> f64 { shares.iter().map(|share| (scale * share).clamp(lower, upper)).sum() };

    let mut breakpoints: Vec<f64> = shares.iter().filter(|share| **share > 0.0).flat_map(|share| [lower / share, upper / share]).collect();
    breakpoints.sort_by(f64::total_cmp);
    let crossing = breakpoints.partition_point(|&scale| sum_at(scale) < 1.0);
    let scale = if crossing == breakpoints.len() {
        // Only reachable through rounding: the feasibility check guarantees the sum reaches 1.
        breakpoints.last().copied().unwrap_or(1.0)
    } else {
        let high = breakpoints[crossing];
        let low = if crossing == 0 { 0.0 } else { breakpoints[crossing - 1] };
        solve_segment(&shares, lower, upper, low, high)
    };

    let mut bounded: Vec<f64> = shares.iter().map(|share| (scale * share).clamp(lower, upper)).collect();
    let sum: f64 = bounded.iter().sum();
    for weight in &mut bounded {
        *weight /= sum;
    }
    log_binding_bounds(names, &shares, scale, lower, upper, min_weight, max_weight);
    Ok(bounded)
}

/// Solves `Σ clamp(c · p_i, lower, upper) = 1` for `c` in `[low, high]`, where the set of clamped
/// domains is constant inside the segment.
fn solve_segment(shares: &[f64], lower: f64, upper: f64, low: f64, high: f64) -> f64 {
    let middle = 0.5 * (low + high);
    let mut fixed = 0.0;
    let mut free = 0.0;
    for &share in shares {
        let value = middle * share;
        if value <= lower {
            fixed += lower;
        } else if value >= upper {
            fixed += upper;
        } else {
            free += share;
        }
    }
    if free == 0.0 {
        return high;
    }
    ((1.0 - fixed) / free).clamp(low, high)
}

fn check_bounds(lower: f64, upper: f64, weights: &[f64]) -> Result<()> {
    let count = weights.len();
    if !(0.0..=1.0).contains(&lower) {
        return Err(Error::MixtureParameter { key: "min_weight", value: lower, expected: "must be in [0, 1]".into() });
    }
    if !(0.0..=1.0).contains(&upper) {
        return Err(Error::MixtureParameter { key: "max_weight", value: upper, expected: "must be in [0, 1]".into() });
    }
    if lower > upper {
        return Err(Error::MixtureParameter { key: "min_weight", value: lower, expected: format!("must not exceed max_weight = {upper}") });
    }
    if lower * count as f64 > 1.0 + 1e-12 {
        return Err(Error::config(format!(
            "min_weight = {lower} with {count} domains needs {:.4} of the mixture (more than 1); lower min_weight to at most {:.4}",
            lower * count as f64,
            // Rounded down, so that the suggested value passes this check.
            (1e4 / count as f64).floor() / 1e4
        )));
    }
    let positive = weights.iter().filter(|weight| **weight > 0.0).count();
    let reachable = upper * positive as f64 + lower * (count - positive) as f64;
    if reachable < 1.0 - 1e-12 {
        return Err(Error::config(format!(
            "max_weight = {upper} with {positive} domains of positive weight (and {} at weight 0) reaches only {reachable:.4} of the mixture; raise max_weight to at least {:.4}",
            count - positive,
            // Rounded up, so that the suggested value passes this check.
            ((1.0 - lower * (count - positive) as f64) / positive.max(1) as f64 * 1e4).ceil() / 1e4
        )));
    }
    Ok(())
}

fn log_binding_bounds(names: &[&str], shares: &[f64], scale: f64, lower: f64, upper: f64, min_weight: Option<f64>, max_weight: Option<f64>) {
    let at_min: Vec<&str> = names.iter().zip(shares).filter(|(_, share)| min_weight.is_some() && scale * **share < lower).map(|(name, _)| *name).collect();
    let at_max: Vec<&str> = names.iter().zip(shares).filter(|(_, share)| max_weight.is_some() && scale * **share > upper).map(|(name, _)| *name).collect();
    if !at_min.is_empty() {
        tracing::info!(min_weight = lower, domains = ?at_min, "min_weight binds: these domains were raised to it");
    }
    if !at_max.is_empty() {
        tracing::info!(max_weight = upper, domains = ?at_max, "max_weight binds: these domains were lowered to it");
    }
}

fn all_empty(names: &[&str], policy: &str) -> Error {
    Error::Weights { message: format!("the {policy} policy needs tokens, but all {} domains ({}) have 0 tokens", names.len(), names.join(", ")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: &[f64], expected: &[f64]) {
        assert_eq!(actual.len(), expected.len());
        for (a, e) in actual.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{actual:?} vs {expected:?}");
        }
    }

    #[test]
    fn softmax_is_stable_for_large_logits() {
        let weights = softmax(&[1000.0, 1001.0], 1.0);
        let e = std::f64::consts::E;
        assert_close(&weights, &[1.0 / (1.0 + e), e / (1.0 + e)]);
    }

    #[test]
    fn softmax_shares_infinite_logits() {
        assert_close(&softmax(&[f64::INFINITY, 1.0, f64::INFINITY], 5.0), &[0.5, 0.0, 0.5]);
    }

    #[test]
    fn temperature_one_is_proportional() {
        let names = ["a", "b", "c"];
        let tokens = [10, 30, 60];
        assert_close(&temperature_sampling(&names, &tokens, 1.0).unwrap(), &proportional(&names, &tokens).unwrap());
    }

    #[test]
    fn temperature_flattens_counts() {
        let weights = temperature_sampling(&["a", "b"], &[100, 400], 2.0).unwrap();
        assert_close(&weights, &[1.0 / 3.0, 2.0 / 3.0]);
        let with_empty = temperature_sampling(&["a", "b"], &[0, 400], 2.0).unwrap();
        assert_close(&with_empty, &[0.0, 1.0]);
    }

    #[test]
    fn proportional_rejects_all_empty() {
        let error = proportional(&["a", "b"], &[0, 0]).unwrap_err();
        assert!(error.to_string().contains("0 tokens"), "{error}");
    }

    #[test]
    fn unimax_caps_small_domains() {
        // Budget 300 over 3 domains: 100 each, but `a` has 10 tokens and 2 epochs, so it gets 20.
        // The remaining 280 is split over `b` and `c`: 140 each, and `b` (50 tokens) is capped at 100.
        let weights = unimax(&["a", "b", "c"], &[10, 50, 1000], 300, 2.0).unwrap();
        assert_close(&weights, &[20.0 / 300.0, 100.0 / 300.0, 180.0 / 300.0]);
    }

    #[test]
    fn unimax_uniform_when_uncapped() {
        let weights = unimax(&["a", "b", "c"], &[1000, 2000, 3000], 300, 1.0).unwrap();
        assert_close(&weights, &[1.0 / 3.0; 3]);
    }

    #[test]
    fn unimax_all_capped_is_proportional() {
        let weights = unimax(&["a", "b"], &[10, 30], 1_000_000, 4.0).unwrap();
        assert_close(&weights, &[0.25, 0.75]);
    }

    #[test]
    fn unimax_rejects_bad_parameters() {
        assert!(unimax(&["a"], &[10], 0, 1.0).unwrap_err().to_string().contains("budget_tokens"));
        assert!(unimax(&["a"], &[10], 10, 0.0).unwrap_err().to_string().contains("max_epochs"));
        assert!(unimax(&["a"], &[10], 10, f64::NAN).unwrap_err().to_string().contains("max_epochs"));
    }

    #[test]
    fn bounds_cap_and_redistribute() {
        let bounded = apply_bounds(&[0.7, 0.2, 0.1], &["a", "b", "c"], None, Some(0.5)).unwrap();
        assert_close(&bounded, &[0.5, 0.5 * 2.0 / 3.0, 0.5 / 3.0]);
    }

    #[test]
    fn bounds_raise_small_weights() {
        let bounded = apply_bounds(&[0.9, 0.1, 0.0], &["a", "b", "c"], Some(0.1), None).unwrap();
        assert_close(&bounded, &[0.8, 0.1, 0.1]);
    }

    #[test]
    fn bounds_both_sides() {
        let bounded = apply_bounds(&[0.85, 0.1, 0.04, 0.01], &["a", "b", "c", "d"], Some(0.05), Some(0.6)).unwrap();
        assert!((bounded.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((bounded[0] - 0.6).abs() < 1e-12, "{bounded:?}");
        assert!((bounded[3] - 0.05).abs() < 1e-12, "{bounded:?}");
        assert!(bounded.iter().all(|w| (0.05 - 1e-12..=0.6 + 1e-12).contains(w)), "{bounded:?}");
        // The free domains keep their ratio.
        assert!((bounded[1] / bounded[2] - 0.1 / 0.04).abs() < 1e-9, "{bounded:?}");
    }

    #[test]
    fn bounds_reject_infeasible() {
        let error = apply_bounds(&[0.5, 0.5, 0.0], &["a", "b", "c"], Some(0.4), None).unwrap_err();
        assert!(error.to_string().contains("min_weight"), "{error}");
        let error = apply_bounds(&[0.5, 0.5, 0.0], &["a", "b", "c"], None, Some(0.3)).unwrap_err();
        assert!(error.to_string().contains("max_weight"), "{error}");
        let error = apply_bounds(&[0.5, 0.5], &["a", "b"], Some(0.4), Some(0.3)).unwrap_err();
        assert!(error.to_string().contains("min_weight"), "{error}");
        let error = apply_bounds(&[0.5, 0.5], &["a", "b"], Some(-0.1), None).unwrap_err();
        assert!(error.to_string().contains("min_weight"), "{error}");
    }

    #[test]
    fn bounds_seeded_random_weights() {
        use rand::{Rng, SeedableRng};
        let seed = 20_250_101;
        println!("seed {seed}");
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        for _ in 0..500 {
            let count = rng.random_range(2..12);
            let raw: Vec<f64> = (0..count).map(|_| rng.random::<f64>().powi(4)).collect();
            let names: Vec<String> = (0..count).map(|i| format!("d{i}")).collect();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let lower = rng.random::<f64>() / count as f64;
            let upper = (1.0 / count as f64 + rng.random::<f64>()).min(1.0);
            let bounded = apply_bounds(&raw, &names, Some(lower), Some(upper)).unwrap();
            assert!((bounded.iter().sum::<f64>() - 1.0).abs() < 1e-9, "seed {seed}: {bounded:?}");
            for weight in &bounded {
                assert!(*weight >= lower - 1e-9, "seed {seed}: {weight} below min_weight {lower}");
                assert!(*weight <= upper + 1e-9, "seed {seed}: {weight} above max_weight {upper}");
            }
        }
    }
}
