//! Decoding: one record batch of a document column into token ids.
//!
//! Token columns may be a list or large list of any integer type, 8 to 64 bits, signed or not.
//! Every id is checked and converted to `u32`: 8- and 16-bit unsigned ids widen without a check,
//! `u32` ids are copied as they are, and the other types are checked one id at a time. Text
//! columns (string, large string or string view) are tokenized.

use std::path::Path;

use arrow::array::{Array, ArrayRef, AsArray, GenericListArray, OffsetSizeTrait, PrimitiveArray};
use arrow::datatypes::{
    ArrowPrimitiveType, DataType, Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};

use super::Tokenizer;
use crate::error::{Error, Result};

/// The documents of consecutive rows, one entry per row: a null row is an empty document whose
/// index is listed in `null_rows`.
#[derive(Debug, Default, Clone)]
pub struct DocumentRows {
    /// Every row's tokens, concatenated.
    pub tokens: Vec<u32>,
    /// Row `i`'s tokens are `tokens[offsets[i]..offsets[i + 1]]`; `offsets.len()` is rows + 1.
    pub offsets: Vec<usize>,
    /// Indices of the null rows among them, ascending.
    pub null_rows: Vec<usize>,
}

impl DocumentRows {
    /// Rows held, null rows included.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether row `row` is null.
    pub fn is_null(&self, row: usize) -> bool {
        self.null_rows.binary_search(&row).is_ok()
    }

    /// Whether no row is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The tokens of row `row`.
    pub fn document(&self, row: usize) -> &[u32] {
        &self.tokens[self.offsets[row]..self.offsets[row + 1]]
    }

    pub(crate) fn clear(&mut self) {
        self.tokens.clear();
        self.offsets.clear();
        self.offsets.push(0);
        self.null_rows.clear();
    }
}

/// Where a record batch came from, for error messages.
#[derive(Debug, Clone, Copy)]
pub struct BatchOrigin<'a> {
    /// The domain.
    pub domain: &'a str,
    /// The shard.
    pub path: &'a Path,
    /// The row group within the shard.
    pub row_group: usize,
    /// The row, within the row group, of the record batch's first row.
    pub first_row: usize,
}

impl BatchOrigin<'_> {
    fn schema_error(&self, message: String) -> Error {
        Error::Schema { domain: self.domain.to_string(), path: self.path.to_path_buf(), message }
    }
}

/// Checks that `data_type` is a list of integers, the type a token column must have.
pub fn check_token_type(data_type: &DataType) -> std::result::Result<(), String> {
    let value_type = match data_type {
        DataType::List(field) | DataType::LargeList(field) => field.data_type(),
        other => return Err(format!("expected a list of integer token ids, found {other}")),
    };
    if value_type.is_integer() {
        Ok(())
    } else {
        Err(format!("expected a list of integer token ids, found a list of {value_type}"))
    }
}

/// Checks that `data_type` is a string column, the type a text column must have.
pub fn check_text_type(data_type: &DataType) -> std::result::Result<(), String> {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ok(()),
        other => Err(format!("expected a string column of document text, found {other}")),
    }
}

/// Decodes a token column into `out`, replacing what it held.
///
/// # Errors
///
/// [`Error::Schema`] for a column that is not a list of integers, [`Error::TokenOutOfRange`] for an
/// id below 0 or above `u32::MAX`, and [`Error::Schema`] naming the row for a null id inside a
/// list.
pub fn decode_tokens(column: &ArrayRef, origin: BatchOrigin<'_>, out: &mut DocumentRows) -> Result<()> {
    out.clear();
    match column.data_type() {
        DataType::List(_) => decode_list(column.as_list::<i32>(), origin, out),
        DataType::LargeList(_) => decode_list(column.as_list::<i64>(), origin, out),
        other => Err(origin.schema_error(format!("expected a list of integer token ids, found {other}"))),
    }
}

fn decode_list<O: OffsetSizeTrait>(list: &GenericListArray<O>, origin: BatchOrigin<'_>, out: &mut DocumentRows) -> Result<()> {
    let values = list.values();
    match values.data_type() {
        DataType::UInt32 => copy_ids(list, values.as_primitive::<UInt32Type>(), origin, out),
        DataType::UInt16 => copy_ids(list, values.as_primitive::<UInt16Type>(), origin, out),
        DataType::UInt8 => copy_ids(list, values.as_primitive::<UInt8Type>(), origin, out),
        DataType::UInt64 => copy_ids(list, values.as_primitive::<UInt64Type>(), origin, out),
        DataType::Int8 => copy_ids(list, values.as_primitive::<Int8Type>(), origin, out),
        DataType::Int16 => copy_ids(list, values.as_primitive::<Int16Type>(), origin, out),
        DataType::Int32 => copy_ids(list, values.as_primitive::<Int32Type>(), origin, out),
        DataType::Int64 => copy_ids(list, values.as_primitive::<Int64Type>(), origin, out),
        other => Err(origin.schema_error(format!("expected a list of integer token ids, found a list of {other}"))),
    }
}

