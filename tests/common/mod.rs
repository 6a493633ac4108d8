//! Helpers shared by the integration tests: parquet shards written with arrow-rs, configurations,
//! and a timeout guard for tests that must not hang.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arrow::array::{ArrayRef, ListArray, RecordBatch, StringArray, UInt32Array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema};
use chameleon::Config;
use parquet::arrow::ArrowWriter;
use parquet::file::properties::WriterProperties;

/// Writes `columns` as one parquet shard with row groups of `row_group_rows` rows.
pub fn write_columns(path: &Path, columns: Vec<(&str, ArrayRef)>, row_group_rows: usize) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let fields: Vec<Field> = columns.iter().map(|(name, array)| Field::new(*name, array.data_type().clone(), true)).collect();
    let schema = Arc::new(Schema::new(fields));
    let batch = RecordBatch::try_new(schema.clone(), columns.into_iter().map(|(_, array)| array).collect()).unwrap();
    let properties = WriterProperties::builder().set_max_row_group_row_count(Some(row_group_rows.max(1))).build();
    let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(properties)).unwrap();
    if batch.num_rows() > 0 {
        writer.write(&batch).unwrap();
    }
    writer.close().unwrap();
}

/// A `list<uint32>` column; `None` rows are null.
pub fn token_lists(documents: &[Option<Vec<u32>>]) -> ArrayRef {
    let values: Vec<u32> = documents.iter().flatten().flatten().copied().collect();
    let offsets = OffsetBuffer::from_lengths(documents.iter().map(|document| document.as_ref().map_or(0, Vec::len)));
    let nulls = documents.iter().any(Option::is_none).then(|| NullBuffer::from_iter(documents.iter().map(Option::is_some)));
    Arc::new(ListArray::new(Arc::new(Field::new("item", DataType::UInt32, false)), offsets, Arc::new(UInt32Array::from(values)), nulls))
}

/// Writes a token shard of the given documents.
pub fn write_tokens(path: &Path, documents: &[Vec<u32>], row_group_rows: usize) {
    let documents: Vec<Option<Vec<u32>>> = documents.iter().cloned().map(Some).collect();
    write_columns(path, vec![("tokens", token_lists(&documents))], row_group_rows);
}

/// Writes a text shard.
pub fn write_text(path: &Path, texts: &[&str], row_group_rows: usize) {
    write_columns(path, vec![("text", Arc::new(StringArray::from(texts.to_vec())) as ArrayRef)], row_group_rows);
}

/// Documents `first..first + count` of a domain: document `d` holds tokens `d * 1000 + 1 ..`,
/// with a length from 1 to `max_len`, so every token says which document it came from.
pub fn numbered_documents(first: u32, count: u32, max_len: u32) -> Vec<Vec<u32>> {
    (first..first + count).map(|d| (1..=(d * 7919 % max_len) + 1).map(|t| d * 1000 + t).collect()).collect()
}

/// A configuration over `domains` (name, folder, weight), with end-of-document token 0.
pub fn config(seed: u64, seq_len: usize, batch_size: usize, domains: &[(&str, &Path, f64)]) -> Config {
    let mut text = format!("seed = {seed}\nseq_len = {seq_len}\nbatch_size = {batch_size}\neos_token = 0\n");
    for (name, path, weight) in domains {
        // TOML spells the special floats in lowercase.
        let weight = if weight.is_nan() { "nan".to_string() } else { format!("{weight:e}").to_lowercase() };
        text.push_str(&format!("[[domains]]\nname = '{name}'\npath = '{}'\nweight = {weight}\n", path.display()));
    }
    Config::from_toml_str(&text, Path::new("/")).unwrap()
}

/// Runs `work` on a thread and fails the test if it takes longer than `limit`.
pub fn within<T: Send + 'static>(limit: Duration, work: impl FnOnce() -> T + Send + 'static) -> T {
    let (sender, receiver) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = sender.send(work());
    });
    match receiver.recv_timeout(limit) {
        Ok(value) => value,
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => panic!("the test did not finish within {limit:?}: something hangs"),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => panic!("the test body panicked; see its message above"),
    }
}

/// A temporary folder that lives as long as the value.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

/// The committed fixtures folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}
