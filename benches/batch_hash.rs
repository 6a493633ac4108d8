//! Hashing a batch for the stream digest.

use chameleon::config::Config;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

fn hash(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("only");
    std::fs::create_dir_all(&folder).unwrap();
    write_shard(&folder.join("0.parquet"));
    let config = Config::from_toml_str(
        &format!("seq_len = 2048\nbatch_size = 8\neos_token = 0\n[[domains]]\nname = 'only'\npath = '{}'\nweight = 1\n", folder.display()),
        root.path(),
    )
    .unwrap();
    let batch = chameleon::Loader::new(config).unwrap().next().unwrap().unwrap();

    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Bytes((batch.tokens.len() * 4) as u64));
    group.bench_function("hash/8x2049", |b| b.iter(|| batch.hash()));
    group.finish();
}

fn write_shard(path: &std::path::Path) {
    use std::sync::Arc;

    use arrow::array::{ListArray, RecordBatch, UInt32Array};
    use arrow::buffer::OffsetBuffer;
    use arrow::datatypes::{DataType, Field, Schema};

    let values = UInt32Array::from((0..100_000u32).collect::<Vec<_>>());
    let item = Arc::new(Field::new("item", DataType::UInt32, false));
    let list = ListArray::new(item.clone(), OffsetBuffer::from_lengths(vec![1000; 100]), Arc::new(values), None);
    let schema = Arc::new(Schema::new(vec![Field::new("tokens", DataType::List(item), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema, None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

criterion_group!(benches, hash);
criterion_main!(benches);
