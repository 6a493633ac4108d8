//! Leverage scores of k domain embeddings of dimension 256, for k = 10, 100, 1000 and 4000.
//!
//! Run with `cargo bench --bench leverage`; `benches/leverage_numpy.py` times NumPy on the same
//! sizes.

use chameleon::mixture::leverage::leverage_scores;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const DIMENSION: usize = 256;
const SEED: u64 = 7;

fn embeddings(count: usize) -> Vec<Vec<f64>> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    (0..count).map(|_| (0..DIMENSION).map(|_| rng.random::<f64>() - 0.5).collect()).collect()
}

fn bench_leverage(c: &mut Criterion) {
    let mut group = c.benchmark_group("leverage_scores_d256");
    group.sample_size(10);
    for count in [10, 100, 1000, 4000] {
        let rows = embeddings(count);
        let names: Vec<String> = (0..count).map(|i| format!("domain{i}")).collect();
        let domains: Vec<(&str, &[f64])> = names.iter().zip(&rows).map(|(name, row)| (name.as_str(), row.as_slice())).collect();
        group.bench_with_input(BenchmarkId::from_parameter(count), &domains, |b, domains| {
            b.iter(|| leverage_scores(std::hint::black_box(domains), 10.0).expect("random embeddings are valid"));
        });
    }
    group.finish();
}

criterion_group!(benches, bench_leverage);
criterion_main!(benches);
