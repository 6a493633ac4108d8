//! Fuzzing the shard reader: random bytes and damaged real shards, read through the loader.
//!
//! Each case writes one `.parquet` file into a domain folder: random bytes, or a real shard (one
//! written here by arrow-rs, or a committed fixture) damaged by truncation, flipped bytes,
//! overwritten ranges, a broken footer length or a wrong row count. A loader is built over the
//! folder and a bounded number of batches is pulled. The property: no panic and no hang. Building may fail, and the
//! iterator may yield an `Err`. A reader panic that the loader turned into an error still fails
//! the test, because damaged data must give a parquet error, not a panic.
//!
//! The run is seeded. `CHAMELEON_FUZZ_CASES` sets the cases of a round (default 64) and
//! `CHAMELEON_FUZZ_SEED` its seed (default 12648430). With `CHAMELEON_FUZZ_SECONDS` set, rounds
//! of seed, seed + 1, ... run until that many seconds have passed. The seeds are printed, and a
//! failing round is reproduced with its seed and the same case count. A ten-minute run:
//!
//! ```sh
//! CHAMELEON_FUZZ_CASES=1000 CHAMELEON_FUZZ_SECONDS=600 \
//!     cargo test --release --test fuzz_reader -- --nocapture
//! ```

mod common;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{ArrayRef, Int64Array, LargeListArray, ListArray, StringArray, UInt16Array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field};
use chameleon::{Config, Error, Loader};
use common::{fixtures, numbered_documents, temp_dir, within, write_tokens};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, GzipLevel, ZstdLevel};
use parquet::file::metadata::{ParquetMetaDataReader, ParquetMetaDataWriter};
use parquet::file::properties::WriterProperties;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config as ProptestConfig, RngSeed, TestCaseError, TestRunner};

/// How long one case may take before it counts as a hang.
const CASE_LIMIT: Duration = Duration::from_secs(30);

/// Batches pulled from each loader that builds.
const BATCHES: usize = 6;

/// How a shard's document column is read.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Column {
    Tokens,
    Text,
}

/// An undamaged shard to start from.
#[derive(Debug)]
struct BaseShard {
    name: String,
    bytes: Vec<u8>,
    column: Column,
}

/// What a case writes before damaging it.
#[derive(Debug, Clone)]
enum Start {
    /// Random bytes.
    Random(Vec<u8>),
    /// Random bytes between the parquet magic and a footer length, to get past the first checks.
    RandomWithMagic(Vec<u8>, u32),
    /// One of the base shards.
    Shard(Index),
}

/// One way of damaging a file.
#[derive(Debug, Clone)]
enum Damage {
    /// Cut the file at a point.
    Truncate(Index),
    /// XOR one byte with a non-zero mask.
    Flip(Index, u8),
    /// XOR one byte of the last 1024 (the footer metadata, its length and the magic).
    FlipInFooter(Index, u8),
    /// Overwrite a range with random bytes.
    Overwrite(Index, Vec<u8>),
    /// Set the footer's metadata length to 0.
    ZeroFooterLength,
    /// Set the footer's metadata length to a random value.
    FooterLength(u32),
    /// Rewrite the footer with a row group's row count changed, when the footer parses.
    RowCount(Index, i64),
}

#[derive(Debug, Clone)]
struct Case {
    start: Start,
    damages: Vec<Damage>,
    /// Put an undamaged shard of the same column next to the damaged one.
    with_good_shard: bool,
    skip_bad_shards: bool,
}

fn damage_strategy() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<Index>().prop_map(Damage::Truncate),
        (any::<Index>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip(at, mask)),
        (any::<Index>(), 1..=255u8).prop_map(|(at, mask)| Damage::FlipInFooter(at, mask)),
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..64)).prop_map(|(at, bytes)| Damage::Overwrite(at, bytes)),
        Just(Damage::ZeroFooterLength),
        any::<u32>().prop_map(Damage::FooterLength),
        // Counts up to 2^40 keep the file's total row count, which the writer sums, within i64.
        (any::<Index>(), -(1i64 << 40)..(1i64 << 40)).prop_map(|(row_group, rows)| Damage::RowCount(row_group, rows)),
    ]
}

