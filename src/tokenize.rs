//! Pre-tokenization: text parquet or JSONL files into token shards.
//!
//! Each input file becomes one output shard with the column `tokens: list<uint32>` first and every
//! other input column after it, unchanged; the text column is left out. A folder is walked
//! recursively and its layout kept, so `corpus/<domain>/*.parquet` becomes
//! `out/<domain>/*.parquet`. Documents are tokenized in parallel on the rayon pool (all cores by
//! default). A shard is written under a hidden temporary name, synced, and renamed into place, so
//! no half-written shard is ever visible under its final name. A null text becomes a null token
//! list, which the loader skips and counts.

use std::fs::File;
use std::io::{BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, ListArray, RecordBatch, UInt32Array};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::metadata::KeyValue;
use parquet::file::properties::WriterProperties;
use rayon::prelude::*;

use crate::error::{Error, Result};
use crate::source::Tokenizer;

/// Rows per record batch read, and per row group written.
const ROWS_PER_BATCH: usize = 1024;

/// The key of the parquet footer metadata entry that names the tokenizer a shard was written with.
pub const TOKENIZER_KEY: &str = "chameleon.tokenizer";

/// What to tokenize and how.
#[derive(Debug, Clone)]
pub struct TokenizeOptions {
    /// The text column. Default: `text`.
    pub text_column: String,
}

impl Default for TokenizeOptions {
    fn default() -> Self {
        TokenizeOptions { text_column: "text".to_string() }
    }
}

/// Counts of one tokenize run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct TokenizeReport {
    /// Shards written.
    pub files: u64,
    /// Rows written.
    pub rows: u64,
    /// Tokens written.
    pub tokens: u64,
    /// Rows whose text was null, written as null token lists.
    pub null_rows: u64,
}

/// One input file and the shard it becomes.
#[derive(Debug, Clone)]
pub struct TokenizeJob {
    /// The parquet or JSONL input.
    pub input: PathBuf,
    /// The shard to write.
    pub output: PathBuf,
}

/// Lists the files under `input` (a file or a folder, walked recursively) and the shards they
/// become under `output`. Parquet (`.parquet`) and JSONL (`.jsonl`, `.json`, `.ndjson`) files are
/// taken; hidden files are left out.
///
/// # Errors
///
/// [`Error::Io`] when a folder cannot be listed, [`Error::Input`] when no input file is found.
pub fn plan(input: &Path, output: &Path) -> Result<Vec<TokenizeJob>> {
    if !input.exists() {
        return Err(Error::Input { path: input.to_path_buf(), message: "not found; pass a parquet or JSONL file, or a folder of them".into() });
    }
    check_apart(input, output)?;
    let mut jobs = Vec::new();
    if input.is_file() {
        let name = input.file_name().map(PathBuf::from).unwrap_or_else(|| PathBuf::from("input"));
        let shard = output.join(name).with_extension("parquet");
        check_apart(input, &shard)?;
        jobs.push(TokenizeJob { input: input.to_path_buf(), output: shard });
    } else {
        walk(input, input, output, &mut jobs)?;
    }
    if jobs.is_empty() {
        return Err(Error::Input { path: input.to_path_buf(), message: "no .parquet or .jsonl files found".into() });
    }
    jobs.sort_by(|a, b| a.input.cmp(&b.input));
    Ok(jobs)
}

/// Rejects an output folder that is the input folder or lies inside it, because the shards would
/// replace their own input or be read as input by the next run. A single input file is rejected
/// only when its shard would replace it.
fn check_apart(input: &Path, output: &Path) -> Result<()> {
    let input = absolute(input);
    let output = absolute(output);
    let clash = if input.is_file() { output == input } else { output.starts_with(&input) };
    if !clash {
        return Ok(());
    }
    let message = format!("the output {} is the input or inside it, so the token shards would replace or mix with the text; choose an output folder outside the input", output.display());
    Err(Error::Input { path: input, message })
}

/// Resolves `path` through its nearest existing ancestor, so a folder not yet created compares
/// equal to the same folder spelled through a symbolic link or `..`.
fn absolute(path: &Path) -> PathBuf {
    let mut missing = Vec::new();
    let mut existing = path;
    loop {
        if let Ok(resolved) = existing.canonicalize() {
            return missing.iter().rev().fold(resolved, |resolved, part| resolved.join(part));
        }
        match (existing.parent(), existing.file_name()) {
            (Some(parent), Some(name)) => {
                missing.push(name.to_os_string());
                existing = if parent.as_os_str().is_empty() { Path::new(".") } else { parent };
            }
            _ => return path.to_path_buf(),
        }
    }
}

