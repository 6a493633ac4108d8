//! Export shards: the parquet schema, the writer settings, and files that appear under their final
//! name only when complete.
//!
//! Every shard is written under a hidden temporary name in the output folder, hashed with SHA-256
//! as its bytes are written, synced to disk and then renamed into place. The writer settings never
//! change, so the same batches always give the same bytes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{ArrayRef, DictionaryArray, Int32Array, ListArray, RecordBatch, StringArray, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Int32Type, Schema, SchemaRef};
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use sha2::{Digest, Sha256};

use crate::batch::{to_hex, Batch};
use crate::error::{Error, Result};

/// The maximum tokens in a row group; rows per row group are this divided by the row length.
const ROW_GROUP_TOKENS: usize = 4 << 20;

/// The zstd level of every shard.
const ZSTD_LEVEL: i32 = 3;

/// The arrow schema of an export shard: `tokens: list<uint32>`, `domain: dictionary<int32, utf8>`
/// and `doc_starts: list<int32>`.
pub fn shard_schema() -> SchemaRef {
    let tokens = DataType::List(Arc::new(Field::new("item", DataType::UInt32, false)));
    let domain = DataType::Dictionary(Box::new(DataType::Int32), Box::new(DataType::Utf8));
    let doc_starts = DataType::List(Arc::new(Field::new("item", DataType::Int32, false)));
    Arc::new(Schema::new(vec![Field::new("tokens", tokens, false), Field::new("domain", domain, false), Field::new("doc_starts", doc_starts, false)]))
}

/// Rows per row group for rows of `row_len` tokens: about 4 Mi tokens per row group, at least 1 row.
pub fn row_group_rows(row_len: usize) -> usize {
    (ROW_GROUP_TOKENS / row_len.max(1)).max(1)
}

/// Builds the writer settings of every shard: zstd, fixed row groups, no statistics. They depend
/// only on the row length, so that the same batches always give the same bytes.
fn writer_properties(row_len: usize) -> Result<WriterProperties> {
    let level = ZstdLevel::try_new(ZSTD_LEVEL).map_err(|error| Error::Output { path: PathBuf::new(), message: format!("invalid zstd level: {error}") })?;
    Ok(WriterProperties::builder()
        .set_compression(Compression::ZSTD(level))
        .set_max_row_group_row_count(Some(row_group_rows(row_len)))
        .set_statistics_enabled(EnabledStatistics::None)
        .build())
}

/// Turns one batch into a record batch of the shard schema. `domain_names` are all the domain
/// names in id order; they form the dictionary of the `domain` column.
///
/// # Errors
///
/// [`Error::Output`] when a row is too long for `int32` document starts.
pub fn batch_to_record_batch(batch: &Batch, domain_names: &[String], schema: &SchemaRef) -> Result<RecordBatch> {
    let row_len = batch.seq_len + 1;
    let invalid = |message: String| Error::Output { path: PathBuf::new(), message };
    if i32::try_from(row_len).is_err() {
        return Err(invalid(format!("seq_len {} is too long for int32 document starts; use a seq_len below {}", batch.seq_len, i32::MAX)));
    }

    let token_offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(row_len, batch.rows()));
    let token_values = Arc::new(UInt32Array::from(batch.tokens.clone()));
    let tokens = ListArray::try_new(Arc::new(Field::new("item", DataType::UInt32, false)), token_offsets, token_values, None)
        .map_err(|error| invalid(format!("cannot build the tokens column: {error}")))?;

    let keys: Vec<i32> = batch.domains.iter().map(|&id| id as i32).collect();
    let names = Arc::new(StringArray::from_iter_values(domain_names));
    let domain = DictionaryArray::<Int32Type>::try_new(Int32Array::from(keys), names)
        .map_err(|error| invalid(format!("cannot build the domain column: {error}")))?;

    let starts: Vec<i32> = (0..batch.rows()).flat_map(|row| batch.doc_starts(row).iter().map(|&start| start as i32)).collect();
    let start_offsets = OffsetBuffer::from_lengths((0..batch.rows()).map(|row| batch.doc_starts(row).len()));
    let doc_starts = ListArray::try_new(Arc::new(Field::new("item", DataType::Int32, false)), start_offsets, Arc::new(Int32Array::from(starts)), None)
        .map_err(|error| invalid(format!("cannot build the doc_starts column: {error}")))?;

    let columns: Vec<ArrayRef> = vec![Arc::new(tokens), Arc::new(domain), Arc::new(doc_starts)];
    RecordBatch::try_new(Arc::clone(schema), columns).map_err(|error| invalid(format!("cannot assemble the shard batch: {error}")))
}

/// A [`Write`] that passes bytes on and hashes them with SHA-256.
struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The counts and hash of a finished shard.
#[derive(Debug, Clone)]
pub struct WrittenShard {
    /// Rows (sequences) written.
    pub rows: u64,
    /// Tokens written.
    pub tokens: u64,
    /// The file's size in bytes.
    pub bytes: u64,
    /// SHA-256 of the file, as 64 lowercase hex digits.
    pub sha256: String,
}

/// A shard being written under its temporary name.
pub struct ShardWriter {
    writer: ArrowWriter<HashingWriter<BufWriter<File>>>,
    schema: SchemaRef,
    temporary: PathBuf,
    path: PathBuf,
    rows: u64,
    tokens: u64,
}