fn case_strategy() -> impl Strategy<Value = Case> {
    let start = prop_oneof![
        1 => prop::collection::vec(any::<u8>(), 0..2048).prop_map(Start::Random),
        1 => (prop::collection::vec(any::<u8>(), 0..2048), any::<u32>()).prop_map(|(bytes, length)| Start::RandomWithMagic(bytes, length)),
        6 => any::<Index>().prop_map(Start::Shard),
    ];
    (start, prop::collection::vec(damage_strategy(), 0..4), any::<bool>(), any::<bool>())
        .prop_map(|(start, damages, with_good_shard, skip_bad_shards)| Case { start, damages, with_good_shard, skip_bad_shards })
}

/// Applies `damage` to `bytes` in place.
fn apply(damage: &Damage, bytes: &mut Vec<u8>) {
    let len = bytes.len();
    match damage {
        Damage::Truncate(at) => bytes.truncate(at.index(len + 1)),
        Damage::Flip(_, _) | Damage::FlipInFooter(_, _) | Damage::Overwrite(_, _) if len == 0 => {}
        Damage::Flip(at, mask) => bytes[at.index(len)] ^= mask,
        Damage::FlipInFooter(at, mask) => {
            let tail = len.min(1024);
            bytes[len - tail + at.index(tail)] ^= mask;
        }
        Damage::Overwrite(at, patch) => {
            let start = at.index(len);
            let end = (start + patch.len()).min(len);
            bytes[start..end].copy_from_slice(&patch[..end - start]);
        }
        Damage::ZeroFooterLength | Damage::FooterLength(_) if len < 8 => {}
        Damage::ZeroFooterLength => bytes[len - 8..len - 4].fill(0),
        Damage::FooterLength(length) => bytes[len - 8..len - 4].copy_from_slice(&length.to_le_bytes()),
        Damage::RowCount(row_group, rows) => set_row_count(bytes, *row_group, *rows),
    }
}

/// Rewrites the footer of `bytes` with one row group's row count set to `rows`. Bytes whose
/// footer does not parse are left as they are.
fn set_row_count(bytes: &mut Vec<u8>, row_group: Index, rows: i64) {
    let Ok(metadata) = ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::from(bytes.clone())) else {
        return;
    };
    let footer = bytes.len() - 8;
    let metadata_len = u32::from_le_bytes(bytes[footer..footer + 4].try_into().unwrap()) as usize;
    if metadata.num_row_groups() == 0 || metadata_len > footer {
        return;
    }

    let mut builder = metadata.into_builder();
    let mut row_groups = builder.take_row_groups();
    let index = row_group.index(row_groups.len());
    let Ok(changed) = row_groups[index].clone().into_builder().set_num_rows(rows).build() else {
        return;
    };
    row_groups[index] = changed;
    let metadata = builder.set_row_groups(row_groups).build();

    let mut rewritten = bytes[..footer - metadata_len].to_vec();
    if ParquetMetaDataWriter::new(&mut rewritten, &metadata).finish().is_ok() {
        *bytes = rewritten;
    }
}

/// Writes `columns` as a shard with the given properties and returns its bytes.
fn shard_bytes(folder: &Path, name: &str, column: (&str, ArrayRef), properties: WriterProperties) -> Vec<u8> {
    let path = folder.join(name);
    let (column_name, array) = column;
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![Field::new(column_name, array.data_type().clone(), true)]));
    let batch = arrow::array::RecordBatch::try_new(schema.clone(), vec![array]).unwrap();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    std::fs::read(path).unwrap()
}

