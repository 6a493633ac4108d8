//! Hard inputs taken from real bug reports, one test per case. Each test builds real parquet
//! shards with arrow-rs and runs them through the public API.

mod common;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::{
    Array, ArrayRef, Int32Array, Int64Array, LargeStringBuilder, ListArray, NullArray, RecordBatch, UInt16Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema};
use chameleon::sampler::Sampler;
use chameleon::source::Shard;
use chameleon::{Batch, Config, Loader};
use common::{config, numbered_documents, temp_dir, token_lists, within, write_columns, write_tokens};
use parquet::arrow::arrow_writer::{compute_leaves, ArrowWriterOptions};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::{ColumnChunkMetaDataBuilder, ParquetMetaDataReader, ParquetMetaDataWriter, RowGroupMetaData};
use parquet::file::properties::WriterProperties;
use parquet::file::reader::{FileReader, SerializedFileReader};

const LIMIT: Duration = Duration::from_secs(60);

fn take(loader: &mut Loader, steps: usize) -> Vec<Batch> {
    (0..steps).map(|step| loader.next().expect("the loader never ends").unwrap_or_else(|error| panic!("step {step}: {error}"))).collect()
}

/// One expected row: its `seq_len + 1` tokens and its document starts.
#[derive(Debug, PartialEq)]
struct Row {
    tokens: Vec<u32>,
    doc_starts: Vec<u32>,
}

/// The rows a domain must yield when it reads `documents` in this order in every epoch: each
/// non-empty document followed by `eos`, cut into rows of `seq_len + 1` tokens.
fn expected_rows(documents: &[Vec<u32>], eos: u32, seq_len: usize, rows: usize) -> Vec<Row> {
    let mut stream = Vec::new();
    let mut starts = Vec::new();
    for document in documents.iter().filter(|document| !document.is_empty()) {
        starts.push(stream.len());
        stream.extend_from_slice(document);
        stream.push(eos);
    }
    let width = seq_len + 1;
    (0..rows)
        .map(|row| {
            let positions = row * width..(row + 1) * width;
            let tokens = positions.clone().map(|position| stream[position % stream.len()]).collect();
            let doc_starts = positions
                .filter(|position| starts.binary_search(&(position % stream.len())).is_ok())
                .map(|position| (position - row * width) as u32)
                .collect();
            Row { tokens, doc_starts }
        })
        .collect()
}

/// Tokens of one epoch of `documents`: each non-empty document plus its end token.
fn epoch_tokens(documents: &[Vec<u32>]) -> usize {
    documents.iter().filter(|document| !document.is_empty()).map(|document| document.len() + 1).sum()
}

/// Collects the rows of `batches` that come from domain `domain`, in order.
fn rows_of(batches: &[Batch], domain: u32) -> Vec<Row> {
    let mut rows = Vec::new();
    for batch in batches {
        for row in 0..batch.rows() {
            if batch.domains[row] == domain {
                rows.push(Row { tokens: batch.row(row).to_vec(), doc_starts: batch.doc_starts(row).to_vec() });
            }
        }
    }
    rows
}

/// Counts the epochs a domain has started once `tokens` of its stream are used.
fn epochs_for(tokens: usize, epoch_tokens: usize) -> u64 {
    tokens.div_ceil(epoch_tokens) as u64
}

/// Joins the messages of `error` and of every error under it.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(" / {cause}"));
        source = cause.source();
    }
    text
}

/// Parses configuration text with paths relative to the root folder, without unwrapping.
fn parse(text: &str) -> chameleon::Result<Config> {
    Config::from_toml_str(text, Path::new("/"))
}

/// Configuration text of pre-tokenized domains, for cases the `config` helper cannot express.
fn config_text(domains: &[(&str, &str, f64)]) -> String {
    let mut text = String::from("seed = 0\nseq_len = 8\nbatch_size = 2\neos_token = 0\n");
    for (name, path, weight) in domains {
        text.push_str(&format!("[[domains]]\nname = '{name}'\npath = '{path}'\nweight = {weight:?}\n"));
    }
    text
}

#[test]
fn zero_weight_domain_beside_tiny_domain() {
    let root = temp_dir();
    let tiny = vec![vec![11, 12], vec![21]];
    write_tokens(&root.path().join("tiny/0.parquet"), &tiny, 10);
    write_tokens(&root.path().join("idle/0.parquet"), &numbered_documents(0, 50, 20), 10);
    write_tokens(&root.path().join("empty/0.parquet"), &[], 10);
    let domains = [("tiny", root.path().join("tiny"), 1.0), ("idle", root.path().join("idle"), 0.0), ("empty", root.path().join("empty"), 0.0)];
    let domains: Vec<_> = domains.iter().map(|(name, path, weight)| (*name, path.as_path(), *weight)).collect();
    // A row of 4 + 1 tokens is exactly one epoch of the tiny domain: [11, 12, 0, 21, 0].
    let config = config(3, 4, 2, &domains);

    let (batches, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let batches = take(&mut loader, 100);
        (batches, loader.stats())
    });

    assert!(batches.iter().all(|batch| batch.domains.iter().all(|&domain| domain == 0)), "only the tiny domain is drawn");
    assert_eq!(rows_of(&batches, 0), expected_rows(&tiny, 0, 4, 200));
    assert_eq!(stats[0].epochs, 200);
    for idle in &stats[1..] {
        assert_eq!((idle.sequences, idle.tokens, idle.epochs), (0, 0, 0), "{idle:?}");
    }
}

