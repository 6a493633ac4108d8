//! Token columns read straight from their parquet pages, without building arrow arrays.
//!
//! The arrow reader builds a list array per record batch (offsets, validity bitmaps, a fresh
//! values buffer) that [`decode_tokens`](super::decode_tokens) then copies into
//! [`DocumentRows`]. For a list of `INT32` or `INT64` ids this module decodes the leaf column's
//! values, repetition levels and definition levels into buffers that live as long as the reader
//! thread, and derives the document offsets from the levels. `INT32` ids land in
//! `DocumentRows::tokens` in place, with no copy at all. The resulting [`DocumentRows`] are the
//! same as the arrow path's, so the batches do not depend on which path read them.

use parquet::basic::{ConvertedType, LogicalType, Repetition, Type as PhysicalType};
use parquet::column::reader::{get_typed_column_reader, ColumnReader, ColumnReaderImpl};
use parquet::data_type::{Int32Type, Int64Type};
use parquet::errors::ParquetError;
use parquet::schema::types::ColumnDescriptor;

use super::{BatchOrigin, DocumentRows};
use crate::error::{Error, Result};

/// The meaning of each definition level of a one-level list column: row, null row or id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListLevels {
    /// The definition level of a present id.
    value: i16,
    /// The definition level of a null id inside a list, when ids are nullable.
    null_id: Option<i16>,
    /// The definition level of an empty list. A lower level is a null list.
    empty_list: i16,
    /// Whether the ids are unsigned (a parquet `UINT_*` annotation).
    unsigned: bool,
}

impl ListLevels {
    /// Derives the level layout of `leaf`. Returns `None` when the page path cannot read it,
    /// because only a list (repetition level 1) of `INT32` or `INT64` ids qualifies, and the arrow
    /// path reads the rest.
    pub fn of(leaf: &ColumnDescriptor) -> Option<ListLevels> {
        if leaf.max_rep_level() != 1 || !matches!(leaf.physical_type(), PhysicalType::INT32 | PhysicalType::INT64) {
            return None;
        }
        let basic = leaf.self_type().get_basic_info();
        let ids_nullable = basic.has_repetition() && basic.repetition() == Repetition::OPTIONAL;
        let value = leaf.max_def_level();
        // An id that exists reaches the repeated level; a nullable id adds one level above it.
        let element = if ids_nullable { value - 1 } else { value };
        if element < 1 {
            return None;
        }
        let unsigned = match leaf.logical_type_ref() {
            Some(LogicalType::Integer(integer)) => !integer.is_signed,
            Some(_) => return None,
            None => matches!(leaf.converted_type(), ConvertedType::UINT_8 | ConvertedType::UINT_16 | ConvertedType::UINT_32 | ConvertedType::UINT_64),
        };
        Some(ListLevels { value, null_id: ids_nullable.then_some(value - 1), empty_list: element - 1, unsigned })
    }
}

/// Buffers a reader thread reuses for every row group it reads through pages.
#[derive(Debug, Default)]
pub struct PageBuffers {
    repetition: Vec<i16>,
    definition: Vec<i16>,
    wide_ids: Vec<i64>,
}

enum LeafReader {
    Int32(ColumnReaderImpl<Int32Type>),
    Int64(ColumnReaderImpl<Int64Type>),
}

/// One row group's token column, read in chunks of rows straight from its pages.
pub struct TokenPages {
    leaf: LeafReader,
    levels: ListLevels,
    chunk_rows: usize,
    /// Rows of the row group already read.
    rows_read: usize,
}

impl TokenPages {
    /// Wraps a column reader over one row group's leaf column. `levels` must come from
    /// [`ListLevels::of`] for the same column, and `chunk_rows` bounds the rows of one
    /// [`TokenPages::next_rows`] call.
    pub(crate) fn new(reader: ColumnReader, levels: ListLevels, chunk_rows: usize) -> std::result::Result<TokenPages, ParquetError> {
        let leaf = match reader {
            ColumnReader::Int32ColumnReader(_) => LeafReader::Int32(get_typed_column_reader::<Int32Type>(reader)),
            ColumnReader::Int64ColumnReader(_) => LeafReader::Int64(get_typed_column_reader::<Int64Type>(reader)),
            _ => return Err(ParquetError::General("the token column is neither INT32 nor INT64".to_string())),
        };
        Ok(TokenPages { leaf, levels, chunk_rows: chunk_rows.max(1), rows_read: 0 })
    }