/// Appends every row's ids, converted to `u32`, row by row.
fn copy_ids<O, T>(list: &GenericListArray<O>, values: &PrimitiveArray<T>, origin: BatchOrigin<'_>, out: &mut DocumentRows) -> Result<()>
where
    O: OffsetSizeTrait,
    T: ArrowPrimitiveType,
    T::Native: TokenId,
{
    let offsets = list.value_offsets();
    let ids = values.values();
    out.tokens.reserve(offsets[list.len()].as_usize() - offsets[0].as_usize());

    for row in 0..list.len() {
        if list.is_null(row) {
            out.null_rows.push(row);
            out.offsets.push(out.tokens.len());
            continue;
        }
        let range = offsets[row].as_usize()..offsets[row + 1].as_usize();
        if values.null_count() > 0 && range.clone().any(|index| values.is_null(index)) {
            return Err(Error::Schema {
                domain: origin.domain.to_string(),
                path: origin.path.to_path_buf(),
                message: format!(
                    "row group {}, row {}: the token list holds a null id; token lists may be null as a whole but not contain nulls",
                    origin.row_group,
                    origin.first_row + row
                ),
            });
        }
        T::Native::extend(&mut out.tokens, &ids[range]).map_err(|value| Error::TokenOutOfRange {
            domain: origin.domain.to_string(),
            path: origin.path.to_path_buf(),
            row_group: origin.row_group,
            row: origin.first_row + row,
            value,
        })?;
        out.offsets.push(out.tokens.len());
    }
    Ok(())
}

/// An integer type that token ids may be stored as.
pub trait TokenId: Copy {
    /// Appends `ids` to `out` as `u32`, or returns the first id that does not fit.
    fn extend(out: &mut Vec<u32>, ids: &[Self]) -> std::result::Result<(), i128>;
}

impl TokenId for u32 {
    fn extend(out: &mut Vec<u32>, ids: &[u32]) -> std::result::Result<(), i128> {
        out.extend_from_slice(ids);
        Ok(())
    }
}

macro_rules! widening_token_id {
    ($($native:ty),*) => {$(
        impl TokenId for $native {
            fn extend(out: &mut Vec<u32>, ids: &[$native]) -> std::result::Result<(), i128> {
                out.extend(ids.iter().map(|&id| u32::from(id)));
                Ok(())
            }
        }
    )*};
}

macro_rules! checked_token_id {
    ($($native:ty),*) => {$(
        impl TokenId for $native {
            fn extend(out: &mut Vec<u32>, ids: &[$native]) -> std::result::Result<(), i128> {
                if let Some(&bad) = ids.iter().find(|&&id| u32::try_from(id).is_err()) {
                    return Err(i128::from(bad));
                }
                // Every id fits: the check above ran over the same slice.
                out.extend(ids.iter().map(|&id| id as u32));
                Ok(())
            }
        }
    )*};
}

widening_token_id!(u8, u16);
checked_token_id!(u64, i8, i16, i32, i64);

/// Tokenizes a text column into `out`, replacing what it held. Null rows are empty documents,
/// listed in `null_rows`.
///
/// # Errors
///
/// [`Error::Schema`] for a column that is not a string column, [`Error::Tokenizer`] when the
/// tokenizer fails.
pub fn decode_text(column: &ArrayRef, tokenizer: &Tokenizer, origin: BatchOrigin<'_>, out: &mut DocumentRows) -> Result<()> {
    out.clear();
    let mut encode_row = |text: Option<&str>| -> Result<()> {
        match text {
            None => out.null_rows.push(out.offsets.len() - 1),
            Some(text) => tokenizer.encode_into(text, &mut out.tokens)?,
        }
        out.offsets.push(out.tokens.len());
        Ok(())
    };
    match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().iter().try_for_each(&mut encode_row),
        DataType::LargeUtf8 => column.as_string::<i64>().iter().try_for_each(&mut encode_row),
        DataType::Utf8View => column.as_string_view().iter().try_for_each(&mut encode_row),
        other => Err(origin.schema_error(format!("expected a string column of document text, found {other}"))),
    }
}