#[test]
fn domain_of_empty_files_fails_at_start() {
    let root = temp_dir();
    write_tokens(&root.path().join("good/0.parquet"), &numbered_documents(0, 20, 10), 10);
    write_tokens(&root.path().join("hollow/0.parquet"), &[], 10);
    write_tokens(&root.path().join("hollow/1.parquet"), &[], 10);
    let config = config(0, 8, 2, &[("good", &root.path().join("good"), 1.0), ("hollow", &root.path().join("hollow"), 1.0)]);

    let error = within(LIMIT, move || Loader::new(config).expect_err("a positive weight over zero rows must fail").to_string());

    assert!(error.contains("domain 'hollow'"), "{error}");
    assert!(error.contains("every shard has zero rows"), "{error}");
    assert!(error.contains("give it weight 0"), "{error}");
}

#[test]
fn rare_domain_share_and_epochs() {
    let root = temp_dir();
    let rare = numbered_documents(500, 4, 10);
    write_tokens(&root.path().join("rare/0.parquet"), &rare, 100);
    write_tokens(&root.path().join("common/0.parquet"), &numbered_documents(0, 400, 60), 50);
    let (seq_len, batch_size, steps) = (8, 100, 1000);
    let config = config(17, seq_len, batch_size, &[("rare", &root.path().join("rare"), 0.001), ("common", &root.path().join("common"), 0.999)]);

    let (rare_rows, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let mut rare_rows = Vec::new();
        for _ in 0..steps {
            let batch = loader.next().unwrap().unwrap();
            rare_rows.extend(rows_of(std::slice::from_ref(&batch), 0));
        }
        (rare_rows, loader.stats())
    });

    let sequences = (batch_size * steps) as f64;
    let expected = sequences * 0.001;
    let deviation = (sequences * 0.001 * 0.999).sqrt();
    let drawn = rare_rows.len() as f64;
    assert!((drawn - expected).abs() <= 3.0 * deviation, "{drawn} rare rows, expected {expected} ± {}", 3.0 * deviation);
    assert_eq!(stats[0].sequences, rare_rows.len() as u64);
    assert_eq!(stats[1].sequences + stats[0].sequences, sequences as u64);

    // Every rare row continues the rare domain's own stream, epoch after epoch.
    assert_eq!(rare_rows, expected_rows(&rare, 0, seq_len, rare_rows.len()));
    let used = rare_rows.len() * (seq_len + 1);
    assert!(stats[0].epochs >= 2, "the rare domain must wrap into a new epoch: {:?}", stats[0]);
    assert_eq!(stats[0].epochs, epochs_for(used, epoch_tokens(&rare)));
}

#[test]
fn negligible_weight_domain_reports_zero() {
    let root = temp_dir();
    for (index, name) in ["a", "b", "c"].iter().enumerate() {
        write_tokens(&root.path().join(name).join("0.parquet"), &numbered_documents(index as u32 * 100, 100, 30), 20);
    }
    let paths: Vec<PathBuf> = ["a", "b", "c"].iter().map(|name| root.path().join(name)).collect();
    let config = config(8, 16, 8, &[("a", &paths[0], 0.5), ("b", &paths[1], 0.5), ("c", &paths[2], 1e-9)]);

    let stats = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        take(&mut loader, 500);
        loader.stats()
    });

    // 4000 draws at probability 1e-9: with this seed, none picks c.
    let rare = &stats[2];
    assert_eq!(rare.sequences, 0, "{rare:?}");
    assert_eq!(rare.tokens, 0, "{rare:?}");
    assert_eq!(rare.epochs, 0, "{rare:?}");
    assert!(rare.target_weight > 0.0, "{rare:?}");
    assert!(rare.target_weight < 1e-8, "{rare:?}");
    assert_eq!(stats[0].sequences + stats[1].sequences, 4000);
}

