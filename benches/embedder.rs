//! The hashed embedder's throughput in documents per second: one domain of 512 documents of
//! 1024 Zipf-distributed token ids (vocabulary 50,000), embedded into 256 dimensions.
//!
//! Run with `cargo bench --bench embedder`.

use chameleon::mixture::embedder::HashedEmbedder;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::Zipf;

const DOCUMENTS: usize = 512;
const TOKENS_PER_DOCUMENT: usize = 1024;
const VOCABULARY: f64 = 50_000.0;
const SEED: u64 = 11;

fn documents() -> Vec<Vec<u32>> {
    let mut rng = ChaCha8Rng::seed_from_u64(SEED);
    let zipf = Zipf::new(VOCABULARY, 1.1).expect("the vocabulary and exponent are valid");
    (0..DOCUMENTS).map(|_| (0..TOKENS_PER_DOCUMENT).map(|_| rng.sample(zipf) as u32).collect()).collect()
}

fn bench_embedder(c: &mut Criterion) {
    let documents = documents();
    let slices: Vec<&[u32]> = documents.iter().map(Vec::as_slice).collect();
    let embedder = HashedEmbedder::new(HashedEmbedder::DEFAULT_BUCKETS, HashedEmbedder::DEFAULT_DIMENSION, 0).expect("the defaults are valid");

    let mut group = c.benchmark_group("hashed_embedder");
    group.sample_size(10);
    group.throughput(Throughput::Elements(DOCUMENTS as u64));
    group.bench_function("embed_domain_512x1024", |b| {
        b.iter(|| embedder.embed_domain("bench", slices.iter().copied()).expect("the documents have tokens"));
    });
    group.bench_function("features_512x1024", |b| {
        b.iter(|| slices.iter().map(|tokens| embedder.features(tokens).len()).sum::<usize>());
    });
    group.finish();
}

criterion_group!(benches, bench_embedder);
criterion_main!(benches);
