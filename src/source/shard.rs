//! Shards: memory-mapped parquet files, read one row group at a time, one column only.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::datatypes::DataType;
use bytes::Bytes;
use parquet::arrow::arrow_reader::{ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use parquet::errors::ParquetError;
use parquet::column::reader::get_column_reader;
use parquet::file::serialized_reader::SerializedPageReader;

use super::check_text_type;
use super::pages::{ListLevels, TokenPages};

use crate::error::{Error, Result};

/// Upper bound on the bytes of one decoded record batch, so that a row group of very long rows
/// is read in several bounded pieces (and string offsets never approach 2^31).
const RECORD_BATCH_BYTES: usize = 8 << 20;

/// Upper bound on the bytes of one record batch of a text column. Tokenizing whole fixture row
/// groups (about 200 KB each) kept the first batch waiting 0.5 to 0.9 s on a 2-core machine, and
/// 32 KB batches 110 to 155 ms; 8 KB, a few sequences of text, brings it to 80 to 130 ms. Their
/// per-batch overhead is small next to tokenizing.
const TEXT_RECORD_BATCH_BYTES: usize = 8 << 10;

/// Upper bound on the rows of one decoded record batch.
const RECORD_BATCH_ROWS: usize = 8192;

/// Upper bound on the leaf values (token ids, plus one per empty or null row) of one decoded
/// record batch. Each costs about 8 bytes while decoded (the `u32` id and two 16-bit levels), so a
/// reader keeps about 512 KiB of decoded ids, whatever the size of the shard's row groups. Smaller
/// batches reach the channel sooner: on a 2-core machine, 2^16 streamed 10 to 20 % faster than
/// 2^19, whose decoding left the sampler waiting on empty channels.
const RECORD_BATCH_VALUES: usize = 1 << 16;

/// A shared memory map as the owner of [`Bytes`].
struct SharedMap(Arc<memmap2::Mmap>);

impl AsRef<[u8]> for SharedMap {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// One parquet file of a domain, memory-mapped, with its footer parsed.
#[derive(Debug, Clone)]
pub struct Shard {
    /// The file.
    pub path: PathBuf,
    bytes: Bytes,
    /// The map behind `bytes`, kept to release the pages of row groups already read.
    map: Option<Arc<memmap2::Mmap>>,
    metadata: ArrowReaderMetadata,
    /// Index of the document column among the file's top-level columns.
    column_root: usize,
    /// The level layout of a token column that [`Shard::read_token_pages`] can read.
    list_levels: Option<ListLevels>,
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
        let (bytes, map) = if length == 0 {
            (Bytes::new(), None)
        } else {
            // SAFETY: the map is read-only and shards are not modified while they are read (see
            // the NOTE above); a concurrent truncation is the one case this cannot rule out.
            let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|source| Error::io("cannot memory-map shard", path, source))?;
            let map = Arc::new(map);
            (Bytes::from_owner(SharedMap(Arc::clone(&map))), Some(map))
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
        let mut shard = Shard { path: path.to_path_buf(), bytes, map, metadata, column_root, list_levels: None };
        if matches!(shard.column_type(), DataType::List(_) | DataType::LargeList(_)) {
            shard.list_levels = ListLevels::of(&shard.metadata.parquet_schema().column(shard.leaf_index()));
        }
        Ok(shard)
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
        let mask = ProjectionMask::roots(self.metadata.parquet_schema(), [self.column_root]);
        ParquetRecordBatchReaderBuilder::new_with_metadata(self.bytes.clone(), self.metadata.clone())
            .with_projection(mask)
            .with_row_groups(vec![row_group])
            .with_batch_size(self.chunk_rows(row_group))
            .build()
            .map_err(|source| Error::Parquet { domain: domain.to_string(), path: self.path.clone(), row_group: Some(row_group), source })
    }

    /// Opens a reader over one row group of a token column that decodes its pages straight into
    /// [`DocumentRows`](super::DocumentRows), in chunks of as many rows as
    /// [`Shard::read_row_group`]'s record batches hold. Returns `Ok(None)` for a column that only
    /// the arrow path reads: text, or ids that are not a plain list of `INT32` or `INT64`.
    ///
    /// # Errors
    ///
    /// [`Error::Parquet`] naming the row group when the reader cannot be set up.
    pub fn read_token_pages(&self, domain: &str, row_group: usize) -> Result<Option<TokenPages>> {
        let Some(levels) = self.list_levels else {
            return Ok(None);
        };
        let parquet_error = |source| Error::Parquet { domain: domain.to_string(), path: self.path.clone(), row_group: Some(row_group), source };
        let leaf = self.leaf_index();
        let metadata = self.metadata.metadata();
        let group = metadata.row_group(row_group);
        let page_reader = SerializedPageReader::new(Arc::new(self.bytes.clone()), group.column(leaf), group.num_rows().max(0) as usize, None)
            .map_err(parquet_error)?;
        let column = get_column_reader(self.metadata.parquet_schema().column(leaf), Box::new(page_reader));
        TokenPages::new(column, levels, self.chunk_rows(row_group)).map(Some).map_err(parquet_error)
    }

    /// Asks the kernel to read the document column of `row_group` into the page cache in the
    /// background. Readers visit row groups in a shuffled order, so without this a shard that
    /// is not cached yet is read in small page faults, one at a time, as decoding reaches them.
    pub fn prefetch_row_group(&self, row_group: usize) {
        let Some((map, start, length)) = self.mapped_column_chunk(row_group) else {
            return;
        };
        if let Err(error) = map.advise_range(memmap2::Advice::WillNeed, start, length) {
            tracing::debug!(shard = %self.path.display(), row_group, %error, "cannot prefetch a row group");
        }
    }

    /// Drops this process's pages of the whole shard, once a reader is done with a row group,
    /// so that resident memory does not grow with the share of the corpus read. The pages stay
    /// in the page cache, and a later read maps them again.
    ///
    /// The whole map is released, not only the row group's byte range, because a page fault maps
    /// cached pages around it too (fault-around, and whole large folios on newer kernels).
    /// Releasing only the byte range, even with 64 KiB on each side, left resident memory growing
    /// by about 7 MB/s on the 1.7 GB synthetic set. One reader reads a shard at a time, so this costs at
    /// most a fault on a later read.
    pub fn release_pages(&self) {
        let Some(map) = &self.map else {
            return;
        };
        // SAFETY: the map is a read-only shared map of a file, so MADV_DONTNEED only drops page
        // table entries: the next access reads the same bytes from the file again, and every
        // slice into the map stays valid.
        let released = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, 0, map.len()) };
        if let Err(error) = released {
            tracing::debug!(shard = %self.path.display(), %error, "cannot release the pages of a shard");
        }
    }

    /// Returns the map and the byte range of the document column of `row_group` in it, when the
    /// shard is mapped and the range lies inside the file.
    fn mapped_column_chunk(&self, row_group: usize) -> Option<(&memmap2::Mmap, usize, usize)> {
        let map = self.map.as_deref()?;
        let (start, length) = self.metadata.metadata().row_group(row_group).column(self.leaf_index()).byte_range();
        let (start, length) = (usize::try_from(start).ok()?, usize::try_from(length).ok()?);
        (start.checked_add(length)? <= map.len()).then_some((map, start, length))
    }

    /// Rows of one record batch or chunk of `row_group`: as many as fit in
    /// [`RECORD_BATCH_BYTES`] of encoded column ([`TEXT_RECORD_BATCH_BYTES`] for text) and
    /// [`RECORD_BATCH_VALUES`] leaf values, at most [`RECORD_BATCH_ROWS`].
    fn chunk_rows(&self, row_group: usize) -> usize {
        let budget = if check_text_type(self.column_type()).is_ok() { TEXT_RECORD_BATCH_BYTES } else { RECORD_BATCH_BYTES };
        let rows = self.row_group_rows(row_group).max(1);
        let column = self.metadata.metadata().row_group(row_group).column(self.leaf_index());
        let row_bytes = (column.uncompressed_size().max(1) as usize).div_ceil(rows).max(1);
        let row_values = (column.num_values().max(1) as usize).div_ceil(rows).max(1);
        (budget / row_bytes).min(RECORD_BATCH_VALUES / row_values).clamp(1, RECORD_BATCH_ROWS)
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