#[test]
fn three_hundred_domain_ids_and_state() {
    let root = temp_dir();
    let names: Vec<String> = (0..300).map(|index| format!("domain{index:03}")).collect();
    for (index, name) in names.iter().enumerate() {
        // Document d contains tokens d * 1000 + t, so token / 10_000 is the domain's index.
        write_tokens(&root.path().join(name).join("0.parquet"), &numbered_documents(index as u32 * 10, 10, 30), 5);
    }
    let paths: Vec<_> = names.iter().map(|name| root.path().join(name)).collect();
    let domains: Vec<_> = names.iter().zip(&paths).map(|(name, path)| (name.as_str(), path.as_path(), 1.0)).collect();
    let mut config = config(2, 16, 64, &domains);
    config.prefetch_sequences = Some(2);
    let resume_config = config.clone();

    let (batches, stats, resumed) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let before = take(&mut loader, 40);
        let saved = serde_json::to_string(&loader.state()).unwrap();
        let after = take(&mut loader, 10);
        let stats = loader.stats();
        drop(loader);
        let state = serde_json::from_str(&saved).unwrap();
        let mut resumed = Loader::builder(resume_config).resume(state).build().unwrap();
        let resumed = take(&mut resumed, 10);
        ([before, after.clone()].concat(), stats, (after, resumed))
    });

    let mut rows_per_domain = vec![0u64; 300];
    for batch in &batches {
        for row in 0..batch.rows() {
            let id = batch.domains[row];
            rows_per_domain[id as usize] += 1;
            assert_eq!(batch.domain_name(row), names[id as usize]);
            let foreign: Vec<_> = batch.row(row).iter().filter(|&&token| token != 0 && token / 10_000 != id).collect();
            assert!(foreign.is_empty(), "row of domain {id} contains tokens of other domains: {foreign:?}");
        }
    }
    assert!(rows_per_domain[256..].iter().any(|&rows| rows > 0), "ids past 255 are drawn");
    assert_eq!(stats.len(), 300);
    for (index, domain) in stats.iter().enumerate() {
        assert_eq!(domain.name, names[index]);
        assert_eq!(domain.sequences, rows_per_domain[index], "domain {index}");
    }
    assert_eq!(resumed.0, resumed.1, "a loader resumed from the saved state continues the same batches");
}

#[test]
fn empty_token_rows_add_nothing() {
    let root = temp_dir();
    let documents = vec![Some(vec![]), Some(vec![7, 8]), Some(vec![]), Some(vec![]), Some(vec![9]), Some(vec![])];
    write_columns(&root.path().join("a/0.parquet"), vec![("tokens", token_lists(&documents))], 100);
    let config = config(0, 4, 3, &[("a", &root.path().join("a"), 1.0)]);

    let (batch, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let batch = loader.next().unwrap().unwrap();
        (batch, loader.stats())
    });

    let documents: Vec<Vec<u32>> = documents.into_iter().flatten().collect();
    assert_eq!(rows_of(&[batch], 0), expected_rows(&documents, 0, 4, 3));
    assert_eq!(stats[0].epochs, 3);
    assert_eq!(stats[0].null_rows, 0);
}

#[test]
fn list_of_null_is_type_error() {
    let root = temp_dir();
    let list = ListArray::new(Arc::new(Field::new("item", DataType::Null, true)), OffsetBuffer::from_lengths([2, 0, 1]), Arc::new(NullArray::new(3)), None);
    write_columns(&root.path().join("a/nulls.parquet"), vec![("tokens", Arc::new(list) as ArrayRef)], 10);
    let config = config(0, 8, 1, &[("a", &root.path().join("a"), 1.0)]);

    let error = Loader::new(config).expect_err("list<null> is not a token column").to_string();

    assert!(error.contains("domain 'a'"), "{error}");
    assert!(error.contains("nulls.parquet"), "{error}");
    assert!(error.contains("column 'tokens'"), "{error}");
    assert!(error.contains("expected a list of integer token ids, found a list of Null"), "{error}");
}

#[test]
fn null_token_rows_skipped_not_zeros() {
    let root = temp_dir();
    // Null rows 1 and 3 cover child values of 0, as arrow allows; they must not be read.
    let values = Int64Array::from(vec![5, 6, 0, 0, 0, 7, 0, 8, 9]);
    let offsets = OffsetBuffer::from_lengths([2, 3, 1, 1, 2]);
    let nulls = NullBuffer::from(vec![true, false, true, false, true]);
    let list = ListArray::new(Arc::new(Field::new("item", DataType::Int64, true)), offsets, Arc::new(values), Some(nulls));
    write_columns(&root.path().join("a/0.parquet"), vec![("tokens", Arc::new(list) as ArrayRef)], 100);
    let mut config = config(0, 7, 1, &[("a", &root.path().join("a"), 1.0)]);
    config.eos_token = Some(1000);

    let (first, first_stats, later, later_stats) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let first = take(&mut loader, 1);
        let first_stats = loader.stats();
        let later = take(&mut loader, 2);
        (first, first_stats, later, loader.stats())
    });

    // One epoch is [5, 6, E, 7, E, 8, 9, E]: exactly one row of 7 + 1 tokens.
    let documents = vec![vec![5, 6], vec![7], vec![8, 9]];
    assert_eq!(rows_of(&[first, later].concat(), 0), expected_rows(&documents, 1000, 7, 3));
    assert_eq!(first_stats[0].null_rows, 2, "two null rows in the first epoch");
    assert_eq!(later_stats[0].null_rows, 6, "null rows are counted each time an epoch skips them");
}

