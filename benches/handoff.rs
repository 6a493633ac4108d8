//! Handing packed sequences from a reader thread to the consumer over a bounded channel, as the
//! loader does, with a fresh buffer per sequence or with buffers sent back for reuse.

use crossbeam_channel::{bounded, Receiver, Sender};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SEQUENCE_TOKENS: usize = 2049;
const SEQUENCES: usize = 4096;
const BATCH_ROWS: usize = 8;

/// Sends `SEQUENCES` sequences, each taking its buffer from `spare` when one is there, and
/// receives them on this thread into batches of `BATCH_ROWS` rows.
fn hand_off(recycle: bool) -> usize {
    let (sender, receiver) = bounded::<Vec<u32>>(64);
    let (give_back, spare): (Sender<Vec<u32>>, Receiver<Vec<u32>>) = bounded(128);
    let producer = std::thread::spawn(move || {
        for index in 0..SEQUENCES {
            let mut tokens = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(SEQUENCE_TOKENS));
            tokens.clear();
            tokens.extend((0..SEQUENCE_TOKENS as u32).map(|token| token ^ index as u32));
            if sender.send(tokens).is_err() {
                return;
            }
        }
    });

    let mut batch = Vec::with_capacity(BATCH_ROWS * SEQUENCE_TOKENS);
    let mut total = 0;
    while let Ok(tokens) = receiver.recv() {
        batch.extend_from_slice(&tokens);
        if recycle {
            let _ = give_back.try_send(tokens);
        }
        if batch.len() == BATCH_ROWS * SEQUENCE_TOKENS {
            total += batch.len();
            batch = Vec::with_capacity(BATCH_ROWS * SEQUENCE_TOKENS);
        }
    }
    producer.join().unwrap();
    total
}

fn handoff(c: &mut Criterion) {
    let mut group = c.benchmark_group("handoff");
    group.throughput(Throughput::Elements((SEQUENCES * SEQUENCE_TOKENS) as u64));
    group.bench_function("sequences/fresh_buffers", |b| b.iter(|| hand_off(false)));
    group.bench_function("sequences/recycled_buffers", |b| b.iter(|| hand_off(true)));
    group.finish();
}

criterion_group!(benches, handoff);
criterion_main!(benches);
