//! Reading a row group: parquet decode of the token column and id conversion to u32. One path goes
//! through arrow record batches (`parquet_row_group` then `to_u32`, or both as `arrow_path`). The
//! other reads straight from the pages (`pages`), as the readers do for lists of INT32 and INT64 ids.

use std::path::Path;
use std::sync::Arc;

use arrow::array::{ArrayRef, Int64Array, ListArray, RecordBatch, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use chameleon::source::{decode_tokens, BatchOrigin, DocumentRows, PageBuffers, Shard};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;

const DOCUMENTS: usize = 1024;
const DOCUMENT_TOKENS: usize = 600;

/// Token ids with a Zipf-like spread over a 50k vocabulary, as real text has.
fn ids() -> Vec<u32> {
    (0..DOCUMENTS * DOCUMENT_TOKENS).map(|i| ((i as u64 * 2654435761) % 50_000) as u32 / (1 + (i % 7) as u32)).collect()
}

fn write(path: &Path, values: ArrayRef) {
    let item = Arc::new(Field::new("item", values.data_type().clone(), false));
    let list = ListArray::new(item.clone(), OffsetBuffer::from_lengths(vec![DOCUMENT_TOKENS; DOCUMENTS]), values, None);
    let schema = Arc::new(Schema::new(vec![Field::new("tokens", DataType::List(item), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).unwrap();
    let properties = WriterProperties::builder().set_compression(Compression::ZSTD(ZstdLevel::default())).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn decode(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    let uint32 = root.path().join("uint32.parquet");
    let int64 = root.path().join("int64.parquet");
    write(&uint32, Arc::new(UInt32Array::from(ids())));
    write(&int64, Arc::new(Int64Array::from(ids().into_iter().map(i64::from).collect::<Vec<_>>())));

    let mut group = c.benchmark_group("decode");
    group.throughput(Throughput::Elements((DOCUMENTS * DOCUMENT_TOKENS) as u64));
    for (name, path) in [("uint32", &uint32), ("int64", &int64)] {
        let shard = Shard::open("bench", path, "tokens").unwrap();
        group.bench_function(format!("parquet_row_group/{name}"), |b| {
            b.iter(|| shard.read_row_group("bench", 0).unwrap().map(|batch| batch.unwrap().num_rows()).sum::<usize>())
        });

        let batch = shard.read_row_group("bench", 0).unwrap().next().unwrap().unwrap();
        let origin = BatchOrigin { domain: "bench", path, row_group: 0, first_row: 0 };
        let mut rows = DocumentRows::default();
        group.bench_function(format!("to_u32/{name}"), |b| b.iter(|| decode_tokens(batch.column(0), origin, &mut rows).unwrap()));

        group.bench_function(format!("arrow_path/{name}"), |b| {
            b.iter(|| {
                let mut tokens = 0;
                for batch in shard.read_row_group("bench", 0).unwrap() {
                    decode_tokens(batch.unwrap().column(0), origin, &mut rows).unwrap();
                    tokens += rows.tokens.len();
                }
                tokens
            })
        });

        let mut buffers = PageBuffers::default();
        group.bench_function(format!("pages/{name}"), |b| {
            b.iter(|| {
                let mut pages = shard.read_token_pages("bench", 0).unwrap().expect("a list of integers is read through pages");
                let mut tokens = 0;
                while pages.next_rows(origin, &mut buffers, &mut rows).unwrap() {
                    tokens += rows.tokens.len();
                }
                tokens
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decode);
criterion_main!(benches);