/// Makes text of `row_bytes` bytes out of common English words, so the tokenizer gets ordinary
/// text.
fn long_text(row_bytes: usize) -> String {
    const WORDS: [&str; 16] =
        ["the", "model", "reads", "a", "long", "document", "of", "plain", "text", "and", "every", "line", "counts", "tokens", "here", "again"];
    let mut state = 0x2545_f491_u32;
    let mut block = String::new();
    while block.len() < 8192 {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        block.push_str(WORDS[(state >> 16) as usize % WORDS.len()]);
        block.push(if state % 11 == 0 { '\n' } else { ' ' });
    }
    let mut text = block.repeat(row_bytes / block.len() + 1);
    text.truncate(row_bytes);
    text
}

/// Writes `rows` text rows of `row_bytes` bytes each as one row group of `large_utf8`, zstd
/// compressed, in chunks of `chunk_rows` rows so the writer never buffers the whole column. With
/// `arrow_schema` false the file carries no arrow schema, so readers decode the column as `utf8`
/// with 32-bit offsets, as for files written by tools other than arrow.
fn write_long_text(path: &Path, rows: usize, row_bytes: usize, chunk_rows: usize, arrow_schema: bool) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(Schema::new(vec![Field::new("text", DataType::LargeUtf8, false)]));
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(None)
        .set_write_batch_size(4)
        .set_data_page_size_limit(1 << 20)
        .build();
    let options = ArrowWriterOptions::new().with_properties(properties).with_skip_arrow_metadata(!arrow_schema);
    let file = std::fs::File::create(path).unwrap();
    let mut writer = ArrowWriter::try_new_with_options(file, schema.clone(), options).unwrap();

    let body = long_text(row_bytes - "document 00000 ".len());
    let mut written = 0;
    while written < rows {
        let count = chunk_rows.min(rows - written);
        let mut builder = LargeStringBuilder::with_capacity(count, count * row_bytes);
        for row in written..written + count {
            write!(builder, "document {row:05} {body}").unwrap();
            builder.append_value("");
        }
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(builder.finish()) as ArrayRef]).unwrap();
        writer.write(&batch).unwrap();
        written += count;
    }
    let metadata = writer.close().unwrap();
    assert_eq!(metadata.num_row_groups(), 1, "the text is one row group");
}

/// Reads every record batch of the shard's one row group and returns (rows, largest batch in
/// bytes of string data), checking that no batch has more than `max_rows` rows.
fn read_text_row_group(path: &Path, max_rows: usize) -> (usize, usize) {
    let shard = Shard::open("long", path, "text").unwrap();
    assert_eq!(shard.num_row_groups(), 1);
    let mut rows = 0;
    let mut largest = 0;
    for batch in shard.read_row_group("long", 0).unwrap() {
        let batch = batch.unwrap_or_else(|error| panic!("row {rows}: {error}"));
        assert!(batch.num_rows() <= max_rows, "a record batch of {} rows", batch.num_rows());
        let column = batch.column(0);
        let text_bytes = match column.data_type() {
            DataType::Utf8 => column.as_any().downcast_ref::<arrow::array::StringArray>().unwrap().value_data().len(),
            DataType::LargeUtf8 => column.as_any().downcast_ref::<arrow::array::LargeStringArray>().unwrap().value_data().len(),
            other => panic!("unexpected text type {other}"),
        };
        largest = largest.max(text_bytes);
        rows += batch.num_rows();
    }
    (rows, largest)
}

/// Streams a few batches from a text domain at `folder` and checks where its tokens come from.
fn stream_long_text(folder: &Path) {
    let text = format!(
        "seq_len = 2048\nbatch_size = 4\ntokenizer = 'gpt2'\n[[domains]]\nname = 'long'\npath = '{}'\ntext_column = 'text'\nweight = 1.0\n",
        folder.display()
    );
    let config = parse(&text).unwrap();
    let batches = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        take(&mut loader, 3)
    });
    assert!(batches.iter().all(|batch| batch.tokens.len() == 4 * 2049));
    assert!(batches[0].doc_starts(0).contains(&0), "the first row starts with a document");
}

