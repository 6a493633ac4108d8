//! Guards of the Chameleon policies: degenerate inputs, invalid inputs and rounding.

use chameleon::mixture::leverage::scores_from_kernel;
use chameleon::mixture::policy::{apply_bounds, chameleon_finetune, chameleon_pretrain};
use chameleon::mixture::{compute, DomainSummary, Mixture, MixtureConfig, PolicyName};
use chameleon::Error;
use faer::Mat;

fn config(policy: PolicyName) -> MixtureConfig {
    MixtureConfig { policy, ..MixtureConfig::default() }
}

fn chameleon(policy: PolicyName, embeddings: &[(&str, &[f64])]) -> Result<Mixture, Error> {
    let domains: Vec<DomainSummary<'_>> = embeddings.iter().map(|(name, embedding)| DomainSummary::new(name).with_embedding(embedding)).collect();
    compute(&config(policy), &domains)
}

fn assert_valid(mixture: &Mixture) {
    let total: f64 = mixture.weights.iter().sum();
    assert!((total - 1.0).abs() < 1e-12, "weights sum to {total}: {:?}", mixture.weights);
    for weight in &mixture.weights {
        assert!((0.0..=1.0).contains(weight), "weight {weight}: {:?}", mixture.weights);
    }
    for score in mixture.scores.as_deref().unwrap_or_default() {
        assert!((0.0..=1.0).contains(score), "score {score}: {:?}", mixture.scores);
    }
}

#[test]
fn single_domain_gets_weight_one() {
    for policy in [PolicyName::ChameleonPretrain, PolicyName::ChameleonFinetune] {
        let mixture = chameleon(policy, &[("only", &[0.3, 0.7])]).unwrap();
        assert_eq!(mixture.weights, vec![1.0]);
        assert_eq!(mixture.scores, Some(vec![1.0]));
        assert_eq!(mixture.effective_dimension, Some(0.0));
    }
}

#[test]
fn two_domains_are_uniform() {
    for policy in [PolicyName::ChameleonPretrain, PolicyName::ChameleonFinetune] {
        let mixture = chameleon(policy, &[("a", &[1.0, 2.0, 3.0]), ("b", &[-4.0, 0.5, 9.0])]).unwrap();
        assert_valid(&mixture);
        assert!((mixture.weights[0] - 0.5).abs() < 1e-15, "{:?}", mixture.weights);
        assert!((mixture.weights[1] - 0.5).abs() < 1e-15, "{:?}", mixture.weights);
        assert!(mixture.effective_dimension.unwrap() > 0.0);
    }
}

#[test]
fn all_equal_embeddings_are_uniform() {
    let x = [0.1, 0.2, 0.3];
    for policy in [PolicyName::ChameleonPretrain, PolicyName::ChameleonFinetune] {
        let mixture = chameleon(policy, &[("a", &x), ("b", &x), ("c", &x)]).unwrap();
        assert_valid(&mixture);
        assert_eq!(mixture.weights, vec![1.0 / 3.0; 3]);
        assert_eq!(mixture.effective_dimension, Some(0.0));
    }
}

#[test]
fn identical_embeddings_two_of_four() {
    let (a, c, d) = ([1.0, 0.0, 0.5], [0.0, 1.0, 0.0], [0.3, 0.3, 2.0]);
    for policy in [PolicyName::ChameleonPretrain, PolicyName::ChameleonFinetune] {
        let mixture = chameleon(policy, &[("a", &a), ("b", &a), ("c", &c), ("d", &d)]).unwrap();
        assert_valid(&mixture);
        let scores = mixture.scores.as_deref().unwrap();
        assert!((scores[0] - scores[1]).abs() < 1e-12, "identical domains get equal scores: {scores:?}");
        assert!((mixture.weights[0] - mixture.weights[1]).abs() < 1e-12, "{:?}", mixture.weights);
    }
}

#[test]
fn identical_embeddings_with_large_offset() {
    let a: Vec<f64> = (0..8).map(|j| 1e6 + j as f64 * 1e-3).collect();
    let b: Vec<f64> = (0..8).map(|j| 1e6 - (j * j) as f64 * 1e-3).collect();
    let c: Vec<f64> = (0..8).map(|j| 1e6 + ((j * 5) % 3) as f64 * 1e-3).collect();
    for policy in [PolicyName::ChameleonPretrain, PolicyName::ChameleonFinetune] {
        let mixture = chameleon(policy, &[("a", &a), ("b", &b), ("a-copy", &a), ("c", &c)]).unwrap();
        assert_valid(&mixture);
    }
}

