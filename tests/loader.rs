//! The loader end to end on shards written by arrow-rs: determinism, packing, mixing, epochs and
//! resume.

mod common;

use std::time::Duration;

use chameleon::{Batch, Loader};
use common::{config, numbered_documents, temp_dir, within, write_tokens};

fn take(loader: &mut Loader, steps: usize) -> Vec<Batch> {
    (0..steps).map(|_| loader.next().unwrap().unwrap()).collect()
}

/// Three domains of 40, 300 and 90 documents in several shards and row groups.
fn three_domains(root: &std::path::Path) -> chameleon::Config {
    let mut first = 0;
    for (name, count, shards) in [("small", 40u32, 1u32), ("large", 300, 3), ("medium", 90, 2)] {
        for shard in 0..shards {
            let documents = numbered_documents(first, count / shards, 200);
            first += count / shards;
            write_tokens(&root.join(name).join(format!("shard-{shard:05}.parquet")), &documents, 16);
        }
    }
    config(
        11,
        64,
        4,
        &[("small", &root.join("small"), 0.2), ("large", &root.join("large"), 0.5), ("medium", &root.join("medium"), 0.3)],
    )
}

#[test]
fn batches_do_not_depend_on_threads() {
    let root = temp_dir();
    let config = three_domains(root.path());
    let one = take(&mut Loader::builder(config.clone()).threads(1).build().unwrap(), 120);
    let four = take(&mut Loader::builder(config).threads(4).build().unwrap(), 120);
    assert_eq!(one, four);
}

#[test]
fn batch_shape_and_accessors() {
    let root = temp_dir();
    let mut loader = Loader::new(three_domains(root.path())).unwrap();
    let batch = loader.next().unwrap().unwrap();
    assert_eq!(batch.step, 0);
    assert_eq!(batch.rows(), 4);
    assert_eq!(batch.tokens.len(), 4 * 65);
    for row in 0..batch.rows() {
        assert_eq!(batch.inputs(row), &batch.row(row)[..64]);
        assert_eq!(batch.targets(row), &batch.row(row)[1..]);
        assert!(batch.doc_starts(row).windows(2).all(|pair| pair[0] < pair[1]));
    }
    assert_eq!(loader.next().unwrap().unwrap().step, 1);
}

#[test]
fn one_epoch_holds_every_document_once() {
    let root = temp_dir();
    let documents = numbered_documents(0, 97, 50);
    write_tokens(&root.path().join("only/a.parquet"), &documents[..60], 7);
    write_tokens(&root.path().join("only/b.parquet"), &documents[60..], 5);
    let epoch_tokens: usize = documents.iter().map(|document| document.len() + 1).sum();
    let seq_len = 9;
    let batches = epoch_tokens / ((seq_len + 1) * 3) + 1;
    let mut loader = Loader::new(config(3, seq_len, 3, &[("only", &root.path().join("only"), 1.0)])).unwrap();

    // One domain: the batches' tokens are the domain's stream, the first epoch first.
    let tokens: Vec<u32> = take(&mut loader, batches).iter().flat_map(|batch| batch.tokens.clone()).collect();
    let mut read: Vec<Vec<u32>> = tokens[..epoch_tokens].split(|&token| token == 0).map(<[u32]>::to_vec).collect();
    assert_eq!(read.pop(), Some(vec![]), "the epoch ends with an end-of-document token");
    let mut expected = documents.clone();
    read.sort();
    expected.sort();
    assert_eq!(read, expected);
    assert_eq!(loader.stats()[0].epochs, 2);
}

#[test]
fn doc_starts_mark_document_beginnings() {
    let root = temp_dir();
    let mut loader = Loader::new(three_domains(root.path())).unwrap();
    for batch in take(&mut loader, 30) {
        for row in 0..batch.rows() {
            let tokens = batch.row(row);
            for position in 0..tokens.len() {
                let starts_document = tokens[position] % 1000 == 1 && tokens[position] != 0;
                assert_eq!(batch.doc_starts(row).contains(&(position as u32)), starts_document, "row {row} position {position}");
            }
        }
    }
}

#[test]
fn realized_shares_follow_weights() {
    let root = temp_dir();
    let mut loader = Loader::new(three_domains(root.path())).unwrap();
    take(&mut loader, 2500);
    let stats = loader.stats();
    let total: u64 = stats.iter().map(|domain| domain.tokens).sum();
    for domain in &stats {
        let share = domain.tokens as f64 / total as f64;
        // 10,000 draws: three standard deviations of a share near 0.3 is about 0.014.
        assert!((share - domain.target_weight).abs() < 0.015, "{}: share {share}, weight {}", domain.name, domain.target_weight);
    }
    assert!(stats[0].epochs > 1, "the small domain wraps into later epochs: {stats:?}");
}

#[test]
fn zero_weight_domain_is_never_read() {
    let root = temp_dir();
    write_tokens(&root.path().join("tiny/a.parquet"), &numbered_documents(0, 3, 5), 2);
    write_tokens(&root.path().join("unused/a.parquet"), &numbered_documents(100, 3, 5), 2);
    let config = config(1, 4, 2, &[("tiny", &root.path().join("tiny"), 1.0), ("unused", &root.path().join("unused"), 0.0)]);
    within(Duration::from_secs(60), move || {
        let mut loader = Loader::new(config).unwrap();
        let batches = take(&mut loader, 500);
        assert!(batches.iter().all(|batch| batch.domains.iter().all(|&domain| domain == 0)));
        let stats = loader.stats();
        assert_eq!(stats[1].sequences, 0);
        assert!(stats[0].epochs > 10, "the tiny domain repeats: {stats:?}");
    });
}

#[test]
fn resume_continues_the_same_batches() {
    let root = temp_dir();
    let config = three_domains(root.path());
    let all = take(&mut Loader::new(config.clone()).unwrap(), 200);
    for checkpoint in [0usize, 1, 37, 150, 199] {
        let mut first = Loader::builder(config.clone()).threads(2).build().unwrap();
        take(&mut first, checkpoint);
        let state = first.state();
        drop(first);
        let state: chameleon::LoaderState = serde_json::from_str(&serde_json::to_string(&state).unwrap()).unwrap();

        let mut resumed = Loader::builder(config.clone()).threads(1).resume(state).build().unwrap();
        let rest = take(&mut resumed, 200 - checkpoint);
        assert_eq!(rest, all[checkpoint..], "checkpoint {checkpoint}");
    }
}