#[test]
fn long_text_rows_bounded_batches() {
    let root = temp_dir();
    let (rows, row_bytes) = (90, 300 * 1024);
    for (name, arrow_schema) in [("large", true), ("plain", false)] {
        let path = root.path().join(name).join("0.parquet");
        write_long_text(&path, rows, row_bytes, 30, arrow_schema);

        let (read, largest) = read_text_row_group(&path, 32);
        assert_eq!(read, rows, "{name}");
        assert!(largest <= 10 << 20, "{name}: a record batch of {largest} bytes of text");
        stream_long_text(&root.path().join(name));
    }
}

#[test]
fn text_rows_of_300_kb_times_9000() {
    let root = temp_dir();
    let path = root.path().join("long/0.parquet");
    let (rows, row_bytes) = (9000, 300 * 1024);
    let started = Instant::now();
    write_long_text(&path, rows, row_bytes, 100, false);
    eprintln!("wrote {rows} rows of {row_bytes} bytes in {:?}", started.elapsed());

    let shard = Shard::open("long", &path, "text").unwrap();
    assert!(shard.column_bytes() > i32::MAX as u64, "the row group has more text than 32-bit offsets can address");
    let started = Instant::now();
    let (read, largest) = read_text_row_group(&path, 32);
    eprintln!("read {read} rows in {:?}, largest record batch {largest} bytes of text", started.elapsed());
    assert_eq!(read, rows);
    assert!(largest <= 10 << 20, "a record batch of {largest} bytes of text");
    stream_long_text(&root.path().join("long"));
}

/// Writes a domain of a good shard and a shard `bad.parquet` of five zstd row groups.
fn domain_with_bad_shard(root: &Path) -> (PathBuf, PathBuf) {
    let folder = root.join("a");
    write_tokens(&folder.join("good.parquet"), &numbered_documents(0, 40, 20), 10);
    let bad = folder.join("bad.parquet");
    let documents: Vec<Option<Vec<u32>>> = numbered_documents(100, 50, 40).into_iter().map(Some).collect();
    let schema = Arc::new(Schema::new(vec![Field::new("tokens", token_lists(&documents).data_type().clone(), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![token_lists(&documents)]).unwrap();
    let properties = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_dictionary_enabled(false)
        .set_max_row_group_row_count(Some(10))
        .build();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&bad).unwrap(), schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    (folder, bad)
}

/// Cuts `path` in the middle of its footer's metadata.
fn cut_in_footer(path: &Path) {
    let bytes = std::fs::read(path).unwrap();
    let footer = bytes.len() - 8;
    let metadata_len = u32::from_le_bytes(bytes[footer..footer + 4].try_into().unwrap()) as usize;
    std::fs::write(path, &bytes[..footer - metadata_len / 2]).unwrap();
}

/// Flips one byte in the middle of the compressed values of row group `row_group`'s data page.
fn flip_data_page_byte(path: &Path, row_group: usize) {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let chunk = reader.metadata().row_group(row_group).column(0).clone();
    assert!(chunk.dictionary_page_offset().is_none(), "no dictionary page before the data page");
    let middle = (chunk.data_page_offset() + chunk.compressed_size() / 2) as usize;
    let mut bytes = std::fs::read(path).unwrap();
    bytes[middle] ^= 0x01;
    std::fs::write(path, bytes).unwrap();
}

fn first_error(config: Config) -> String {
    within(LIMIT, move || {
        let mut loader = Loader::new(config).expect("the loader starts");
        for _ in 0..10_000 {
            match loader.next().expect("the loader never ends") {
                Ok(_) => continue,
                Err(error) => return error.to_string(),
            }
        }
        panic!("no error in 10,000 batches");
    })
}

#[test]
fn footer_cut_short_names_the_file() {
    let root = temp_dir();
    let (folder, bad) = domain_with_bad_shard(root.path());
    cut_in_footer(&bad);

    let error = Loader::new(config(0, 8, 2, &[("a", &folder, 1.0)])).expect_err("a cut footer fails at start").to_string();
    assert!(error.contains("domain 'a'"), "{error}");
    assert!(error.contains("bad.parquet"), "{error}");
    assert!(error.contains("skip_bad_shards"), "{error}");

    let mut skipping = config(0, 8, 2, &[("a", &folder, 1.0)]);
    skipping.skip_bad_shards = true;
    let stats = within(LIMIT, move || {
        let mut loader = Loader::new(skipping).unwrap();
        take(&mut loader, 200);
        loader.stats()
    });
    assert_eq!(stats[0].skipped_shards, 1);
    assert!(stats[0].epochs >= 2, "the good shard keeps the domain going: {:?}", stats[0]);
}

#[test]
fn flipped_page_byte_names_the_file() {
    let root = temp_dir();
    let (folder, bad) = domain_with_bad_shard(root.path());
    flip_data_page_byte(&bad, 2);

    let error = first_error(config(0, 8, 2, &[("a", &folder, 1.0)]));
    assert!(error.contains("domain 'a'"), "{error}");
    assert!(error.contains("bad.parquet"), "{error}");
    assert!(error.contains("row group 2"), "{error}");
    assert!(error.contains("skip_bad_shards"), "{error}");

    let mut skipping = config(0, 8, 2, &[("a", &folder, 1.0)]);
    skipping.skip_bad_shards = true;
    let (batches, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(skipping).unwrap();
        let batches = take(&mut loader, 300);
        (batches, loader.stats())
    });
    assert!(stats[0].epochs >= 2, "{:?}", stats[0]);
    assert!(stats[0].skipped_row_groups >= 1, "{:?}", stats[0]);
    // Documents 120..130 sit in row group 2 of the bad shard: none of them is read.
    let read_from_flipped = batches.iter().flat_map(|batch| batch.tokens.iter()).any(|&token| (120_000..130_000).contains(&token));
    assert!(!read_from_flipped, "tokens of the skipped row group reached a batch");
}

#[test]
fn row_groups_ten_zero_ten() {
    let root = temp_dir();
    let path = root.path().join("a/0.parquet");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let documents = numbered_documents(0, 20, 4);
    let lists = |part: &[Vec<u32>]| token_lists(&part.iter().cloned().map(Some).collect::<Vec<_>>());
    let field = Field::new("tokens", lists(&documents).data_type().clone(), true);
    let schema = Arc::new(Schema::new(vec![field.clone()]));

    // ArrowWriter skips empty batches, so the row groups are written one by one.
    let mut writer = ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema.clone(), None).unwrap();
    writer.write(&RecordBatch::try_new(schema.clone(), vec![lists(&documents[..10])]).unwrap()).unwrap();
    let (mut file_writer, factory) = writer.into_serialized_writer().unwrap();
    for (index, part) in [(1, &documents[..0]), (2, &documents[10..])] {
        let mut column_writers = factory.create_column_writers(index).unwrap();
        for leaf in compute_leaves(&field, &lists(part)).unwrap() {
            column_writers[0].write(&leaf).unwrap();
        }
        let mut row_group = file_writer.next_row_group().unwrap();
        for column_writer in column_writers {
            column_writer.close().unwrap().append_to_row_group(&mut row_group).unwrap();
        }
        row_group.close().unwrap();
    }
    file_writer.close().unwrap();

    let shard = Shard::open("a", &path, "tokens").unwrap();
    let row_group_rows: Vec<_> = (0..shard.num_row_groups()).map(|group| shard.row_group_rows(group)).collect();
    assert_eq!(row_group_rows, [10, 0, 10]);

    // One row is one epoch: every document once.
    let seq_len = epoch_tokens(&documents) - 1;
    let config = config(0, seq_len, 1, &[("a", &root.path().join("a"), 1.0)]);
    let (batch, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let batch = loader.next().unwrap().unwrap();
        (batch, loader.stats())
    });
    assert_eq!(batch.doc_starts(0).len(), 20);
    let mut tokens = batch.tokens.clone();
    tokens.sort_unstable();
    let mut expected: Vec<u32> = documents.iter().flat_map(|document| document.iter().copied().chain([0])).collect();
    expected.sort_unstable();
    assert_eq!(tokens, expected);
    assert_eq!(stats[0].epochs, 1);
}