    /// Decodes the next chunk of rows into `out`, replacing what it held. Returns `Ok(false)`
    /// when the row group has no rows left (and leaves `out` empty).
    ///
    /// # Errors
    ///
    /// [`Error::Parquet`] naming the row group when a page cannot be decoded,
    /// [`Error::TokenOutOfRange`] for an id below 0 or above `u32::MAX`, and [`Error::Schema`]
    /// naming the row for a null id inside a list. `origin.first_row` is ignored: rows are
    /// counted from the start of the row group.
    pub fn next_rows(&mut self, origin: BatchOrigin<'_>, buffers: &mut PageBuffers, out: &mut DocumentRows) -> Result<bool> {
        let origin = BatchOrigin { first_row: self.rows_read, ..origin };
        out.clear();
        buffers.repetition.clear();
        buffers.definition.clear();

        let parquet_error = |source| Error::Parquet {
            domain: origin.domain.to_string(),
            path: origin.path.to_path_buf(),
            row_group: Some(origin.row_group),
            source,
        };
        let (rows, values) = match &mut self.leaf {
            LeafReader::Int32(reader) => {
                let read = with_i32_view(&mut out.tokens, |ids| {
                    reader.read_records(self.chunk_rows, Some(&mut buffers.definition), Some(&mut buffers.repetition), ids)
                });
                let (rows, values, _) = read.map_err(parquet_error)?;
                (rows, values)
            }
            LeafReader::Int64(reader) => {
                buffers.wide_ids.clear();
                let read = reader.read_records(self.chunk_rows, Some(&mut buffers.definition), Some(&mut buffers.repetition), &mut buffers.wide_ids);
                let (rows, values, _) = read.map_err(parquet_error)?;
                (rows, values)
            }
        };
        if rows == 0 {
            return Ok(false);
        }
        self.rows_read += rows;

        // The arrow path checks each row for a null id and then for ids out of range, row by
        // row, so the error reported is the one of the earliest row, a null id first.
        let null_id_row = split_rows(&buffers.repetition, &buffers.definition, self.levels, values, out);
        let bad_id = match &self.leaf {
            LeafReader::Int32(_) if self.levels.unsigned => None,
            LeafReader::Int32(_) => first_negative_id(&out.tokens),
            LeafReader::Int64(_) => first_wide_id_out_of_range(&buffers.wide_ids, self.levels.unsigned),
        };
        let bad_id_row = bad_id.map(|(index, _)| row_of(&out.offsets, index));
        match (null_id_row, bad_id, bad_id_row) {
            (Some(null_row), _, None) => return Err(null_id_error(origin, null_row)),
            (Some(null_row), _, Some(bad_row)) if null_row <= bad_row => return Err(null_id_error(origin, null_row)),
            (_, Some((_, value)), Some(bad_row)) => return Err(out_of_range_error(origin, bad_row, value)),
            _ => {}
        }
        if let LeafReader::Int64(_) = self.leaf {
            // Every id fits: the check above ran over the same slice.
            out.tokens.clear();
            out.tokens.extend(buffers.wide_ids.iter().map(|&id| id as u32));
        }
        Ok(true)
    }
}

/// Lends `tokens` to `read` as a `Vec<i32>`, so that `INT32` ids are decoded into it in place.
fn with_i32_view<R>(tokens: &mut Vec<u32>, read: impl FnOnce(&mut Vec<i32>) -> R) -> R {
    let mut lent = std::mem::take(tokens);
    let (pointer, length, capacity) = (lent.as_mut_ptr(), lent.len(), lent.capacity());
    std::mem::forget(lent);
    // SAFETY: u32 and i32 have the same size and alignment, so the allocation is valid for a
    // Vec<i32> of the same length and capacity, and every bit pattern is valid for both.
    let mut view = unsafe { Vec::from_raw_parts(pointer.cast::<i32>(), length, capacity) };
    let outcome = read(&mut view);
    let (pointer, length, capacity) = (view.as_mut_ptr(), view.len(), view.capacity());
    std::mem::forget(view);
    // SAFETY: as above, in the other direction. `read` may have reallocated, so the parts are
    // taken again from the vector it left.
    *tokens = unsafe { Vec::from_raw_parts(pointer.cast::<u32>(), length, capacity) };
    outcome
}

