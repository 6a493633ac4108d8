//! A seeded sample of a domain's documents, for embedding the domain.

use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

use arrow::array::{Array, AsArray};
use arrow::datatypes::DataType;

use super::{decode_tokens, BatchOrigin, ColumnReader, DocumentRows, DomainSource};
use crate::error::{Error, Result};
use crate::sampler::derive_seed;

/// Takes up to `count` non-empty documents of `source`, as token ids.
///
/// Row groups are visited in an order shuffled from `seed` and the domain name, and each row is
/// kept with probability `1.5 × count / rows in the domain` (capped at 1), so the sample spreads
/// over the domain instead of taking its first rows; visiting stops once `count` documents are
/// taken. Text is tokenized only for the rows kept. The same seed and shards give the same sample.
///
/// # Errors
///
/// Parquet, schema and tokenizer errors from reading the shards, as the reader reports them.
pub fn sample_documents(source: &DomainSource, count: usize, seed: u64) -> Result<Vec<Vec<u32>>> {
    let mut rng = ChaCha8Rng::from_seed(derive_seed(seed, "embedding sample", &[source.name.as_bytes()]));
    let mut units: Vec<(usize, usize)> = Vec::new();
    for (shard_index, shard) in source.shards.iter().enumerate() {
        units.extend((0..shard.num_row_groups()).filter(|&group| shard.row_group_rows(group) > 0).map(|group| (shard_index, group)));
    }
    for last in (1..units.len()).rev() {
        let pick = (rng.next_u64() % (last as u64 + 1)) as usize;
        units.swap(last, pick);
    }

    let total_rows = source.num_rows().max(1);
    let keep_probability = (1.5 * count as f64 / total_rows as f64).clamp(0.0, 1.0);
    let mut documents = Vec::with_capacity(count);
    let mut rows = DocumentRows::default();
    for (shard_index, row_group) in units {
        let shard = &source.shards[shard_index];
        let mut first_row = 0;
        for batch in shard.read_row_group(&source.name, row_group)? {
            let batch = batch.map_err(|error| Error::Parquet {
                domain: source.name.clone(),
                path: shard.path.clone(),
                row_group: Some(row_group),
                source: error.into(),
            })?;
            let column = batch.column(0);
            let origin = BatchOrigin { domain: &source.name, path: &shard.path, row_group, first_row };
            if let ColumnReader::Tokens { .. } = &source.reader {
                decode_tokens(column, origin, &mut rows)?;
            }
            for index in 0..column.len() {
                let keep = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= keep_probability;
                if !keep || column.is_null(index) {
                    continue;
                }
                let document = match &source.reader {
                    ColumnReader::Tokens { .. } => rows.document(index).to_vec(),
                    ColumnReader::Text { tokenizer, .. } => {
                        let mut ids = Vec::new();
                        tokenizer.encode_into(text_value(column, index), &mut ids)?;
                        ids
                    }
                };
                if !document.is_empty() {
                    documents.push(document);
                    if documents.len() == count {
                        return Ok(documents);
                    }
                }
            }
            first_row += column.len();
        }
    }
    Ok(documents)
}

/// Row `index` of a string column (string, large string or string view; checked when the shard
/// was opened).
fn text_value(column: &dyn Array, index: usize) -> &str {
    match column.data_type() {
        DataType::Utf8 => column.as_string::<i32>().value(index),
        DataType::LargeUtf8 => column.as_string::<i64>().value(index),
        _ => column.as_string_view().value(index),
    }
}