#[test]
fn token_widths_widen_to_u32() {
    let root = temp_dir();
    let item = |data_type| Arc::new(Field::new("item", data_type, false));
    let int32 = ListArray::new(item(DataType::Int32), OffsetBuffer::from_lengths([2, 1]), Arc::new(Int32Array::from(vec![1, i32::MAX, 2])), None);
    let int64 = ListArray::new(item(DataType::Int64), OffsetBuffer::from_lengths([1, 2]), Arc::new(Int64Array::from(vec![3, i64::from(u32::MAX), 4])), None);
    let uint16 = ListArray::new(item(DataType::UInt16), OffsetBuffer::from_lengths([2, 1]), Arc::new(UInt16Array::from(vec![5, u16::MAX, 6])), None);
    for (name, list) in [("int32", int32), ("int64", int64), ("uint16", uint16)] {
        write_columns(&root.path().join(format!("a/{name}.parquet")), vec![("tokens", Arc::new(list) as ArrayRef)], 10);
    }
    // Three shards of two documents: one epoch is 9 ids and 6 end tokens, one row of 14 + 1.
    let config = config(0, 14, 1, &[("a", &root.path().join("a"), 1.0)]);

    let batch = within(LIMIT, move || Loader::new(config).unwrap().next().unwrap().unwrap());

    let mut tokens = batch.tokens.clone();
    tokens.sort_unstable();
    assert_eq!(tokens, [0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, u32::from(u16::MAX), i32::MAX as u32, u32::MAX]);
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).unwrap();
    assert!(readme.contains("| token ids stored as 8-, 16-, 32- or 64-bit integers, signed or not, list or large list | read and converted to `u32`"));
}