impl ShardWriter {
    /// Creates the temporary file of the shard `path` (a hidden name beside it).
    ///
    /// # Errors
    ///
    /// [`Error::Output`] when the file cannot be created.
    pub fn create(path: &Path, row_len: usize) -> Result<ShardWriter> {
        let temporary = temporary_path(path);
        let file = File::create(&temporary).map_err(|source| write_error("cannot create shard", &temporary, &source))?;
        let sink = HashingWriter { inner: BufWriter::with_capacity(1 << 20, file), hasher: Sha256::new(), bytes: 0 };
        let schema = shard_schema();
        let writer = ArrowWriter::try_new(sink, Arc::clone(&schema), Some(writer_properties(row_len)?))
            .map_err(|error| parquet_write_error(&temporary, &error))?;
        Ok(ShardWriter { writer, schema, temporary, path: path.to_path_buf(), rows: 0, tokens: 0 })
    }

    /// Appends one batch.
    ///
    /// # Errors
    ///
    /// [`Error::Output`] when the batch cannot be encoded or written.
    pub fn write(&mut self, batch: &Batch, domain_names: &[String]) -> Result<()> {
        let record_batch = batch_to_record_batch(batch, domain_names, &self.schema).map_err(|error| match error {
            Error::Output { message, .. } => Error::Output { path: self.path.clone(), message },
            other => other,
        })?;
        self.writer.write(&record_batch).map_err(|error| parquet_write_error(&self.temporary, &error))?;
        self.rows += batch.rows() as u64;
        self.tokens += batch.tokens.len() as u64;
        Ok(())
    }

    /// Writes the footer, syncs the file, renames it to its final name and syncs the folder.
    ///
    /// # Errors
    ///
    /// [`Error::Output`] when a write, the sync or the rename fails. The temporary file is then
    /// left for the next run to remove, and nothing appears under the final name.
    pub fn finish(self) -> Result<WrittenShard> {
        let temporary = self.temporary;
        let mut sink = self.writer.into_inner().map_err(|error| parquet_write_error(&temporary, &error))?;
        sink.flush().map_err(|source| write_error("cannot write shard", &temporary, &source))?;
        let file = sink.inner.into_inner().map_err(|error| write_error("cannot write shard", &temporary, error.error()))?;
        file.sync_all().map_err(|source| write_error("cannot sync shard to disk", &temporary, &source))?;
        drop(file);

        std::fs::rename(&temporary, &self.path).map_err(|source| write_error("cannot rename finished shard into place", &self.path, &source))?;
        sync_folder(&self.path)?;
        Ok(WrittenShard { rows: self.rows, tokens: self.tokens, bytes: sink.bytes, sha256: to_hex(&sink.hasher.finalize()) })
    }
}

/// The hidden temporary name of `path`, in the same folder: `.<name>.tmp`.
pub fn temporary_path(path: &Path) -> PathBuf {
    let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.tmp"))
}

/// Writes `bytes` to `path` atomically: to the temporary name, synced, then renamed over `path`,
/// so that `path` holds either its old content or the new one.
///
/// # Errors
///
/// [`Error::Output`] when a write, the sync or the rename fails.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let temporary = temporary_path(path);
    let mut file = File::create(&temporary).map_err(|source| write_error("cannot create", &temporary, &source))?;
    file.write_all(bytes).map_err(|source| write_error("cannot write", &temporary, &source))?;
    file.sync_all().map_err(|source| write_error("cannot sync to disk", &temporary, &source))?;
    drop(file);
    std::fs::rename(&temporary, path).map_err(|source| write_error("cannot rename into place", path, &source))?;
    sync_folder(path)
}

/// SHA-256 of a file, as 64 lowercase hex digits.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = File::open(path).map_err(|source| Error::io("cannot read shard", path, source))?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).map_err(|source| Error::io("cannot read shard", path, source))?;
    Ok(to_hex(&hasher.finalize()))
}

/// Syncs the folder holding `path`, so that a rename in it survives a power loss.
fn sync_folder(path: &Path) -> Result<()> {
    let folder = path.parent().filter(|parent| !parent.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let directory = File::open(folder).map_err(|source| write_error("cannot open output folder", folder, &source))?;
    directory.sync_all().map_err(|source| write_error("cannot sync output folder", folder, &source))
}

/// An [`Error::Output`] for a failed write, with what to do next.
pub(crate) fn write_error(action: &str, path: &Path, source: &std::io::Error) -> Error {
    let hint = match source.kind() {
        std::io::ErrorKind::StorageFull => "; free disk space and rerun the same command to continue, or choose another --output",
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => "; choose a writable folder for --output",
        _ => "; check the folder and rerun the same command to continue",
    };
    Error::Output { path: path.to_path_buf(), message: format!("{action}: {source}{hint}") }
}

/// An [`Error::Output`] for a parquet writer error, which wraps the I/O error when there is one.
fn parquet_write_error(path: &Path, error: &parquet::errors::ParquetError) -> Error {
    if let parquet::errors::ParquetError::External(inner) = error {
        if let Some(source) = inner.downcast_ref::<std::io::Error>() {
            return write_error("cannot write shard", path, source);
        }
    }
    Error::Output { path: path.to_path_buf(), message: format!("cannot write shard: {error}") }
}
