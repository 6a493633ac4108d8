//! Inspection of an export folder (with `manifest.json`) or of a domain folder of parquet shards.
//!
//! Rows and row groups come from each shard's footer. Tokens are counted from the list offsets of
//! the token column, which is the only column read.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ProjectionMask;
use serde::Serialize;

use super::manifest::{Manifest, MixtureVersion, MANIFEST_NAME};
use crate::error::{Error, Result};
use crate::pipeline::DomainStats;

/// What one parquet shard holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ShardSummary {
    /// The file name.
    pub file: String,
    /// The file's size in bytes.
    pub bytes: u64,
    /// Rows, from the footer.
    pub rows: u64,
    /// Row groups, from the footer.
    pub row_groups: usize,
    /// Tokens in the token column, when the shard has one that is a list of integers.
    pub tokens: Option<u64>,
    /// Whether rows and tokens equal the manifest's entry; `None` outside an export.
    pub matches_manifest: Option<bool>,
}

/// An export folder: its manifest's summary and what its shards hold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExportSummary {
    /// The folder.
    pub path: PathBuf,
    /// The chameleon version that wrote it.
    pub version: String,
    /// Batches exported.
    pub steps: u64,
    /// Rows per batch.
    pub batch_size: usize,
    /// Tokens a sequence feeds the model; rows hold `seq_len + 1`.
    pub seq_len: usize,
    /// The stream digest.
    pub digest: String,
    /// Tokens, according to the manifest.
    pub tokens: u64,
    /// The mixtures the batches were drawn from.
    pub mixture_versions: Vec<MixtureVersion>,
    /// Per-domain counts.
    pub domains: Vec<DomainStats>,
    /// The shards as read from disk, in manifest order.
    pub shards: Vec<ShardSummary>,
    /// The first shard's columns, as `name: type`.
    pub schema: Vec<String>,
}

/// A folder (or a single file) of parquet shards.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DomainSummary {
    /// The folder or file.
    pub path: PathBuf,
    /// The column whose tokens are counted.
    pub token_column: String,
    /// Rows in all shards.
    pub rows: u64,
    /// Row groups in all shards.
    pub row_groups: usize,
    /// Tokens in all shards, when every shard has the token column as a list of integers.
    pub tokens: Option<u64>,
    /// The shards, sorted by name.
    pub shards: Vec<ShardSummary>,
    /// The first shard's columns, as `name: type`.
    pub schema: Vec<String>,
}

/// What [`inspect`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Inspection {
    /// A folder with `manifest.json`.
    Export(ExportSummary),
    /// A folder or file of parquet shards.
    Domain(DomainSummary),
}

/// Summarises an export folder, a domain folder or a single parquet file. `token_column` names
/// the column whose tokens a domain's shards hold (an export's is always `tokens`).
///
/// # Errors
///
/// [`Error::Io`] when a file cannot be read, [`Error::Input`] when the manifest or a shard is
/// invalid, or when the folder holds neither a manifest nor parquet files.
pub fn inspect(path: &Path, token_column: &str) -> Result<Inspection> {
    let manifest_path = path.join(MANIFEST_NAME);
    if path.is_dir() && manifest_path.is_file() {
        return inspect_export(path, &manifest_path).map(Inspection::Export);
    }
    let files = parquet_files(path)?;
    let mut shards = Vec::with_capacity(files.len());
    let mut schema = Vec::new();
    for file in &files {
        let (shard, columns) = summarise_shard(file, token_column)?;
        if schema.is_empty() {
            schema = columns;
        }
        shards.push(shard);
    }
    let tokens = shards.iter().map(|shard| shard.tokens).sum::<Option<u64>>();
    Ok(Inspection::Domain(DomainSummary {
        path: path.to_path_buf(),
        token_column: token_column.to_string(),
        rows: shards.iter().map(|shard| shard.rows).sum(),
        row_groups: shards.iter().map(|shard| shard.row_groups).sum(),
        tokens,
        shards,
        schema,
    }))
}