/// Shards of every column type and codec the loader reads, and the committed fixtures.
fn base_shards(folder: &Path) -> Vec<BaseShard> {
    let mut bases = Vec::new();
    let small_groups = |compression| WriterProperties::builder().set_compression(compression).set_max_row_group_row_count(Some(16)).build();

    write_tokens(&folder.join("plain.parquet"), &numbered_documents(0, 60, 40), 16);
    bases.push(BaseShard { name: "list<uint32>, uncompressed".into(), bytes: std::fs::read(folder.join("plain.parquet")).unwrap(), column: Column::Tokens });

    let documents = numbered_documents(100, 50, 30);
    let values: Vec<i64> = documents.iter().flatten().map(|&token| i64::from(token)).collect();
    let nulls = NullBuffer::from_iter((0..documents.len()).map(|row| row % 7 != 3));
    let large = LargeListArray::new(
        Arc::new(Field::new("item", DataType::Int64, true)),
        OffsetBuffer::from_lengths(documents.iter().map(Vec::len)),
        Arc::new(Int64Array::from(values)),
        Some(nulls),
    );
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).set_max_row_group_row_count(Some(7)).build();
    let bytes = shard_bytes(folder, "large.parquet", ("tokens", Arc::new(large)), properties);
    bases.push(BaseShard { name: "large_list<int64> with null rows, zstd, dictionary".into(), bytes, column: Column::Tokens });

    let documents = numbered_documents(3, 40, 20);
    let values: Vec<u16> = documents.iter().flatten().map(|&token| (token % 60_000) as u16).collect();
    let short = ListArray::new(Arc::new(Field::new("item", DataType::UInt16, false)), OffsetBuffer::from_lengths(documents.iter().map(Vec::len)), Arc::new(UInt16Array::from(values)), None);
    let bytes = shard_bytes(folder, "short.parquet", ("tokens", Arc::new(short.clone())), small_groups(Compression::SNAPPY));
    bases.push(BaseShard { name: "list<uint16>, snappy".into(), bytes, column: Column::Tokens });
    let bytes = shard_bytes(folder, "lz4.parquet", ("tokens", Arc::new(short)), small_groups(Compression::LZ4_RAW));
    bases.push(BaseShard { name: "list<uint16>, lz4".into(), bytes, column: Column::Tokens });

    let texts: Vec<String> = (0..80).map(|row| format!("Document {row}: the reader decodes row group after row group. {}", "word ".repeat(row % 13))).collect();
    let text = Arc::new(StringArray::from(texts)) as ArrayRef;
    let bytes = shard_bytes(folder, "text.parquet", ("text", text), small_groups(Compression::GZIP(GzipLevel::default())));
    bases.push(BaseShard { name: "utf8 text, gzip".into(), bytes, column: Column::Text });

    for path in fixture_shards() {
        let name = format!("fixture {}", path.strip_prefix(fixtures()).unwrap().display());
        bases.push(BaseShard { name, bytes: std::fs::read(&path).unwrap(), column: Column::Text });
    }
    bases
}

fn fixture_shards() -> Vec<PathBuf> {
    let pattern = fixtures().join("domains/*/*.parquet");
    let mut paths: Vec<PathBuf> = glob::glob(&pattern.to_string_lossy()).unwrap().map(Result::unwrap).collect();
    paths.sort();
    assert!(!paths.is_empty(), "the fixture shards are missing");
    paths
}

/// Makes a configuration of one domain at `folder` reading `column`.
fn domain_config(folder: &Path, column: Column, skip_bad_shards: bool) -> Config {
    let column_key = match column {
        Column::Tokens => "eos_token = 0",
        Column::Text => "text_column = 'text'\ntokenizer = 'gpt2'",
    };
    let text = format!(
        "seed = 1\nseq_len = 64\nbatch_size = 2\nprefetch_sequences = 4\nskip_bad_shards = {skip_bad_shards}\n[[domains]]\nname = 'fuzz'\npath = '{}'\nweight = 1.0\n{column_key}\n",
        folder.display()
    );
    Config::from_toml_str(&text, Path::new("/")).unwrap()
}

/// What a case ended with.
#[derive(Debug)]
enum Outcome {
    Batches,
    BuildError,
    IteratorError,
}

/// Builds a loader over `config` and pulls up to [`BATCHES`] batches.
fn run_loader(config: Config) -> Result<Outcome, String> {
    let mut loader = match Loader::builder(config).threads(1).build() {
        Ok(loader) => loader,
        Err(error) => {
            reject_panic(&error)?;
            return Ok(Outcome::BuildError);
        }
    };
    for _ in 0..BATCHES {
        match loader.next() {
            Some(Ok(_)) => continue,
            Some(Err(error)) => return reject_panic(&error).map(|()| Outcome::IteratorError),
            None => return Err("the loader ended without an error".into()),
        }
    }
    Ok(Outcome::Batches)
}