fn walk(root: &Path, folder: &Path, output: &Path, jobs: &mut Vec<TokenizeJob>) -> Result<()> {
    let entries = std::fs::read_dir(folder).map_err(|source| Error::io("cannot list input folder", folder, source))?;
    for entry in entries {
        let entry = entry.map_err(|source| Error::io("cannot list input folder", folder, source))?;
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(root, &path, output, jobs)?;
        } else if input_kind(&path).is_some() {
            let relative = path.strip_prefix(root).expect("walk only visits paths under root");
            jobs.push(TokenizeJob { input: path.clone(), output: output.join(relative).with_extension("parquet") });
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum InputKind {
    Parquet,
    JsonLines,
}

fn input_kind(path: &Path) -> Option<InputKind> {
    match path.extension()?.to_str()? {
        "parquet" => Some(InputKind::Parquet),
        "jsonl" | "json" | "ndjson" => Some(InputKind::JsonLines),
        _ => None,
    }
}

/// Tokenizes one file into its shard, calling `on_rows` with the rows done after each batch.
///
/// # Errors
///
/// [`Error::Io`] when a file cannot be read or written. [`Error::Input`] when the input is
/// malformed or not valid parquet, or its text column is missing or not a string column.
/// [`Error::Output`] when the shard cannot be encoded, and [`Error::Tokenizer`] when tokenization
/// fails.
pub fn tokenize_file(job: &TokenizeJob, tokenizer: &Tokenizer, options: &TokenizeOptions, on_rows: &(dyn Fn(u64) + Sync)) -> Result<TokenizeReport> {
    let batches: Box<dyn Iterator<Item = Result<RecordBatch>>> = match input_kind(&job.input) {
        Some(InputKind::Parquet) => Box::new(read_parquet(&job.input)?),
        Some(InputKind::JsonLines) => Box::new(read_json_lines(&job.input)?),
        None => return Err(Error::Input { path: job.input.clone(), message: "expected a .parquet or .jsonl file".into() }),
    };

    let folder = job.output.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|source| Error::io("cannot create output folder", folder, source))?;
    let file_name = job.output.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    // The process id keeps two runs writing the same output from sharing a temporary file.
    let temporary = folder.join(format!(".{file_name}.{}.tmp", std::process::id()));

    let result = write_shard(batches, &temporary, job, tokenizer, options, on_rows);
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    let report = result?;
    std::fs::rename(&temporary, &job.output).map_err(|source| Error::io("cannot rename finished shard into place", &job.output, source))?;
    if let Ok(directory) = File::open(folder) {
        let _ = directory.sync_all();
    }
    Ok(report)
}

fn write_shard(
    batches: Box<dyn Iterator<Item = Result<RecordBatch>> + '_>,
    temporary: &Path,
    job: &TokenizeJob,
    tokenizer: &Tokenizer,
    options: &TokenizeOptions,
    on_rows: &(dyn Fn(u64) + Sync),
) -> Result<TokenizeReport> {
    let file = File::create(temporary).map_err(|source| Error::io("cannot create temporary shard", temporary, source))?;
    let properties = WriterProperties::builder()
        .set_key_value_metadata(Some(vec![KeyValue::new(TOKENIZER_KEY.to_string(), tokenizer.name().to_string())]))
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .set_max_row_group_row_count(Some(ROWS_PER_BATCH))
        .build();
    let mut writer: Option<ArrowWriter<File>> = None;
    let mut report = TokenizeReport { files: 1, ..TokenizeReport::default() };
    let parquet_error = |source: parquet::errors::ParquetError| Error::Output { path: job.output.clone(), message: format!("cannot write the token shard: {source}") };

    for batch in batches {
        let batch = batch?;
        let tokenized = tokenize_batch(&batch, tokenizer, options, &job.input, &mut report)?;
        if writer.is_none() {
            let opened = ArrowWriter::try_new(file.try_clone().map_err(|source| Error::io("cannot write shard", temporary, source))?, tokenized.schema(), Some(properties.clone()));
            writer = Some(opened.map_err(parquet_error)?);
        }
        writer.as_mut().expect("opened above").write(&tokenized).map_err(parquet_error)?;
        on_rows(batch.num_rows() as u64);
    }

    let Some(writer) = writer else {
        return Err(Error::Input { path: job.input.clone(), message: "the file has no rows and no schema to write".into() });
    };
    let mut file = writer.into_inner().map_err(parquet_error)?;
    file.flush().map_err(|source| Error::io("cannot write shard", temporary, source))?;
    file.sync_all().map_err(|source| Error::io("cannot sync shard to disk", temporary, source))?;
    Ok(report)
}

fn read_parquet(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>>> {
    let file = File::open(path).map_err(|source| Error::io("cannot open input", path, source))?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|error| invalid_parquet(path, &error))?
        .with_batch_size(ROWS_PER_BATCH)
        .build()
        .map_err(|error| invalid_parquet(path, &error))?;
    let path = path.to_path_buf();
    Ok(reader.map(move |batch| batch.map_err(|error| invalid_parquet(&path, &error))))
}

fn invalid_parquet(path: &Path, error: &dyn std::fmt::Display) -> Error {
    Error::Input {
        path: path.to_path_buf(),
        message: format!("the file is not valid parquet, or is truncated or corrupt ({error}); rewrite it or leave it out of --input"),
    }
}

fn read_json_lines(path: &Path) -> Result<impl Iterator<Item = Result<RecordBatch>>> {
    let open = || File::open(path).map(BufReader::new).map_err(|source| Error::io("cannot open input", path, source));
    let input_error = |error: arrow::error::ArrowError| Error::Input { path: path.to_path_buf(), message: format!("invalid JSON lines: {error}") };
    let (schema, _) = arrow::json::reader::infer_json_schema_from_seekable(open()?, None).map_err(input_error)?;
    let reader = arrow::json::ReaderBuilder::new(Arc::new(schema)).with_batch_size(ROWS_PER_BATCH).build(open()?).map_err(input_error)?;
    let path = path.to_path_buf();
    Ok(reader.map(move |batch| batch.map_err(|error| Error::Input { path: path.clone(), message: format!("invalid JSON lines: {error}") })))
}

/// Replaces the text column of `batch` by a `tokens` column in front.
fn tokenize_batch(batch: &RecordBatch, tokenizer: &Tokenizer, options: &TokenizeOptions, input: &Path, report: &mut TokenizeReport) -> Result<RecordBatch> {
    let schema = batch.schema();
    let Some((text_index, _)) = schema.column_with_name(&options.text_column) else {
        let found: Vec<_> = schema.fields().iter().map(|field| field.name().as_str()).collect();
        return Err(Error::Input {
            path: input.to_path_buf(),
            message: format!("text column '{}' not found; the file has columns [{}]; pass --text-column", options.text_column, found.join(", ")),
        });
    };
    let texts = string_values(batch.column(text_index)).ok_or_else(|| Error::Input {
        path: input.to_path_buf(),
        message: format!("column '{}' is {}, expected a string column; pass the text column with --text-column", options.text_column, batch.column(text_index).data_type()),
    })?;

    let documents: Vec<Option<Vec<u32>>> = texts
        .par_iter()
        .map(|text| {
            text.map(|text| {
                let mut ids = Vec::new();
                tokenizer.encode_into(text, &mut ids).map(|()| ids)
            })
            .transpose()
        })
        .collect::<Result<_>>()?;
    let tokens = token_list(&documents);
    report.rows += documents.len() as u64;
    report.tokens += tokens.values().len() as u64;
    report.null_rows += tokens.null_count() as u64;

    let mut fields = vec![Arc::new(Field::new("tokens", tokens.data_type().clone(), true))];
    let mut columns: Vec<ArrayRef> = vec![Arc::new(tokens)];
    for (index, field) in schema.fields().iter().enumerate() {
        if index != text_index {
            fields.push(Arc::clone(field));
            columns.push(Arc::clone(batch.column(index)));
        }
    }
    let schema: SchemaRef = Arc::new(Schema::new(fields));
    RecordBatch::try_new(schema, columns)
        .map_err(|error| Error::Input { path: input.to_path_buf(), message: format!("cannot assemble the token batch: {error}") })
}

fn string_values(column: &ArrayRef) -> Option<Vec<Option<&str>>> {
    match column.data_type() {
        DataType::Utf8 => Some(column.as_string::<i32>().iter().collect()),
        DataType::LargeUtf8 => Some(column.as_string::<i64>().iter().collect()),
        DataType::Utf8View => Some(column.as_string_view().iter().collect()),
        _ => None,
    }
}

/// Builds a `list<uint32>` column; `None` documents become null lists.
fn token_list(documents: &[Option<Vec<u32>>]) -> ListArray {
    let values: Vec<u32> = documents.iter().flatten().flatten().copied().collect();
    let lengths = documents.iter().map(|document| document.as_ref().map_or(0, Vec::len));
    let offsets = OffsetBuffer::from_lengths(lengths);
    let nulls = documents.iter().any(Option::is_none).then(|| NullBuffer::from_iter(documents.iter().map(Option::is_some)));
    let field = Arc::new(Field::new("item", DataType::UInt32, false));
    ListArray::new(field, offsets, Arc::new(UInt32Array::from(values)), nulls)
}

/// Rows in all inputs: from parquet footers, and by counting lines of JSONL files. Used to size a
/// progress bar.
pub fn count_rows(jobs: &[TokenizeJob]) -> u64 {
    jobs.iter()
        .map(|job| match input_kind(&job.input) {
            Some(InputKind::Parquet) => File::open(&job.input)
                .ok()
                .and_then(|file| ParquetRecordBatchReaderBuilder::try_new(file).ok())
                .map_or(0, |builder| builder.metadata().file_metadata().num_rows().max(0) as u64),
            Some(InputKind::JsonLines) => std::fs::read(&job.input).map_or(0, |bytes| bytes.iter().filter(|&&byte| byte == b'\n').count() as u64),
            None => 0,
        })
        .sum()
}
