//! Packing documents into sequences of seq_len + 1 tokens.

use chameleon::packer::Packer;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn pack(c: &mut Criterion) {
    // 1,000 documents of 16 to 4,000 tokens: about 2 M tokens.
    let documents: Vec<Vec<u32>> = (0..1000u32).map(|d| (0..(16 + d * 2654435761 % 3984)).collect()).collect();
    let tokens: usize = documents.iter().map(Vec::len).sum();
    let mut group = c.benchmark_group("packer");
    group.throughput(Throughput::Elements(tokens as u64));
    group.bench_function("pack/seq_len_2048", |b| {
        b.iter(|| {
            let mut packer = Packer::new(2048, 0);
            let mut sequences = 0usize;
            for document in &documents {
                packer.push(document, 0, |_, _| sequences += 1);
            }
            sequences
        })
    });
    group.finish();
}

criterion_group!(benches, pack);
criterion_main!(benches);