#[test]
fn odd_and_unit_seq_len() {
    let root = temp_dir();
    let documents = numbered_documents(0, 300, 120);
    write_tokens(&root.path().join("a/0.parquet"), &documents, 1000);

    for (seq_len, steps) in [(8193, 4), (1, 60)] {
        let config = config(5, seq_len, 2, &[("a", &root.path().join("a"), 1.0)]);
        let (batches, stats) = within(LIMIT, move || {
            let mut loader = Loader::new(config).unwrap();
            let batches = take(&mut loader, steps);
            (batches, loader.stats())
        });

        let rows = rows_of(&batches, 0);
        assert_eq!(rows, expected_rows(&documents, 0, seq_len, 2 * steps), "seq_len {seq_len}");
        for batch in &batches {
            assert_eq!(batch.tokens.len(), 2 * (seq_len + 1), "seq_len {seq_len}");
            assert_eq!(batch.inputs(1), &batch.row(1)[..seq_len], "seq_len {seq_len}");
            assert_eq!(batch.targets(1), &batch.row(1)[1..], "seq_len {seq_len}");
        }
        assert_eq!(stats[0].epochs, epochs_for(2 * steps * (seq_len + 1), epoch_tokens(&documents)), "seq_len {seq_len}");
    }
}

#[test]
fn five_two_three_one_tokens() {
    let root = temp_dir();
    let documents = vec![vec![11, 12, 13, 14, 15], vec![21, 22], vec![31, 32, 33], vec![41]];
    write_tokens(&root.path().join("a/0.parquet"), &documents, 100);
    let config = config(0, 4, 3, &[("a", &root.path().join("a"), 1.0)]);

    let (batches, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(config).unwrap();
        let first = take(&mut loader, 1);
        let stats = loader.stats();
        let second = take(&mut loader, 1);
        ([first, second].concat(), stats)
    });

    let expected = [
        (vec![11, 12, 13, 14, 15], vec![0]),
        (vec![0, 21, 22, 0, 31], vec![1, 4]),
        (vec![32, 33, 0, 41, 0], vec![3]),
    ];
    for (row, (tokens, doc_starts)) in expected.iter().enumerate() {
        assert_eq!(batches[0].row(row), tokens, "row {row}");
        assert_eq!(batches[0].doc_starts(row), doc_starts, "row {row}");
    }
    assert_eq!(stats[0].epochs, 1, "three rows hold exactly one epoch");
    assert_eq!(batches[1].tokens, batches[0].tokens, "the next epoch repeats the one row group");
}

#[test]
fn sampler_rare_weight_frequency() {
    let seed = 20_240_601;
    let draws = 10_000_000u64;
    let mut sampler = Sampler::new(seed, &[1.0, 1e-4]).unwrap();
    let rare = (0..draws).filter(|_| sampler.draw() == 1).count() as f64;

    let probability = 1e-4 / (1.0 + 1e-4);
    let expected = draws as f64 * probability;
    let deviation = (draws as f64 * probability * (1.0 - probability)).sqrt();
    assert!((rare - expected).abs() <= 3.0 * deviation, "seed {seed}: {rare} rare draws, expected {expected} ± {}", 3.0 * deviation);
}

