//! Exact resume and rank partitioning: a resumed stream equals the uninterrupted one, and ranks
//! read disjoint documents that together cover each document once per epoch.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use chameleon::{Batch, Config, Loader, LoaderState, Partition};
use common::{config, numbered_documents, temp_dir, write_tokens};
use rand::{Rng, SeedableRng};

fn take(loader: &mut Loader, steps: usize) -> Vec<Batch> {
    (0..steps).map(|_| loader.next().unwrap().unwrap()).collect()
}

/// A small domain that wraps often, a medium one and a large one, in shards of several row
/// groups; the small one has fewer row groups than the largest world size tested.
fn corpus(root: &Path) -> Config {
    write_tokens(&root.join("small/0.parquet"), &numbered_documents(0, 24, 30), 4);
    write_tokens(&root.join("medium/0.parquet"), &numbered_documents(100, 60, 60), 8);
    write_tokens(&root.join("medium/1.parquet"), &numbered_documents(160, 60, 60), 8);
    for shard in 0..3u32 {
        write_tokens(&root.join(format!("large/{shard}.parquet")), &numbered_documents(300 + shard * 100, 100, 90), 10);
    }
    config(21, 24, 3, &[("small", &root.join("small"), 0.3), ("medium", &root.join("medium"), 0.3), ("large", &root.join("large"), 0.4)])
}

fn build(config: &Config, partition: Partition, threads: usize, state: Option<LoaderState>) -> Loader {
    let mut builder = Loader::builder(config.clone()).partition(partition).threads(threads);
    if let Some(state) = state {
        builder = builder.resume(state);
    }
    builder.build().unwrap()
}

#[test]
fn resume_matches_uninterrupted_run() {
    let root = temp_dir();
    let config = corpus(root.path());
    let steps = 120;
    let seed = 0x5eed;
    println!("checkpoint seed {seed}");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);

    for world_size in [1usize, 2, 3, 8] {
        for rank in [0, world_size - 1] {
            let partition = Partition::new(rank, world_size).unwrap();
            let mut reference = build(&config, partition, 2, None);
            let mut all = Vec::new();
            let mut wrap_step = None;
            for step in 0..steps {
                all.push(reference.next().unwrap().unwrap());
                if wrap_step.is_none() && reference.stats()[0].epochs >= 2 {
                    wrap_step = Some(step);
                }
            }
            let wrap_step = wrap_step.expect("the small domain wraps within the run");

            let mut checkpoints = vec![0, wrap_step, wrap_step + 1, steps - 1, steps];
            checkpoints.extend((0..3).map(|_| rng.random_range(1..steps)));
            for checkpoint in checkpoints {
                let threads = 1 + checkpoint % 3;
                let mut first = build(&config, partition, threads, None);
                take(&mut first, checkpoint);
                let state = first.state();
                drop(first);
                let saved: LoaderState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();

                let mut resumed = build(&config, partition, 4 - threads, Some(saved));
                let rest = take(&mut resumed, steps - checkpoint);
                assert_eq!(rest, all[checkpoint..], "world size {world_size}, rank {rank}, checkpoint {checkpoint}");
            }
        }
    }
}

/// The documents a rank reads in its first epoch of a single-domain stream. With rows of two
/// tokens, every document token of a row belongs to the epoch of the cursor at the row's end: a
/// row cannot hold the last token of one epoch and the first of the next, because an end token
/// sits between them.
fn first_epoch_documents(config: &Config, partition: Partition) -> BTreeSet<u32> {
    assert_eq!((config.seq_len, config.batch_size), (1, 1));
    let mut loader = build(config, partition, 2, None);
    let mut documents = BTreeSet::new();
    loop {
        let batch = loader.next().unwrap().unwrap();
        if loader.state().domains[0].cursor.epoch > 0 {
            return documents;
        }
        documents.extend(batch.tokens.iter().filter(|&&token| token != 0).map(|token| token / 1000));
    }
}

#[test]
fn ranks_cover_each_document_once() {
    let root = temp_dir();
    // One shard of 137 documents in 9 row groups, and one domain of a single row group.
    write_tokens(&root.path().join("many/0.parquet"), &numbered_documents(0, 137, 40), 16);
    write_tokens(&root.path().join("one/0.parquet"), &numbered_documents(200, 20, 40), 64);
    for (name, expected) in [("many", (0..137).collect::<BTreeSet<u32>>()), ("one", (200..220).collect())] {
        let config = config(8, 1, 1, &[(name, &root.path().join(name), 1.0)]);
        for world_size in [1usize, 2, 3, 8] {
            let mut union = BTreeSet::new();
            let mut total = 0;
            for rank in 0..world_size {
                let documents = first_epoch_documents(&config, Partition::new(rank, world_size).unwrap());
                assert!(!documents.is_empty(), "{name}: rank {rank} of {world_size} reads something");
                total += documents.len();
                union.extend(documents);
            }
            assert_eq!(union, expected, "{name}, world size {world_size}: every document is read");
            assert_eq!(total, expected.len(), "{name}, world size {world_size}: no document is read twice");
        }
    }
}

#[test]
fn resume_on_other_world_size_is_an_error() {
    let root = temp_dir();
    let config = corpus(root.path());
    let mut loader = build(&config, Partition::new(0, 2).unwrap(), 1, None);
    take(&mut loader, 3);
    let state = loader.state();
    let error = Loader::builder(config).partition(Partition::new(0, 3).unwrap()).resume(state).build().unwrap_err().to_string();
    assert!(error.contains("`world_size` differs") && error.contains("\"2\"") && error.contains("\"3\""), "{error}");
}

#[test]
fn resume_with_changed_config_names_the_field() {
    let root = temp_dir();
    let config = corpus(root.path());
    let mut loader = build(&config, Partition::default(), 1, None);
    take(&mut loader, 3);
    let state = loader.state();

    let mut longer = config.clone();
    longer.seq_len = 32;
    let error = Loader::builder(longer).partition(Partition::default()).resume(state.clone()).build().unwrap_err().to_string();
    assert!(error.contains("`seq_len` differs"), "{error}");

    let mut reseeded = config.clone();
    reseeded.seed += 1;
    let error = Loader::builder(reseeded).partition(Partition::default()).resume(state.clone()).build().unwrap_err().to_string();
    assert!(error.contains("`seed` differs"), "{error}");

    write_tokens(&root.path().join("small/1.parquet"), &numbered_documents(50, 3, 5), 4);
    let error = Loader::builder(config).partition(Partition::default()).resume(state).build().unwrap_err().to_string();
    assert!(error.contains("`domains.small.files` differs"), "{error}");
}

#[test]
fn partition_rejects_rank_past_world_size() {
    assert!(Partition::new(2, 2).is_err());
    assert!(Partition::new(0, 0).is_err());
    assert!(Partition::new(1, 2).is_ok());
}
