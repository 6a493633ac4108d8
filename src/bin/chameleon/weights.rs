//! `chameleon weights`: leverage scores and Chameleon weights of domain embeddings.

use std::path::PathBuf;

use anyhow::Context;
use chameleon::mixture::embeddings::load_embeddings;
use chameleon::mixture::{compute, DomainSummary, Mixture, MixtureConfig, PolicyName};

/// Width of the longest bar in the table, in characters.
const BAR_WIDTH: usize = 40;

/// Arguments of `chameleon weights`.
#[derive(Debug, clap::Args)]
pub struct WeightsArgs {
    /// Domain embeddings: a folder of <domain>.npy files or a safetensors file with one tensor per
    /// domain (float32 or float64, shape [n, d] or [d]).
    #[arg(long, value_name = "PATH", conflicts_with = "config")]
    pub embeddings: Option<PathBuf>,

    /// A loader configuration: its domains, embeddings (hashed or files) and `[mixture]` policy
    /// give the scores and weights; the other options are ignored.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// pretrain gives more weight to domains that share structure with the others, finetune to
    /// distinctive domains.
    #[arg(long, value_enum, default_value_t = Mode::Pretrain)]
    pub mode: Mode,

    /// Ridge λ of the kernel ridge leverage scores, a positive number.
    #[arg(long, default_value_t = chameleon::mixture::DEFAULT_LAMBDA, allow_negative_numbers = true)]
    pub lambda: f64,

    /// Softmax temperature, a positive number [default: 5 for pretrain, 0.2 for finetune].
    #[arg(long, allow_negative_numbers = true)]
    pub temperature: Option<f64>,

    /// Lowest weight any domain may get, in [0, 1].
    #[arg(long)]
    pub min_weight: Option<f64>,

    /// Highest weight any domain may get, in [0, 1].
    #[arg(long)]
    pub max_weight: Option<f64>,

    /// Print one JSON object (mode, lambda, temperature, effective_dimension, domains) instead of
    /// a table.
    #[arg(long)]
    pub json: bool,
}

/// The Chameleon mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Pretraining: weights softmax((1/S) / T).
    Pretrain,
    /// Finetuning: weights softmax(S / T).
    Finetune,
}

impl Mode {
    fn policy(self) -> PolicyName {
        match self {
            Mode::Pretrain => PolicyName::ChameleonPretrain,
            Mode::Finetune => PolicyName::ChameleonFinetune,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Mode::Pretrain => "pretrain",
            Mode::Finetune => "finetune",
        }
    }
}

/// Loads the embeddings, computes leverage scores and weights, and prints them sorted by domain.
pub fn run(args: WeightsArgs) -> anyhow::Result<()> {
    if let Some(config) = &args.config {
        return run_config(config, args.json);
    }
    let Some(path) = args.embeddings.as_ref() else {
        anyhow::bail!("no domain embeddings given; pass --embeddings PATH with a folder of <domain>.npy files or a safetensors file, or --config FILE");
    };
    let embeddings = load_embeddings(path).with_context(|| format!("cannot load domain embeddings from {}", path.display()))?;

    // `load_embeddings` returns a BTreeMap, so the domains are sorted by name.
    let names: Vec<&str> = embeddings.keys().map(String::as_str).collect();
    let domains: Vec<DomainSummary<'_>> = embeddings.iter().map(|(name, embedding)| DomainSummary::new(name).with_embedding(embedding)).collect();
    let config = MixtureConfig {
        policy: args.mode.policy(),
        embeddings: Some(path.display().to_string()),
        lambda: args.lambda,
        temperature: args.temperature,
        min_weight: args.min_weight,
        max_weight: args.max_weight,
        ..MixtureConfig::default()
    };
    let mixture = compute(&config, &domains)?;
    let temperature = config.temperature().context("the Chameleon policies always have a temperature")?;

    if args.json {
        println!("{}", to_json(args.mode, config.lambda, temperature, &names, &mixture));
    } else {
        print!("{}", to_table(args.mode, config.lambda, temperature, &names, &mixture));
    }
    Ok(())
}

/// Computes the mixture a loader would start with for `path`, and prints it sorted by domain.
fn run_config(path: &std::path::Path, json: bool) -> anyhow::Result<()> {
    let config = chameleon::Config::from_file(path)?;
    let mode = match config.mixture.policy {
        PolicyName::ChameleonFinetune => Mode::Finetune,
        PolicyName::ChameleonPretrain => Mode::Pretrain,
        other => anyhow::bail!("the configuration's policy is '{}'; set [mixture] policy = \"chameleon-pretrain\" or \"chameleon-finetune\"", other.as_str()),
    };
    let temperature = config.mixture.temperature().context("the Chameleon policies always have a temperature")?;
    let lambda = config.mixture.lambda;
    let loader = chameleon::Loader::builder(config).threads(1).build()?;
    let version = loader.mixture();

    let mut order: Vec<usize> = (0..version.domains.len()).collect();
    order.sort_by(|&a, &b| version.domains[a].cmp(&version.domains[b]));
    let names: Vec<&str> = order.iter().map(|&index| version.domains[index].as_str()).collect();
    let mixture = Mixture {
        policy: mode.policy(),
        weights: order.iter().map(|&index| version.weights[index]).collect(),
        scores: version.scores.as_ref().map(|scores| order.iter().map(|&index| scores[index]).collect()),
        effective_dimension: version.effective_dimension,
    };
    if json {
        println!("{}", to_json(mode, lambda, temperature, &names, &mixture));
    } else {
        print!("{}", to_table(mode, lambda, temperature, &names, &mixture));
    }
    Ok(())
}

fn to_json(mode: Mode, lambda: f64, temperature: f64, names: &[&str], mixture: &Mixture) -> serde_json::Value {
    let scores = mixture.scores.clone().unwrap_or_default();
    let domains: Vec<serde_json::Value> = names
        .iter()
        .zip(&scores)
        .zip(&mixture.weights)
        .map(|((name, score), weight)| serde_json::json!({ "name": name, "score": score, "weight": weight }))
        .collect();
    serde_json::json!({
        "mode": mode.as_str(),
        "lambda": lambda,
        "temperature": temperature,
        "effective_dimension": mixture.effective_dimension,
        "domains": domains,
    })
}

fn to_table(mode: Mode, lambda: f64, temperature: f64, names: &[&str], mixture: &Mixture) -> String {
    let scores = mixture.scores.clone().unwrap_or_default();
    let name_width = names.iter().map(|name| name.chars().count()).max().unwrap_or(0).max("domain".len());
    let max_weight = mixture.weights.iter().copied().fold(0.0, f64::max);

    let mut table = format!(
        "mode {}, lambda {lambda}, temperature {temperature}, effective dimension {:.4}\n",
        mode.as_str(),
        mixture.effective_dimension.unwrap_or(0.0)
    );
    table.push_str(&format!("{:<name_width$}  {:>8}  {:>8}\n", "domain", "score", "weight"));
    for ((name, score), weight) in names.iter().zip(&scores).zip(&mixture.weights) {
        let length = if max_weight > 0.0 { (weight / max_weight * BAR_WIDTH as f64).round() as usize } else { 0 };
        table.push_str(&format!("{name:<name_width$}  {score:>8.4}  {weight:>8.4}  {}\n", "█".repeat(length)));
    }
    table
}