/// Builds `out.offsets` and `out.null_rows` from the levels of whole rows, and returns the first
/// row that contains a null id, if any. `values` is the count of present ids, which sit contiguously
/// in the values buffer.
fn split_rows(repetition: &[i16], definition: &[i16], levels: ListLevels, values: usize, out: &mut DocumentRows) -> Option<usize> {
    // Every level a present id: a row starts at each repetition level 0, and its ids are the
    // levels up to the next one. This is the common case of token shards, and it needs no look at
    // the definition levels.
    if values == definition.len() {
        push_row_ends(repetition, &mut out.offsets);
        return None;
    }

    let mut present = 0usize;
    let mut null_id_row = None;
    for (index, (&repetition, &definition)) in repetition.iter().zip(definition).enumerate() {
        if repetition == 0 && index > 0 {
            out.offsets.push(present);
        }
        let row = out.offsets.len() - 1;
        if definition == levels.value {
            present += 1;
        } else if definition < levels.empty_list {
            out.null_rows.push(row);
        } else if Some(definition) == levels.null_id && null_id_row.is_none() {
            null_id_row = Some(row);
        }
    }
    out.offsets.push(present);
    null_id_row
}

/// Pushes the end of every row when each level is one id: the index of each repetition level 0
/// after the first, then the count of levels.
fn push_row_ends(repetition: &[i16], offsets: &mut Vec<usize>) {
    const BLOCK: usize = 64;
    let mut base = 0;
    for block in repetition.chunks(BLOCK) {
        // Rows are hundreds of ids long, so most blocks hold no row start: test the block with a
        // branch-free reduction that vectorizes, and look for the starts only in blocks that have
        // one.
        let has_start = block.iter().fold(false, |found, &level| found | (level == 0));
        if has_start {
            for (index, &level) in block.iter().enumerate() {
                if level == 0 && base + index > 0 {
                    offsets.push(base + index);
                }
            }
        }
        base += block.len();
    }
    offsets.push(repetition.len());
}

fn null_id_error(origin: BatchOrigin<'_>, row: usize) -> Error {
    Error::Schema {
        domain: origin.domain.to_string(),
        path: origin.path.to_path_buf(),
        message: format!(
            "row group {}, row {}: the token list holds a null id; token lists may be null as a whole but not contain nulls",
            origin.row_group,
            origin.first_row + row
        ),
    }
}

/// The row whose ids hold id `index`: the last row that starts at or before it.
fn row_of(offsets: &[usize], index: usize) -> usize {
    offsets.partition_point(|&offset| offset <= index).saturating_sub(1)
}

fn out_of_range_error(origin: BatchOrigin<'_>, row: usize, value: i128) -> Error {
    Error::TokenOutOfRange {
        domain: origin.domain.to_string(),
        path: origin.path.to_path_buf(),
        row_group: origin.row_group,
        row: origin.first_row + row,
        value,
    }
}

/// The index and value of the first negative id among signed `INT32` ids stored bit for bit.
fn first_negative_id(tokens: &[u32]) -> Option<(usize, i128)> {
    // A negative i32 has its top bit set, so the maximum as u32 shows whether there is one,
    // in a loop that vectorizes.
    if tokens.iter().fold(0u32, |max, &id| max.max(id)) <= i32::MAX as u32 {
        return None;
    }
    let index = tokens.iter().position(|&id| id > i32::MAX as u32)?;
    Some((index, i128::from(tokens[index] as i32)))
}

