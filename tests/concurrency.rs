//! Threads and channels: nothing hangs when the consumer drops early, a reader fails or panics,
//! channels are full, or many domains run at once.

mod common;

use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int64Array, LargeListArray};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use chameleon::{Error, Loader};
use common::{config, numbered_documents, temp_dir, within, write_columns, write_tokens};

const LIMIT: Duration = Duration::from_secs(60);

#[test]
fn early_drop_stops_every_reader() {
    let root = temp_dir();
    for name in ["a", "b", "c"] {
        write_tokens(&root.path().join(name).join("0.parquet"), &numbered_documents(0, 2000, 300), 100);
    }
    let domains: Vec<_> = ["a", "b", "c"].iter().map(|name| (*name, root.path().join(name), 1.0)).collect();
    let domains: Vec<_> = domains.iter().map(|(name, path, weight)| (*name, path.as_path(), *weight)).collect();
    let config = config(0, 32, 2, &domains);
    within(LIMIT, move || {
        for taken in [0, 1, 5] {
            let mut loader = Loader::new(config.clone()).unwrap();
            for _ in 0..taken {
                loader.next().unwrap().unwrap();
            }
            drop(loader);
        }
    });
}

#[test]
fn reader_failure_mid_stream_reaches_the_consumer() {
    let root = temp_dir();
    // 20 row groups of 50 rows; the last row holds a negative id, so its row group fails.
    let mut values: Vec<i64> = (1..=2000).collect();
    *values.last_mut().unwrap() = -1;
    let list = LargeListArray::new(Arc::new(Field::new("item", DataType::Int64, false)), OffsetBuffer::from_lengths(vec![2usize; 1000]), Arc::new(Int64Array::from(values)), None);
    let shard = root.path().join("a/0.parquet");
    write_columns(&shard, vec![("tokens", Arc::new(list) as ArrayRef)], 50);
    write_tokens(&root.path().join("b/0.parquet"), &numbered_documents(0, 50, 20), 10);

    // Pick a seed whose first epoch reads the failing row group late.
    let shards = [chameleon::source::Shard::open("a", &shard, "tokens").unwrap()];
    let seed = (0..100)
        .find(|&seed| chameleon::pipeline::epoch_units(seed, "a", 0, &shards).iter().position(|unit| unit.row_group == 19) > Some(10))
        .expect("some seed puts the failing row group late");
    let config = config(seed, 4, 2, &[("a", &root.path().join("a"), 0.5), ("b", &root.path().join("b"), 0.5)]);
    within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let mut good = 0;
        let error = loop {
            match loader.next().expect("the loader yields an error before it ends") {
                Ok(_) => good += 1,
                Err(error) => break error,
            }
        };
        assert!(good > 10, "the failure comes mid-stream, after {good} batches");
        assert!(matches!(error, Error::TokenOutOfRange { .. }), "{error}");
        assert!(loader.next().is_none(), "a failed loader yields nothing more");
    });
}

#[test]
fn reader_panic_reaches_the_consumer() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0.parquet"), &numbered_documents(0, 500, 20), 10);
    write_tokens(&root.path().join("b/0.parquet"), &numbered_documents(0, 500, 20), 10);
    let config = config(0, 8, 4, &[("a", &root.path().join("a"), 0.5), ("b", &root.path().join("b"), 0.5)]);
    within(LIMIT, move || {
        let mut loader = Loader::builder(config).inject_reader_panic("b", 3).build().unwrap();
        let error = loop {
            match loader.next().expect("the loader yields an error before it ends") {
                Ok(_) => continue,
                Err(error) => break error,
            }
        };
        match error {
            Error::ReaderPanicked { domain, message } => {
                assert_eq!(domain, "b");
                assert!(message.contains("injected"), "{message}");
            }
            other => panic!("expected a reader panic, got {other}"),
        }
    });
}

#[test]
fn full_channels_of_one_sequence_still_flow() {
    let root = temp_dir();
    let names: Vec<String> = (0..12).map(|index| format!("d{index}")).collect();
    for name in &names {
        write_tokens(&root.path().join(name).join("0.parquet"), &numbered_documents(0, 30, 40), 7);
    }
    let paths: Vec<_> = names.iter().map(|name| root.path().join(name)).collect();
    let domains: Vec<_> = names.iter().zip(&paths).map(|(name, path)| (name.as_str(), path.as_path(), 1.0)).collect();
    let mut config = config(5, 16, 8, &domains);
    config.prefetch_sequences = Some(1);
    within(LIMIT, move || {
        let mut loader = Loader::builder(config).threads(1).build().unwrap();
        for _ in 0..300 {
            loader.next().unwrap().unwrap();
        }
    });
}

#[test]
fn three_hundred_domains() {
    let root = temp_dir();
    let names: Vec<String> = (0..300).map(|index| format!("domain{index:03}")).collect();
    for (index, name) in names.iter().enumerate() {
        write_tokens(&root.path().join(name).join("0.parquet"), &numbered_documents(index as u32 * 10, 10, 30), 5);
    }
    let paths: Vec<_> = names.iter().map(|name| root.path().join(name)).collect();
    let domains: Vec<_> = names.iter().zip(&paths).map(|(name, path)| (name.as_str(), path.as_path(), 1.0)).collect();
    let mut config = config(2, 16, 32, &domains);
    config.prefetch_sequences = Some(4);
    within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let mut seen = std::collections::HashSet::new();
        for _ in 0..200 {
            let batch = loader.next().unwrap().unwrap();
            seen.extend(batch.domains.iter().copied());
        }
        assert!(seen.iter().any(|&domain| domain > 255), "ids past 255 are drawn");
        let stats = loader.stats();
        assert_eq!(stats.len(), 300);
        assert_eq!(stats.iter().map(|domain| domain.sequences).sum::<u64>(), 200 * 32);
        assert_eq!(loader.state().domains.len(), 300);
    });
}