fn inspect_export(path: &Path, manifest_path: &Path) -> Result<ExportSummary> {
    let text = std::fs::read_to_string(manifest_path).map_err(|source| Error::io("cannot read manifest", manifest_path, source))?;
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|error| Error::Input { path: manifest_path.to_path_buf(), message: format!("not a chameleon export manifest: {error}") })?;

    let mut shards = Vec::with_capacity(manifest.shards.len());
    let mut schema = Vec::new();
    for entry in &manifest.shards {
        let (mut shard, columns) = summarise_shard(&path.join(&entry.file), "tokens")?;
        shard.matches_manifest = Some(shard.rows == entry.rows && shard.tokens == Some(entry.tokens));
        if schema.is_empty() {
            schema = columns;
        }
        shards.push(shard);
    }
    Ok(ExportSummary {
        path: path.to_path_buf(),
        version: manifest.version,
        steps: manifest.steps,
        batch_size: manifest.batch_size,
        seq_len: manifest.seq_len,
        digest: manifest.digest,
        tokens: manifest.tokens,
        mixture_versions: manifest.mixture_versions,
        domains: manifest.domains,
        shards,
        schema,
    })
}

/// The non-hidden `.parquet` files of a folder, sorted, or the file itself.
fn parquet_files(path: &Path) -> Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let entries = std::fs::read_dir(path).map_err(|source| Error::io("cannot list folder", path, source))?;
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|source| Error::io("cannot list folder", path, source))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') && name.ends_with(".parquet") && entry.path().is_file() {
            files.push(entry.path());
        }
    }
    if files.is_empty() {
        return Err(Error::Input { path: path.to_path_buf(), message: format!("no {MANIFEST_NAME} and no .parquet files found; pass an export folder, a domain folder or a parquet file") });
    }
    files.sort();
    Ok(files)
}

/// Reads a shard's footer and counts the tokens of `token_column`; also returns its columns.
fn summarise_shard(path: &Path, token_column: &str) -> Result<(ShardSummary, Vec<String>)> {
    let invalid = |error: &dyn std::fmt::Display| Error::Input { path: path.to_path_buf(), message: format!("not a readable parquet file: {error}") };
    let file = File::open(path).map_err(|source| Error::io("cannot open shard", path, source))?;
    let bytes = file.metadata().map_err(|source| Error::io("cannot read shard", path, source))?.len();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| invalid(&error))?;
    let metadata = builder.metadata().clone();
    let arrow_schema = builder.schema().clone();
    let columns: Vec<String> = arrow_schema.fields().iter().map(|field| format!("{}: {}", field.name(), field.data_type())).collect();

    let token_index = arrow_schema.fields().iter().position(|field| field.name() == token_column && is_token_list(field.data_type()));
    let tokens = match token_index {
        None => None,
        Some(index) => {
            let mask = ProjectionMask::roots(builder.parquet_schema(), [index]);
            let reader = builder.with_projection(mask).build().map_err(|error| invalid(&error))?;
            let mut tokens = 0u64;
            for batch in reader {
                let batch = batch.map_err(|error| invalid(&error))?;
                tokens += list_values(batch.column(0).as_ref());
            }
            Some(tokens)
        }
    };

    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    let shard = ShardSummary {
        file: name,
        bytes,
        rows: metadata.file_metadata().num_rows().max(0) as u64,
        row_groups: metadata.num_row_groups(),
        tokens,
        matches_manifest: None,
    };
    Ok((shard, columns))
}

fn is_token_list(data_type: &DataType) -> bool {
    match data_type {
        DataType::List(item) | DataType::LargeList(item) => item.data_type().is_integer(),
        _ => false,
    }
}

/// Values covered by a list column's offsets.
fn list_values(column: &dyn Array) -> u64 {
    match column.data_type() {
        DataType::List(_) => {
            let offsets = column.as_list::<i32>().value_offsets();
            (offsets[offsets.len() - 1] - offsets[0]) as u64
        }
        DataType::LargeList(_) => {
            let offsets = column.as_list::<i64>().value_offsets();
            (offsets[offsets.len() - 1] - offsets[0]) as u64
        }
        _ => 0,
    }
}