/// Builds `K = U diag(eigenvalues) Uᵀ` with `U` the Householder reflection of `v`.
fn kernel_with_eigenvalues(eigenvalues: &[f64], v: &[f64]) -> Mat<f64> {
    let n = eigenvalues.len();
    let norm2: f64 = v.iter().map(|x| x * x).sum();
    let u = Mat::from_fn(n, n, |i, j| f64::from(u8::from(i == j)) - 2.0 * v[i] * v[j] / norm2);
    Mat::from_fn(n, n, |i, j| (0..n).map(|m| u[(i, m)] * eigenvalues[m] * u[(j, m)]).sum())
}

#[test]
fn negative_eigenvalue_kernel_scores_stay_in_range() {
    let eigenvalues = [-1e-12, 0.0, 2.0, 5.0, 30.0];
    for (v, lambda) in [([1.0, 0.0, 0.0, 0.0, 0.0], 10.0), ([0.9, 0.1, 0.2, 0.0, 0.3], 1e-3), ([1.0, 1.0, 1.0, 1.0, 1.0], 1e-14)] {
        let kernel = kernel_with_eigenvalues(&eigenvalues, &v);
        let raw = scores_from_kernel(kernel.as_ref(), lambda).unwrap();
        for score in &raw {
            assert!((0.0..=1.0).contains(score), "lambda {lambda}, v {v:?}: raw scores {raw:?}");
        }

        let total: f64 = raw.iter().sum();
        let scores: Vec<f64> = raw.iter().map(|score| score / total).collect();
        let names = ["a", "b", "c", "d", "e"];
        for weights in [chameleon_pretrain(&names, &scores, 5.0), chameleon_finetune(&scores, 0.2)] {
            assert!(weights.iter().all(|weight| weight.is_finite() && *weight >= 0.0), "{weights:?}");
            assert!((weights.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{weights:?}");
        }
    }
}

#[test]
fn negative_eigenvalue_domain_at_mean() {
    // The centred kernel of these embeddings is rank 1 with two zero eigenvalues, which rounding
    // can make slightly negative. Domain `c` sits at the mean, so its score is 0 and the
    // pretraining mixture gives it all the weight (the limit of an infinite logit).
    let (a, b, c) = ([1.0, 3.0], [-1.0, -3.0], [0.0, 0.0]);
    let pretrain = chameleon(PolicyName::ChameleonPretrain, &[("a", &a), ("b", &b), ("c", &c)]).unwrap();
    assert_valid(&pretrain);
    assert_eq!(pretrain.weights, vec![0.0, 0.0, 1.0]);
    let finetune = chameleon(PolicyName::ChameleonFinetune, &[("a", &a), ("b", &b), ("c", &c)]).unwrap();
    assert_valid(&finetune);
    assert!(finetune.weights[2] < finetune.weights[0], "{:?}", finetune.weights);
}

#[test]
fn non_finite_embedding_names_domain() {
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let error = chameleon(PolicyName::ChameleonPretrain, &[("a", &[1.0, 2.0]), ("b", &[0.0, bad]), ("c", &[3.0, 1.0])]).unwrap_err();
        assert!(matches!(error, Error::NonFiniteEmbedding { ref domain, column: 1, .. } if domain == "b"), "{error:?}");
        assert!(error.to_string().contains("domain 'b'"), "{error}");
    }
}

#[test]
fn dimension_mismatch_names_both_domains() {
    let error = chameleon(PolicyName::ChameleonFinetune, &[("a", &[1.0, 2.0]), ("b", &[0.0, 1.0]), ("c", &[3.0, 1.0, 4.0])]).unwrap_err();
    let message = error.to_string();
    assert!(message.contains("domain 'c'"), "{message}");
    assert!(message.contains("dimension 3"), "{message}");
    assert!(message.contains("domain 'a'"), "{message}");
    assert!(message.contains("dimension 2"), "{message}");
}

#[test]
fn missing_embedding_names_domain() {
    let x = [1.0, 2.0];
    let domains = [DomainSummary::new("a").with_embedding(&x), DomainSummary::new("books")];
    let error = compute(&config(PolicyName::ChameleonPretrain), &domains).unwrap_err();
    assert!(matches!(error, Error::MissingEmbedding { ref domain, .. } if domain == "books"), "{error:?}");
    assert!(error.to_string().contains("books.npy"), "{error}");
}

#[test]
fn nonpositive_lambda_rejected() {
    let (a, b, c) = ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]);
    let domains = [DomainSummary::new("a").with_embedding(&a), DomainSummary::new("b").with_embedding(&b), DomainSummary::new("c").with_embedding(&c)];
    for lambda in [0.0, -10.0, f64::NAN] {
        let config = MixtureConfig { policy: PolicyName::ChameleonPretrain, lambda, ..MixtureConfig::default() };
        let error = compute(&config, &domains).unwrap_err();
        assert!(matches!(error, Error::MixtureParameter { key: "lambda", .. }), "{error:?}");
    }
}