/// Rejects a caught reader panic: it is still a panic on data.
fn reject_panic(error: &Error) -> Result<(), String> {
    match error {
        Error::ReaderPanicked { .. } => Err(format!("a reader panicked: {error}")),
        _ => Ok(()),
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(value) => value.parse().unwrap_or_else(|_| panic!("{name}={value} is not a whole number")),
        Err(_) => default,
    }
}

/// Writes one case's files into a fresh folder under `case_root`, runs a loader over them and
/// removes the folder.
fn run_case(case: &Case, bases: &[BaseShard], case_root: &Path, case_number: u64) -> Result<Outcome, TestCaseError> {
    let folder = case_root.join(format!("case-{case_number}"));
    std::fs::create_dir_all(&folder).unwrap();

    let (mut bytes, column, good) = match &case.start {
        Start::Random(bytes) => (bytes.clone(), Column::Tokens, &bases[0]),
        Start::RandomWithMagic(body, length) => {
            let bytes = [b"PAR1".as_slice(), body, &length.to_le_bytes(), b"PAR1"].concat();
            (bytes, Column::Tokens, &bases[0])
        }
        Start::Shard(index) => {
            let base = &bases[index.index(bases.len())];
            (base.bytes.clone(), base.column, base)
        }
    };
    for damage in &case.damages {
        apply(damage, &mut bytes);
    }
    std::fs::write(folder.join("damaged.parquet"), &bytes).unwrap();
    if case.with_good_shard {
        std::fs::write(folder.join("good.parquet"), &good.bytes).unwrap();
    }

    let config = domain_config(&folder, column, case.skip_bad_shards);
    let outcome = within(CASE_LIMIT, move || run_loader(config));
    std::fs::remove_dir_all(&folder).unwrap();
    outcome.map_err(|message| TestCaseError::fail(format!("{message} (base {})", good.name)))
}

#[test]
fn damaged_shards_never_panic_or_hang() {
    let cases = env_number("CHAMELEON_FUZZ_CASES", 64) as u32;
    let seed = env_number("CHAMELEON_FUZZ_SEED", 0x00c0_ffee);
    let budget = std::env::var("CHAMELEON_FUZZ_SECONDS").ok().map(|_| Duration::from_secs(env_number("CHAMELEON_FUZZ_SECONDS", 0)));
    eprintln!("fuzz_reader: {cases} cases per round, first seed {seed}, time budget {budget:?}");

    let root = temp_dir();
    let bases = base_shards(&root.path().join("bases"));
    let case_root = root.path().join("cases");
    let counts: [AtomicU64; 3] = Default::default();
    let runs = AtomicU64::new(0);
    let started = Instant::now();

    // Without a budget, one round of `cases`. With one, rounds of seed, seed + 1, ... until the
    // budget is spent; a failing round is reproduced by its seed alone.
    let mut round_seed = seed;
    let failure = loop {
        let config = ProptestConfig {
            cases,
            rng_seed: RngSeed::Fixed(round_seed),
            failure_persistence: None,
            max_shrink_iters: 256,
            max_shrink_time: 120_000,
            ..ProptestConfig::default()
        };
        let result = TestRunner::new(config).run(&case_strategy(), |case| {
            let outcome = run_case(&case, &bases, &case_root, runs.fetch_add(1, Ordering::Relaxed))?;
            counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
            Ok(())
        });
        if let Err(failure) = result {
            break Some(format!("seed {round_seed}: {failure}"));
        }
        if budget.is_none_or(|budget| started.elapsed() > budget) {
            break None;
        }
        round_seed += 1;
    };

    let [batches, build_errors, iterator_errors] = &counts;
    eprintln!(
        "fuzz_reader: {} runs over seeds {seed}..={round_seed} in {:?}: {} gave batches, {} build errors, {} iterator errors",
        runs.load(Ordering::Relaxed),
        started.elapsed(),
        batches.load(Ordering::Relaxed),
        build_errors.load(Ordering::Relaxed),
        iterator_errors.load(Ordering::Relaxed),
    );
    if let Some(failure) = failure {
        panic!("{failure}");
    }
}
