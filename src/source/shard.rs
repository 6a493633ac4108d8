//! Shards: memory-mapped parquet files, read one row group at a time, one column only.

use std::fs::File;
use std::path::{Path, PathBuf};

use arrow::datatypes::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;

use crate::error::{Error, Result};

/// Upper bound on the bytes of one decoded record batch, so that a row group of very long rows
/// is read in several bounded pieces (and string offsets never approach 2^31).
const RECORD_BATCH_BYTES: usize = 8 << 20;

/// Upper bound on the rows of one decoded record batch.
const RECORD_BATCH_ROWS: usize = 8192;

/// One parquet file of a domain, memory-mapped, with its footer parsed.
#[derive(Debug, Clone)]
pub struct Shard {
    /// The file.
    pub path: PathBuf,
    bytes: Bytes,
    metadata: ArrowReaderMetadata,
    /// Index of the document column among the file's top-level columns.
    column_root: usize,
}

impl Shard {
    /// Maps `path` into memory and parses its footer.
    ///
    /// The map is read-only. NOTE: a file that another process truncates while it is mapped can
    /// make reads fault (SIGBUS); shards are expected to be immutable once written, as the
    /// tokenize and export commands guarantee by renaming complete files into place.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] when the file cannot be opened or mapped, [`Error::Parquet`] when it is not
    /// valid parquet or its footer gives a row group a negative number of rows.
    pub fn open(domain: &str, path: &Path, column: &str) -> Result<Shard> {
        let file = File::open(path).map_err(|source| Error::io("cannot open shard", path, source))?;
        let length = file.metadata().map_err(|source| Error::io("cannot read size of shard", path, source))?.len();
        let bytes = if length == 0 {
            Bytes::new()
        } else {
            // SAFETY: the map is read-only and shards are not modified while they are read (see
            // the NOTE above); a concurrent truncation is the one case this cannot rule out.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| Error::io("cannot memory-map shard", path, source))?;
            Bytes::from_owner(map)
        };

        let parquet_error = |source| Error::Parquet { domain: domain.to_string(), path: path.to_path_buf(), row_group: None, source };
        let metadata = ArrowReaderMetadata::load(&bytes, ArrowReaderOptions::new()).map_err(parquet_error)?;
        check_row_counts(domain, path, &metadata)?;
        let Some(column_root) = metadata.schema().fields().iter().position(|field| field.name() == column) else {
            let found: Vec<_> = metadata.schema().fields().iter().map(|field| field.name().as_str()).collect();
            return Err(Error::Schema {
                domain: domain.to_string(),
                path: path.to_path_buf(),
                message: format!("column '{column}' not found; the shard has columns [{}]; set `column` or `text_column` on the domain", found.join(", ")),
            });
        };
        Ok(Shard { path: path.to_path_buf(), bytes, metadata, column_root })
    }

    /// The arrow type of the document column.
    pub fn column_type(&self) -> &DataType {
        self.metadata.schema().field(self.column_root).data_type()
    }

    /// Number of row groups.
    pub fn num_row_groups(&self) -> usize {
        self.metadata.metadata().num_row_groups()
    }

    /// Rows in row group `row_group`.
    pub fn row_group_rows(&self, row_group: usize) -> usize {
        self.metadata.metadata().row_group(row_group).num_rows() as usize
    }

    /// Rows in the whole shard, as the footer gives them (saturating at `u64::MAX`).
    pub fn num_rows(&self) -> u64 {
        (0..self.num_row_groups()).fold(0u64, |total, group| total.saturating_add(self.row_group_rows(group) as u64))
    }

    /// Leaf values of the document column over the whole shard: the token count of a token
    /// column (plus one per empty or null row), or the row count of a text column.
    pub fn column_values(&self) -> u64 {
        let metadata = self.metadata.metadata();
        let leaf = self.leaf_index();
        (0..self.num_row_groups())
            .fold(0u64, |total, group| total.saturating_add(metadata.row_group(group).column(leaf).num_values().max(0) as u64))
    }

    /// Uncompressed bytes of the document column in the whole shard.
    pub fn column_bytes(&self) -> u64 {
        let metadata = self.metadata.metadata();
        let leaf = self.leaf_index();
        (0..self.num_row_groups())
            .fold(0u64, |total, group| total.saturating_add(metadata.row_group(group).column(leaf).uncompressed_size().max(0) as u64))
    }

    /// Opens a reader over one row group of the document column, in record batches of bounded
    /// size.
    ///
    /// # Errors
    ///
    /// [`Error::Parquet`] naming the row group when the reader cannot be set up.
    pub fn read_row_group(&self, domain: &str, row_group: usize) -> Result<ParquetRecordBatchReader> {
        let rows = self.row_group_rows(row_group).max(1);
        let column_bytes = self.metadata.metadata().row_group(row_group).column(self.leaf_index()).uncompressed_size().max(1) as usize;
        let row_bytes = column_bytes.div_ceil(rows).max(1);
        let batch_rows = (RECORD_BATCH_BYTES / row_bytes).clamp(1, RECORD_BATCH_ROWS);

        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), [self.column_root]);
        ParquetRecordBatchReaderBuilder::new_with_metadata(self.bytes.clone(), self.metadata.clone())
            .with_projection(mask)
            .with_row_groups(vec![row_group])
            .with_batch_size(batch_rows)
            .build()
            .map_err(|source| Error::Parquet { domain: domain.to_string(), path: self.path.clone(), row_group: Some(row_group), source })
    }

    /// Index of the leaf column under the document column (a list column has one leaf).
    fn leaf_index(&self) -> usize {
        let schema = self.metadata.parquet_schema();
        (0..schema.num_columns()).find(|&leaf| schema.get_column_root_idx(leaf) == self.column_root).unwrap_or(0)
    }
}

/// Rejects a footer that gives a row group a negative number of rows. The parquet reader accepts
/// such a footer, and the count would wrap when converted to `usize`.
fn check_row_counts(domain: &str, path: &Path, metadata: &ArrowReaderMetadata) -> Result<()> {
    let row_groups = metadata.metadata().row_groups();
    let Some((row_group, rows)) = row_groups.iter().map(|group| group.num_rows()).enumerate().find(|(_, rows)| *rows < 0) else {
        return Ok(());
    };
    Err(Error::Parquet {
        domain: domain.to_string(),
        path: path.to_path_buf(),
        row_group: Some(row_group),
        source: ParquetError::General(format!("the footer gives it a negative row count ({rows})")),
    })
}
