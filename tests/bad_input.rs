//! Bad input: each case gets a clear error naming the domain and file, or documented handling.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, Int32Array, Int64Array, LargeListArray, ListArray, NullArray, StringArray, UInt16Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use chameleon::{Config, Loader};
use common::{config, numbered_documents, temp_dir, token_lists, within, write_columns, write_tokens};

fn build_error(config: Config) -> String {
    Loader::new(config).expect_err("building the loader must fail").to_string()
}

fn first_batch_error(config: Config) -> String {
    within(Duration::from_secs(60), move || {
        let mut loader = Loader::new(config).expect("the loader starts");
        loop {
            match loader.next() {
                Some(Ok(_)) => continue,
                Some(Err(error)) => return error.to_string(),
                None => panic!("the loader ended without an error"),
            }
        }
    })
}

#[test]
fn missing_folder_names_domain() {
    let root = temp_dir();
    let error = build_error(config(0, 8, 1, &[("ghost", &root.path().join("nope"), 1.0)]));
    assert!(error.contains("domain 'ghost'") && error.contains("does not exist"), "{error}");
}

#[test]
fn folder_without_shards_is_an_error() {
    let root = temp_dir();
    std::fs::create_dir_all(root.path().join("empty")).unwrap();
    std::fs::write(root.path().join("empty/notes.txt"), "not a shard").unwrap();
    std::fs::write(root.path().join("empty/.hidden.parquet.tmp"), "partial").unwrap();
    let error = build_error(config(0, 8, 1, &[("empty", &root.path().join("empty"), 1.0)]));
    assert!(error.contains("no parquet shards"), "{error}");
}

