//! A small training loop that takes the loader as its dataset iterator.
//!
//! The model is a bigram language model over hashed token buckets: the logits of the next token's
//! bucket are one row of a `BUCKETS × BUCKETS` table, chosen by the current token's bucket, trained
//! by plain SGD on the cross-entropy. It is small enough to learn visibly in seconds on a CPU, and
//! it shows how a trainer plugs chameleon in: build a `Loader`, pull batches, use each row's
//! inputs and targets, and read the row's domain to report the loss per domain.
//!
//! Run: `cargo run --release --example train_loop -- [CONFIG] [STEPS]`
//! (defaults: `fixtures/mix.toml`, 60 steps).

use std::collections::BTreeMap;

use chameleon::{Config, Loader};

/// Token ids are folded into this many buckets, so the table stays small.
const BUCKETS: usize = 1024;
const LEARNING_RATE: f32 = 0.5;

struct Bigram {
    logits: Vec<f32>,
    probabilities: Vec<f32>,
}

impl Bigram {
    fn new() -> Bigram {
        Bigram { logits: vec![0.0; BUCKETS * BUCKETS], probabilities: vec![0.0; BUCKETS] }
    }

    /// One SGD step on one (input, target) pair; returns the loss before the step, in nats.
    fn train(&mut self, input: u32, target: u32) -> f32 {
        let row = &mut self.logits[(input as usize % BUCKETS) * BUCKETS..][..BUCKETS];
        let target = target as usize % BUCKETS;
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for (probability, &logit) in self.probabilities.iter_mut().zip(row.iter()) {
            *probability = (logit - max).exp();
            sum += *probability;
        }
        let loss = -(self.probabilities[target] / sum).ln();
        for (bucket, (logit, probability)) in row.iter_mut().zip(&self.probabilities).enumerate() {
            let gradient = probability / sum - f32::from(bucket == target);
            *logit -= LEARNING_RATE * gradient;
        }
        loss
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let config_path = args.next().unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mix.toml").to_string());
    let steps: usize = args.next().map(|steps| steps.parse()).transpose()?.unwrap_or(60);

    let config = Config::from_file(&config_path)?;
    let loader = Loader::new(config)?;
    let mut model = Bigram::new();
    // Per domain: summed loss and token count since the last report.
    let mut window: BTreeMap<String, (f64, u64)> = BTreeMap::new();

    for batch in loader.take(steps) {
        let batch = batch?;
        for row in 0..batch.rows() {
            let (inputs, targets) = (batch.inputs(row), batch.targets(row));
            let loss: f64 = inputs.iter().zip(targets).map(|(&input, &target)| f64::from(model.train(input, target))).sum();
            let entry = window.entry(batch.domain_name(row).to_string()).or_default();
            entry.0 += loss;
            entry.1 += inputs.len() as u64;
        }
        if (batch.step + 1) % 10 == 0 {
            let report: Vec<String> = window.iter().map(|(domain, (loss, tokens))| format!("{domain} {:.3}", loss / *tokens as f64)).collect();
            println!("step {:>4}  loss per domain (nats/token): {}", batch.step + 1, report.join(", "));
            window.clear();
        }
    }
    Ok(())
}
