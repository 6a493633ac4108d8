//! Leverage scores and Chameleon weights against a float64 NumPy implementation.
//!
//! `tests/reference/leverage_reference.py` wrote `leverage_reference.json` from embeddings drawn
//! with SplitMix64, which this file implements identically, so the embeddings are rebuilt here bit
//! for bit (checked through a checksum of their bit patterns) and only the results are stored.

use chameleon::mixture::{compute, DomainSummary, MixtureConfig, PolicyName};
use serde::Deserialize;

const TOLERANCE: f64 = 1e-9;

#[derive(Debug, Deserialize)]
struct Reference {
    pretrain_temperature: f64,
    finetune_temperature: f64,
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
struct Case {
    name: String,
    seed: u64,
    k: usize,
    d: usize,
    kind: String,
    offset: f64,
    scale: f64,
    lambda: f64,
    checksum: u64,
    first_bits: u64,
    effective_dimension: f64,
    scores: Vec<f64>,
    pretrain_weights: Vec<f64>,
    finetune_weights: Vec<f64>,
}

/// SplitMix64, as in the reference script.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / 9_007_199_254_740_992.0)
    }
}

/// Builds a case's embeddings exactly as `embeddings()` in the reference script does.
fn embeddings(case: &Case) -> Vec<Vec<f64>> {
    let mut rng = SplitMix64(case.seed);
    let (k, d, offset, scale) = (case.k, case.d, case.offset, case.scale);
    let mut rows: Vec<Vec<f64>> = Vec::with_capacity(k);
    match case.kind.as_str() {
        "uniform" => {
            for _ in 0..k {
                rows.push((0..d).map(|_| offset + scale * (rng.uniform() - 0.5)).collect());
            }
        }
        "near_duplicates" => {
            let half = k / 2;
            for _ in 0..half {
                rows.push((0..d).map(|_| offset + scale * (rng.uniform() - 0.5)).collect());
            }
            for i in 0..k - half {
                let source = rows[i % half].clone();
                rows.push((0..d).map(|j| source[j] + 1e-9 * (rng.uniform() - 0.5)).collect());
            }
        }
        "clusters" => {
            let centres: Vec<Vec<f64>> = (0..3).map(|_| (0..d).map(|_| scale * (rng.uniform() - 0.5)).collect()).collect();
            for i in 0..k {
                let cluster = if i < k / 2 {
                    0
                } else if i < k - 1 {
                    1
                } else {
                    2
                };
                rows.push((0..d).map(|j| offset + centres[cluster][j] + 0.1 * scale * (rng.uniform() - 0.5)).collect());
            }
        }
        other => panic!("case {}: unknown kind {other}", case.name),
    }
    rows
}

/// Computes the wrapping sum of the values' bit patterns, as the reference script does.
fn bit_checksum(rows: &[Vec<f64>]) -> u64 {
    rows.iter().flatten().fold(0u64, |total, value| total.wrapping_add(value.to_bits()))
}

fn load_reference() -> Reference {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/reference/leverage_reference.json");
    let text = std::fs::read_to_string(path).unwrap_or_else(|error| panic!("cannot read {path}: {error}"));
    serde_json::from_str(&text).unwrap_or_else(|error| panic!("cannot parse {path}: {error}"))
}

/// Asserts that `actual` is within [`TOLERANCE`] of `expected` and returns the largest difference.
fn assert_close(case: &str, quantity: &str, actual: &[f64], expected: &[f64]) -> f64 {
    assert_eq!(actual.len(), expected.len(), "case {case}: {quantity} length");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= TOLERANCE, "case {case}: {quantity}[{i}] = {a}, NumPy gives {e} (difference {:e})", (a - e).abs());
    }
    actual.iter().zip(expected).map(|(a, e)| (a - e).abs()).fold(0.0, f64::max)
}

#[test]
fn reference_covers_required_shapes() {
    let reference = load_reference();
    let ks: Vec<usize> = reference.cases.iter().map(|case| case.k).collect();
    let ds: Vec<usize> = reference.cases.iter().map(|case| case.d).collect();
    assert!(ks.contains(&1), "k from 1: {ks:?}");
    assert!(ks.contains(&200), "k up to 200: {ks:?}");
    assert!(ds.contains(&2), "d from 2: {ds:?}");
    assert!(ds.contains(&2048), "d up to 2048: {ds:?}");
    assert!(reference.cases.iter().any(|case| case.offset >= 1e6), "a large shared component");
    assert!(reference.cases.iter().any(|case| case.kind == "near_duplicates"), "near-duplicate domains");
    assert!(reference.cases.iter().any(|case| case.d < case.k), "the Gram route (d < k)");
}

#[test]
fn reference_embeddings_rebuilt_exactly() {
    for case in load_reference().cases {
        let rows = embeddings(&case);
        assert_eq!(rows[0][0].to_bits(), case.first_bits, "case {}: first value", case.name);
        assert_eq!(bit_checksum(&rows), case.checksum, "case {}: checksum of the embeddings", case.name);
    }
}

#[test]
fn scores_and_weights_match_numpy() {
    let reference = load_reference();
    for case in &reference.cases {
        let rows = embeddings(case);
        let names: Vec<String> = (0..case.k).map(|i| format!("domain{i:03}")).collect();
        let domains: Vec<DomainSummary<'_>> = names.iter().zip(&rows).map(|(name, row)| DomainSummary::new(name).with_embedding(row)).collect();

        for (policy, temperature, expected) in [
            (PolicyName::ChameleonPretrain, reference.pretrain_temperature, &case.pretrain_weights),
            (PolicyName::ChameleonFinetune, reference.finetune_temperature, &case.finetune_weights),
        ] {
            let config = MixtureConfig { policy, lambda: case.lambda, ..MixtureConfig::default() };
            assert_eq!(config.temperature(), Some(temperature), "the default temperature of {policy:?}");
            let mixture = compute(&config, &domains).unwrap_or_else(|error| panic!("case {}: {error}", case.name));

            let scores = mixture.scores.as_deref().expect("Chameleon policies report scores");
            let score_difference = assert_close(&case.name, "score", scores, &case.scores);
            let weight_difference = assert_close(&case.name, &format!("{} weight", policy.as_str()), &mixture.weights, expected);
            println!("{:<24} {:<19} max |score difference| {score_difference:.1e}, max |weight difference| {weight_difference:.1e}", case.name, policy.as_str());
            let effective_dimension = mixture.effective_dimension.expect("Chameleon policies report the effective dimension");
            assert!(
                (effective_dimension - case.effective_dimension).abs() <= TOLERANCE * case.effective_dimension.max(1.0),
                "case {}: effective dimension {effective_dimension}, NumPy gives {}",
                case.name,
                case.effective_dimension
            );
        }
    }
}