/// The index and value of the first `INT64` id that does not fit in `u32`.
fn first_wide_id_out_of_range(wide_ids: &[i64], unsigned: bool) -> Option<(usize, i128)> {
    if unsigned {
        let index = wide_ids.iter().position(|&id| (id as u64) > u64::from(u32::MAX))?;
        Some((index, i128::from(wide_ids[index] as u64)))
    } else {
        let index = wide_ids.iter().position(|&id| !(0..=i64::from(u32::MAX)).contains(&id))?;
        Some((index, i128::from(wide_ids[index])))
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Arc;

    use arrow::array::{ArrayRef, GenericListArray, OffsetSizeTrait, PrimitiveArray, UInt32Array};
    use arrow::buffer::{NullBuffer, OffsetBuffer};
    use arrow::datatypes::{ArrowPrimitiveType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    use parquet::arrow::ArrowWriter;
    use parquet::file::properties::WriterProperties;

    use super::*;
    use crate::source::{decode_tokens, Shard};

    /// A list column of `documents` (`None` a null row), ids as `T`, written in row groups of
    /// `row_group_rows` rows and data pages of at most 100 values.
    fn write_lists<O: OffsetSizeTrait, T: ArrowPrimitiveType>(path: &Path, documents: &[Option<Vec<T::Native>>], nullable: bool, row_group_rows: usize)
    where
        PrimitiveArray<T>: From<Vec<T::Native>>,
    {
        let item = Arc::new(Field::new("item", T::DATA_TYPE, nullable));
        let lengths = documents.iter().map(|document| document.as_ref().map_or(0, Vec::len));
        let values: Vec<T::Native> = documents.iter().flatten().flatten().copied().collect();
        let validity = documents.iter().any(Option::is_none).then(|| NullBuffer::from_iter(documents.iter().map(Option::is_some)));
        let list = GenericListArray::<O>::new(item, OffsetBuffer::from_lengths(lengths), Arc::new(PrimitiveArray::<T>::from(values)), validity);
        write_column(path, Arc::new(list), nullable, row_group_rows);
    }

    fn write_column(path: &Path, column: ArrayRef, nullable: bool, row_group_rows: usize) {
        let schema = Arc::new(Schema::new(vec![Field::new("tokens", column.data_type().clone(), nullable)]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(row_group_rows))
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(10)
            .build();
        let mut writer = ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(properties)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
    }

    /// Every row group read through pages and through arrow: rows per row group (tokens,
    /// offsets, null rows) or the error message.
    fn read_both(path: &Path) -> (Vec<std::result::Result<DocumentRows, String>>, Vec<std::result::Result<DocumentRows, String>>) {
        let shard = Shard::open("test", path, "tokens").unwrap();
        let mut by_pages = Vec::new();
        let mut by_arrow = Vec::new();
        for row_group in 0..shard.num_row_groups() {
            let origin = BatchOrigin { domain: "test", path, row_group, first_row: 0 };
            let mut pages = shard.read_token_pages("test", row_group).unwrap().expect("a list of integers is read through pages");
            let mut buffers = PageBuffers::default();
            let mut chunk = DocumentRows::default();
            let mut all = DocumentRows::default();
            all.clear();
            let outcome = loop {
                match pages.next_rows(origin, &mut buffers, &mut chunk) {
                    Ok(true) => append(&mut all, &chunk),
                    Ok(false) => break Ok(all),
                    Err(error) => break Err(error.to_string()),
                }
            };
            by_pages.push(outcome);

            let mut all = DocumentRows::default();
            all.clear();
            let mut first_row = 0;
            let outcome = shard.read_row_group("test", row_group).unwrap().try_for_each(|batch| {
                let batch = batch.map_err(|error| error.to_string())?;
                decode_tokens(batch.column(0), BatchOrigin { first_row, ..origin }, &mut chunk).map_err(|error| error.to_string())?;
                first_row += chunk.len();
                append(&mut all, &chunk);
                Ok(())
            });
            by_arrow.push(outcome.map(|()| all));
        }
        (by_pages, by_arrow)
    }

    fn append(all: &mut DocumentRows, chunk: &DocumentRows) {
        let rows = all.len();
        all.null_rows.extend(chunk.null_rows.iter().map(|row| row + rows));
        for row in 0..chunk.len() {
            all.tokens.extend_from_slice(chunk.document(row));
            all.offsets.push(all.tokens.len());
        }
    }

    fn assert_same(path: &Path) {
        let (by_pages, by_arrow) = read_both(path);
        assert_eq!(by_pages.len(), by_arrow.len());
        for (row_group, (pages, arrow)) in by_pages.iter().zip(&by_arrow).enumerate() {
            match (pages, arrow) {
                (Ok(pages), Ok(arrow)) => {
                    assert_eq!(pages.tokens, arrow.tokens, "row group {row_group}: tokens");
                    assert_eq!(pages.offsets, arrow.offsets, "row group {row_group}: offsets");
                    assert_eq!(pages.null_rows, arrow.null_rows, "row group {row_group}: null rows");
                }
                (Err(pages), Err(arrow)) => assert_eq!(pages, arrow, "row group {row_group}: error"),
                _ => panic!("row group {row_group}: pages read {pages:?}, arrow read {arrow:?}"),
            }
        }
    }

    /// Documents of 0 to 300 ids, with a null row every 7 rows when `with_nulls` is set.
    fn documents(count: u32, with_nulls: bool) -> Vec<Option<Vec<u32>>> {
        (0..count)
            .map(|row| {
                if with_nulls && row % 7 == 3 {
                    return None;
                }
                Some((0..(row * 37 % 301)).map(|i| row * 1000 + i).collect())
            })
            .collect()
    }

    #[test]
    fn uint32_lists_match_arrow() {
        let folder = tempfile::tempdir().unwrap();
        for (nullable, with_nulls) in [(true, false), (true, true), (false, false)] {
            let path = folder.path().join(format!("{nullable}-{with_nulls}.parquet"));
            write_lists::<i32, arrow::datatypes::UInt32Type>(&path, &documents(500, with_nulls), nullable, 128);
            assert_same(&path);
        }
    }

    #[test]
    fn other_integer_types_match_arrow() {
        let folder = tempfile::tempdir().unwrap();
        let wide = |documents: Vec<Option<Vec<u32>>>| -> Vec<Option<Vec<i64>>> {
            documents.into_iter().map(|document| document.map(|ids| ids.into_iter().map(i64::from).collect())).collect()
        };
        let path = folder.path().join("int64.parquet");
        write_lists::<i32, arrow::datatypes::Int64Type>(&path, &wide(documents(300, true)), true, 100);
        assert_same(&path);

        let path = folder.path().join("uint16-large.parquet");
        let narrow: Vec<Option<Vec<u16>>> = documents(300, true).into_iter().map(|d| d.map(|ids| ids.into_iter().map(|id| id as u16).collect())).collect();
        write_lists::<i64, arrow::datatypes::UInt16Type>(&path, &narrow, true, 100);
        assert_same(&path);
    }

    #[test]
    fn out_of_range_ids_match_arrow() {
        let folder = tempfile::tempdir().unwrap();
        let mut signed: Vec<Option<Vec<i32>>> = documents(300, true).into_iter().map(|d| d.map(|ids| ids.into_iter().map(|id| id as i32).collect())).collect();
        signed[250] = Some(vec![5, -3, 6]);
        let path = folder.path().join("int32.parquet");
        write_lists::<i32, arrow::datatypes::Int32Type>(&path, &signed, true, 100);
        assert_same(&path);
        assert!(read_both(&path).0[2].as_ref().unwrap_err().contains("row 50"), "{:?}", read_both(&path).0[2]);

        let mut wide: Vec<Option<Vec<u64>>> = documents(300, false).into_iter().map(|d| d.map(|ids| ids.into_iter().map(u64::from).collect())).collect();
        wide[120] = Some(vec![1, u64::MAX]);
        let path = folder.path().join("uint64.parquet");
        write_lists::<i32, arrow::datatypes::UInt64Type>(&path, &wide, true, 100);
        assert_same(&path);

        let mut wide: Vec<Option<Vec<i64>>> = documents(300, false).into_iter().map(|d| d.map(|ids| ids.into_iter().map(i64::from).collect())).collect();
        wide[10] = Some(vec![1, 1 << 33]);
        let path = folder.path().join("int64.parquet");
        write_lists::<i32, arrow::datatypes::Int64Type>(&path, &wide, true, 100);
        assert_same(&path);
    }

    #[test]
    fn null_ids_match_arrow() {
        let folder = tempfile::tempdir().unwrap();
        let item = Arc::new(Field::new("item", arrow::datatypes::DataType::UInt32, true));
        let values = UInt32Array::from(vec![Some(1), Some(2), None, Some(4), Some(5), Some(6)]);
        let list = GenericListArray::<i32>::new(item, OffsetBuffer::from_lengths([2, 0, 2, 2]), Arc::new(values), None);
        let path = folder.path().join("null-id.parquet");
        write_column(&path, Arc::new(list), true, 100);
        assert_same(&path);
        let (by_pages, _) = read_both(&path);
        assert!(by_pages[0].as_ref().unwrap_err().contains("row 2"), "{:?}", by_pages[0]);
    }

    #[test]
    fn text_columns_are_left_to_arrow() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("text.parquet");
        write_column(&path, Arc::new(arrow::array::StringArray::from(vec!["a", "b"])), true, 10);
        let shard = Shard::open("test", &path, "tokens").unwrap();
        assert!(shard.read_token_pages("test", 0).unwrap().is_none());
    }
}
