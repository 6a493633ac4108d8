//! The weighted domain draw.

use chameleon::sampler::Sampler;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn draws(c: &mut Criterion) {
    let mut group = c.benchmark_group("sampler");
    group.throughput(Throughput::Elements(1));
    for domains in [2usize, 9, 300] {
        let weights: Vec<f64> = (1..=domains).map(|index| index as f64).collect();
        let mut sampler = Sampler::new(7, &weights).unwrap();
        group.bench_function(format!("draw/{domains}_domains"), |b| b.iter(|| sampler.draw()));
    }
    group.finish();
}

criterion_group!(benches, draws);
criterion_main!(benches);