#[test]
fn missing_column_lists_the_columns() {
    let root = temp_dir();
    common::write_text(&root.path().join("a/shard.parquet"), &["hello"], 10);
    let error = build_error(config(0, 8, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("column 'tokens' not found") && error.contains("[text]") && error.contains("shard.parquet"), "{error}");
}

#[test]
fn wrong_column_type_is_an_error() {
    let root = temp_dir();
    write_columns(&root.path().join("a/shard.parquet"), vec![("tokens", Arc::new(StringArray::from(vec!["1 2 3"])) as ArrayRef)], 10);
    let error = build_error(config(0, 8, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("expected a list of integer token ids, found Utf8"), "{error}");
}

#[test]
fn list_of_null_is_a_type_error() {
    let root = temp_dir();
    let list = ListArray::new(Arc::new(Field::new("item", DataType::Null, true)), OffsetBuffer::from_lengths([2, 0]), Arc::new(NullArray::new(2)), None);
    write_columns(&root.path().join("a/shard.parquet"), vec![("tokens", Arc::new(list) as ArrayRef)], 10);
    let error = build_error(config(0, 8, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("found a list of Null"), "{error}");
}

#[test]
fn null_rows_are_skipped_and_counted() {
    let root = temp_dir();
    let documents = vec![Some(vec![1, 2]), None, Some(vec![]), Some(vec![3]), None, Some(vec![4])];
    write_columns(&root.path().join("a/shard.parquet"), vec![("tokens", token_lists(&documents))], 2);
    let mut loader = Loader::new(config(0, 6, 1, &[("a", &root.path().join("a"), 1.0)])).unwrap();
    let batch = loader.next().unwrap().unwrap();
    // Rows [1, 2], [3], [4] and their end tokens fill the row exactly; empty and null rows add
    // nothing. Row groups of two rows are shuffled, so only the multiset is fixed.
    let mut tokens = batch.tokens.clone();
    tokens.sort();
    assert_eq!(tokens, vec![0, 0, 0, 1, 2, 3, 4]);
    assert_eq!(loader.stats()[0].null_rows, 2);
}

#[test]
fn empty_files_and_row_groups_are_fine() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0-empty.parquet"), &[], 10);
    write_tokens(&root.path().join("a/1-data.parquet"), &numbered_documents(0, 20, 10), 10);
    let mut loader = Loader::new(config(0, 8, 2, &[("a", &root.path().join("a"), 1.0)])).unwrap();
    assert!(loader.nth(20).unwrap().is_ok());
}

#[test]
fn row_groups_of_ten_zero_and_ten_rows() {
    let root = temp_dir();
    let path = root.path().join("a/shard.parquet");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let schema = Arc::new(arrow::datatypes::Schema::new(vec![Field::new("tokens", DataType::List(Arc::new(Field::new("item", DataType::UInt32, false))), true)]));
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(&path).unwrap(), schema.clone(), None).unwrap();
    let documents = numbered_documents(0, 20, 4);
    for part in [&documents[..10], &[][..], &documents[10..]] {
        let rows: Vec<Option<Vec<u32>>> = part.iter().cloned().map(Some).collect();
        let batch = arrow::array::RecordBatch::try_new(schema.clone(), vec![token_lists(&rows)]).unwrap();
        writer.write(&batch).unwrap();
        writer.flush().unwrap();
    }
    writer.close().unwrap();

    let epoch_tokens: usize = documents.iter().map(|document| document.len() + 1).sum();
    let mut loader = Loader::new(config(0, epoch_tokens - 1, 1, &[("a", &root.path().join("a"), 1.0)])).unwrap();
    let batch = loader.next().unwrap().unwrap();
    assert_eq!(batch.doc_starts(0).len(), 20);
    assert_eq!(loader.stats()[0].epochs, 1);
}

#[test]
fn token_ids_of_every_integer_width_are_read() {
    let root = temp_dir();
    let offsets = || OffsetBuffer::from_lengths([2, 1]);
    let item = |data_type| Arc::new(Field::new("item", data_type, false));
    let int32 = ListArray::new(item(DataType::Int32), offsets(), Arc::new(Int32Array::from(vec![1, 2, 3])), None);
    let int64 = LargeListArray::new(item(DataType::Int64), arrow::buffer::OffsetBuffer::from_lengths([2, 1]), Arc::new(Int64Array::from(vec![4, 5, 6])), None);
    let uint16 = ListArray::new(item(DataType::UInt16), offsets(), Arc::new(UInt16Array::from(vec![7, 8, 9])), None);
    write_columns(&root.path().join("a/0.parquet"), vec![("tokens", Arc::new(int32) as ArrayRef)], 10);
    write_columns(&root.path().join("a/1.parquet"), vec![("tokens", Arc::new(int64) as ArrayRef)], 10);
    write_columns(&root.path().join("a/2.parquet"), vec![("tokens", Arc::new(uint16) as ArrayRef)], 10);
    let mut loader = Loader::new(config(0, 14, 1, &[("a", &root.path().join("a"), 1.0)])).unwrap();
    let mut tokens = loader.next().unwrap().unwrap().tokens;
    tokens.sort();
    assert_eq!(tokens, vec![0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

#[test]
fn negative_token_id_names_file_row_group_and_row() {
    let root = temp_dir();
    let values = Int64Array::from(vec![1, 2, 3, -4, 5]);
    let list = LargeListArray::new(Arc::new(Field::new("item", DataType::Int64, false)), OffsetBuffer::from_lengths([1, 1, 1, 2]), Arc::new(values), None);
    write_columns(&root.path().join("a/bad.parquet"), vec![("tokens", Arc::new(list) as ArrayRef)], 2);
    let error = first_batch_error(config(0, 3, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("bad.parquet") && error.contains("row group 1, row 1") && error.contains("-4"), "{error}");
}

#[test]
fn too_large_token_id_is_an_error() {
    let root = temp_dir();
    let list = LargeListArray::new(Arc::new(Field::new("item", DataType::Int64, false)), OffsetBuffer::from_lengths([2]), Arc::new(Int64Array::from(vec![1, 1 << 32])), None);
    write_columns(&root.path().join("a/big.parquet"), vec![("tokens", Arc::new(list) as ArrayRef)], 2);
    let error = first_batch_error(config(0, 3, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("4294967296") && error.contains("row group 0, row 0"), "{error}");
}

fn truncated_domain(root: &Path) -> std::path::PathBuf {
    write_tokens(&root.join("a/0-good.parquet"), &numbered_documents(0, 50, 20), 10);
    write_tokens(&root.join("a/1-cut.parquet"), &numbered_documents(50, 50, 20), 10);
    let cut = root.join("a/1-cut.parquet");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 5]).unwrap();
    root.join("a")
}

#[test]
fn truncated_shard_names_the_file() {
    let root = temp_dir();
    let folder = truncated_domain(root.path());
    let error = build_error(config(0, 8, 1, &[("a", &folder, 1.0)]));
    assert!(error.contains("1-cut.parquet") && error.contains("skip_bad_shards"), "{error}");
}

#[test]
fn truncated_shard_is_skipped_when_asked() {
    let root = temp_dir();
    let folder = truncated_domain(root.path());
    let mut config = config(0, 8, 1, &[("a", &folder, 1.0)]);
    config.skip_bad_shards = true;
    let mut loader = Loader::new(config).unwrap();
    assert!(loader.nth(100).unwrap().is_ok());
    assert_eq!(loader.stats()[0].skipped_shards, 1);
}

#[test]
fn corrupt_data_page_is_an_error_naming_the_file() {
    let root = temp_dir();
    let path = root.path().join("a/flipped.parquet");
    write_tokens(&path, &numbered_documents(0, 200, 50), 50);
    let mut bytes = std::fs::read(&path).unwrap();
    // Flip bytes inside the first column chunk's pages (past the 4-byte magic).
    for byte in &mut bytes[8..200] {
        *byte ^= 0x5a;
    }
    std::fs::write(&path, bytes).unwrap();
    let error = first_batch_error(config(0, 8, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("flipped.parquet"), "{error}");
}

#[test]
fn shards_with_different_schemas() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0.parquet"), &numbered_documents(0, 5, 5), 10);
    common::write_text(&root.path().join("a/1.parquet"), &["text where tokens belong"], 10);
    let error = build_error(config(0, 8, 1, &[("a", &root.path().join("a"), 1.0)]));
    assert!(error.contains("1.parquet") && error.contains("column 'tokens' not found"), "{error}");
}

#[test]
fn bad_weights_are_rejected() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0.parquet"), &numbered_documents(0, 5, 5), 10);
    write_tokens(&root.path().join("b/0.parquet"), &numbered_documents(0, 5, 5), 10);
    let (a, b) = (root.path().join("a"), root.path().join("b"));
    assert!(build_error(config(0, 8, 1, &[("a", &a, -1.0), ("b", &b, 1.0)])).contains("domain 'a' has weight -1"));
    assert!(build_error(config(0, 8, 1, &[("a", &a, f64::NAN), ("b", &b, 1.0)])).contains("domain 'a' has weight NaN"));
    assert!(build_error(config(0, 8, 1, &[("a", &a, 0.0), ("b", &b, 0.0)])).contains("sum to 0"));
}

#[test]
fn domain_with_zero_rows_fails_at_start() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0.parquet"), &numbered_documents(0, 5, 5), 10);
    write_tokens(&root.path().join("b/0.parquet"), &[], 10);
    let error = build_error(config(0, 8, 1, &[("a", &root.path().join("a"), 1.0), ("b", &root.path().join("b"), 1.0)]));
    assert!(error.contains("domain 'b'") && error.contains("zero rows"), "{error}");
}

#[test]
fn domain_of_only_null_rows_fails_instead_of_looping() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0.parquet"), &numbered_documents(0, 5, 5), 10);
    write_columns(&root.path().join("b/0.parquet"), vec![("tokens", token_lists(&[None, Some(vec![]), None]))], 10);
    let error = first_batch_error(config(0, 8, 4, &[("a", &root.path().join("a"), 1.0), ("b", &root.path().join("b"), 1.0)]));
    assert!(error.contains("domain 'b'") && error.contains("no documents"), "{error}");
}

#[test]
fn unknown_tokenizer_is_an_error() {
    let root = temp_dir();
    common::write_text(&root.path().join("a/0.parquet"), &["hello"], 10);
    let text = format!("seq_len = 8\nbatch_size = 1\n[[domains]]\nname = 'a'\npath = '{}'\ntext_column = 'text'\ntokenizer = 'nonesuch'\nweight = 1\n", root.path().join("a").display());
    let config = Config::from_toml_str(&text, Path::new("/")).unwrap();
    let error = build_error(config);
    assert!(error.contains("tokenizer 'nonesuch'"), "{error}");
}

#[test]
fn pre_tokenized_domain_needs_eos_token() {
    let root = temp_dir();
    write_tokens(&root.path().join("a/0.parquet"), &numbered_documents(0, 5, 5), 10);
    let text = format!("seq_len = 8\nbatch_size = 1\n[[domains]]\nname = 'a'\npath = '{}'\nweight = 1\n", root.path().join("a").display());
    let error = build_error(Config::from_toml_str(&text, Path::new("/")).unwrap());
    assert!(error.contains("domain 'a'") && error.contains("eos_token"), "{error}");
}