#[test]
fn nonpositive_temperature_rejected() {
    let (a, b, c) = ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0]);
    let domains = [DomainSummary::new("a").with_embedding(&a), DomainSummary::new("b").with_embedding(&b), DomainSummary::new("c").with_embedding(&c)];
    for policy in [PolicyName::ChameleonPretrain, PolicyName::ChameleonFinetune] {
        for temperature in [0.0, -5.0, f64::INFINITY] {
            let config = MixtureConfig { policy, temperature: Some(temperature), ..MixtureConfig::default() };
            let error = compute(&config, &domains).unwrap_err();
            assert!(matches!(error, Error::MixtureParameter { key: "temperature", .. }), "{error:?}");
        }
    }
}

#[test]
fn bounds_apply_to_chameleon_weights() {
    let (a, b, c, d) = ([1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [0.9, 1.1]);
    let domains = [
        DomainSummary::new("a").with_embedding(&a),
        DomainSummary::new("b").with_embedding(&b),
        DomainSummary::new("c").with_embedding(&c),
        DomainSummary::new("d").with_embedding(&d),
    ];
    let config = MixtureConfig { policy: PolicyName::ChameleonFinetune, lambda: 0.01, min_weight: Some(0.2), max_weight: Some(0.3), ..MixtureConfig::default() };
    let mixture = compute(&config, &domains).unwrap();
    assert_valid(&mixture);
    for weight in &mixture.weights {
        assert!((0.2 - 1e-12..=0.3 + 1e-12).contains(weight), "{:?}", mixture.weights);
    }
    let infeasible = MixtureConfig { min_weight: Some(0.3), ..config };
    assert!(compute(&infeasible, &domains).is_err());
}

#[test]
fn token_policies_through_compute() {
    let domains = [DomainSummary::new("a").with_tokens(100), DomainSummary::new("b").with_tokens(300)];
    let proportional = compute(&config(PolicyName::Proportional), &domains).unwrap();
    assert_eq!(proportional.weights, vec![0.25, 0.75]);
    assert_eq!(proportional.scores, None);

    let temperature = compute(&config(PolicyName::Temperature), &domains).unwrap();
    let expected = 100f64.sqrt() / (100f64.sqrt() + 300f64.sqrt());
    assert!((temperature.weights[0] - expected).abs() < 1e-12, "default temperature 2: {:?}", temperature.weights);

    let unimax = MixtureConfig { policy: PolicyName::Unimax, budget_tokens: Some(400), max_epochs: Some(1.0), ..MixtureConfig::default() };
    assert_eq!(compute(&unimax, &domains).unwrap().weights, vec![0.25, 0.75]);
    let no_budget = MixtureConfig { budget_tokens: None, ..unimax };
    assert!(compute(&no_budget, &domains).unwrap_err().to_string().contains("budget_tokens"));

    let missing = [DomainSummary::new("a").with_tokens(100), DomainSummary::new("b")];
    let error = compute(&config(PolicyName::Proportional), &missing).unwrap_err();
    assert!(error.to_string().contains("domain 'b'"), "{error}");
}

#[test]
fn config_parses_from_toml() {
    let config: MixtureConfig = toml::from_str(
        r#"
        policy = "chameleon-finetune"
        embeddings = "hashed"
        lambda = 5.0
        max_weight = 0.5
        embed_documents = 64
        "#,
    )
    .unwrap();
    assert_eq!(config.policy, PolicyName::ChameleonFinetune);
    assert_eq!(config.temperature(), Some(0.2));
    assert_eq!(config.embedding_source(), Some(chameleon::mixture::EmbeddingSource::Hashed));
    assert_eq!(config.embed_dimension, 256);
    let error = toml::from_str::<MixtureConfig>("policy = \"static\"\nlamda = 1.0").unwrap_err();
    assert!(error.to_string().contains("lamda"), "{error}");
}

#[test]
fn infeasible_bound_suggests_a_passing_value() {
    let names = ["a", "b", "c", "d", "e", "f"];
    let weights = [1.0 / 6.0; 6];
    let error = apply_bounds(&weights, &names, Some(0.2), None).unwrap_err().to_string();
    assert!(error.contains("needs 1.2000 of the mixture"), "{error}");
    assert!(error.contains("lower min_weight to at most 0.1666"), "{error}");
    assert!(apply_bounds(&weights, &names, Some(0.1666), None).is_ok());

    let error = apply_bounds(&weights, &names, None, Some(0.1)).unwrap_err().to_string();
    assert!(error.contains("raise max_weight to at least 0.1667"), "{error}");
    assert!(apply_bounds(&weights, &names, None, Some(0.1667)).is_ok());
}