#[test]
fn sampler_tiny_weight_keeps_share() {
    let sampler = Sampler::new(0, &[1.0, 1e-8]).unwrap();
    let probabilities = sampler.probabilities();

    assert_eq!(probabilities.len(), 2);
    assert!(probabilities[1] > 0.0, "{probabilities:?}");
    assert!((probabilities[1] - 1e-8).abs() < 1e-15, "{probabilities:?}");
    assert!((probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{probabilities:?}");
    // An f32 sum would round 1 + 1e-8 to 1 and leave the rare domain no share of the range.
    assert_eq!(1.0f32 + 1e-8f32, 1.0f32);
}

#[test]
fn same_folder_two_domains_named() {
    let root = temp_dir();
    write_tokens(&root.path().join("x/0.parquet"), &numbered_documents(0, 5, 5), 10);
    write_tokens(&root.path().join("x/1.parquet"), &numbered_documents(5, 5, 5), 10);
    std::os::unix::fs::symlink(root.path().join("x"), root.path().join("link")).unwrap();
    let x = root.path().join("x").display().to_string();
    let spellings = [
        ("same path", x.clone()),
        ("trailing slash", format!("{x}/")),
        ("dot segment", format!("{x}/./")),
        ("symbolic link", root.path().join("link").display().to_string()),
        ("glob", format!("{x}/*.parquet")),
        ("one shard", format!("{x}/1.parquet")),
    ];

    for (case, other) in spellings {
        let text = config_text(&[("books", &x, 1.0), ("novels", &other, 1.0)]);
        let error = match parse(&text) {
            Err(error) => error.to_string(),
            Ok(config) => Loader::new(config).map(|_| ()).expect_err(case).to_string(),
        };
        assert!(error.contains("'books'"), "{case}: {error}");
        assert!(error.contains("'novels'"), "{case}: {error}");
    }
}

/// Rewrites the footer of `path`, passing row group `row_group` through `change`.
fn rewrite_footer(path: &Path, row_group: usize, change: &dyn Fn(RowGroupMetaData) -> RowGroupMetaData) {
    let bytes = std::fs::read(path).unwrap();
    let metadata = ParquetMetaDataReader::new().parse_and_finish(&bytes::Bytes::from(bytes.clone())).unwrap();
    let footer = bytes.len() - 8;
    let metadata_len = u32::from_le_bytes(bytes[footer..footer + 4].try_into().unwrap()) as usize;

    let mut builder = metadata.into_builder();
    let mut row_groups = builder.take_row_groups();
    row_groups[row_group] = change(row_groups[row_group].clone());
    let metadata = builder.set_row_groups(row_groups).build();

    let mut rewritten = bytes[..footer - metadata_len].to_vec();
    ParquetMetaDataWriter::new(&mut rewritten, &metadata).finish().unwrap();
    std::fs::write(path, rewritten).unwrap();
}

fn with_rows(rows: i64) -> impl Fn(RowGroupMetaData) -> RowGroupMetaData {
    move |group| group.into_builder().set_num_rows(rows).build().unwrap()
}

fn with_column(change: fn(ColumnChunkMetaDataBuilder) -> ColumnChunkMetaDataBuilder) -> impl Fn(RowGroupMetaData) -> RowGroupMetaData {
    move |group| {
        let columns = group.columns().iter().map(|column| change(column.clone().into_builder()).build().unwrap()).collect();
        group.into_builder().set_column_metadata(columns).build().unwrap()
    }
}

#[test]
fn negative_footer_row_count_names_file() {
    let root = temp_dir();
    let folder = root.path().join("a");
    write_tokens(&folder.join("good.parquet"), &numbered_documents(0, 40, 20), 10);
    write_tokens(&folder.join("bad.parquet"), &numbered_documents(100, 40, 20), 10);
    rewrite_footer(&folder.join("bad.parquet"), 1, &with_rows(-1));

    let failing = config(0, 8, 2, &[("a", &folder, 1.0)]);
    let error = within(LIMIT, move || error_chain(&Loader::new(failing).expect_err("a negative row count fails at start")));
    assert!(error.contains("bad.parquet"), "{error}");
    assert!(error.contains("row group 1"), "{error}");
    assert!(error.contains("negative row count (-1)"), "{error}");

    let mut skipping = config(0, 8, 2, &[("a", &folder, 1.0)]);
    skipping.skip_bad_shards = true;
    let (batches, stats) = within(LIMIT, move || {
        let mut loader = Loader::new(skipping).unwrap();
        let batches = take(&mut loader, 100);
        (batches, loader.stats())
    });
    assert_eq!(stats[0].skipped_shards, 1);
    assert!(batches.iter().flat_map(|batch| batch.tokens.iter()).all(|&token| token < 100_000), "tokens of the skipped shard were read");
}

#[test]
fn wrong_footer_counts_never_panic() {
    let cases: [(&str, &dyn Fn(RowGroupMetaData) -> RowGroupMetaData); 5] = [
        ("rows far above the data", &with_rows(1 << 40)),
        ("rows above the data", &with_rows(1000)),
        ("rows below the data", &with_rows(3)),
        ("negative value count", &with_column(|column| column.set_num_values(-7))),
        ("negative size", &with_column(|column| column.set_total_uncompressed_size(-7))),
    ];
    for (case, change) in cases {
        let root = temp_dir();
        let documents = numbered_documents(0, 40, 20);
        write_tokens(&root.path().join("a/0.parquet"), &documents, 10);
        rewrite_footer(&root.path().join("a/0.parquet"), 1, change);
        let config = config(0, 8, 2, &[("a", &root.path().join("a"), 1.0)]);

        // The loader may read the rows the pages contain, or fail. It must not panic or hang.
        let outcome = within(LIMIT, move || {
            let mut loader = Loader::new(config)?;
            (0..200).map(|_| loader.next().unwrap()).collect::<chameleon::Result<Vec<Batch>>>()
        });
        let Ok(batches) = outcome else { continue };
        let known: std::collections::HashSet<u32> = documents.iter().flatten().copied().chain([0]).collect();
        let foreign = batches.iter().flat_map(|batch| batch.tokens.iter()).find(|token| !known.contains(token));
        assert_eq!(foreign, None, "{case}: a token that no document has");
    }
}
