//! The whole loader: four token domains streamed into batches of 8 x 2049 tokens.

use std::sync::Arc;

use arrow::array::{ListArray, RecordBatch, UInt32Array};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field, Schema};
use chameleon::{Config, Loader};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const STEPS: usize = 50;

fn write_domain(folder: &std::path::Path, seed: u32) {
    std::fs::create_dir_all(folder).unwrap();
    let lengths: Vec<usize> = (0..4096u32).map(|d| 64 + ((d ^ seed) as usize * 2654435761) % 1500).collect();
    let total: usize = lengths.iter().sum();
    let values = UInt32Array::from((0..total as u32).map(|i| i.wrapping_mul(seed | 1) % 50_000).collect::<Vec<_>>());
    let item = Arc::new(Field::new("item", DataType::UInt32, false));
    let list = ListArray::new(item.clone(), OffsetBuffer::from_lengths(lengths), Arc::new(values), None);
    let schema = Arc::new(Schema::new(vec![Field::new("tokens", DataType::List(item), true)]));
    let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(list)]).unwrap();
    let properties = parquet::file::properties::WriterProperties::builder().set_max_row_group_row_count(Some(1024)).build();
    let mut writer = parquet::arrow::ArrowWriter::try_new(std::fs::File::create(folder.join("0.parquet")).unwrap(), schema, Some(properties)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

fn stream(c: &mut Criterion) {
    let root = tempfile::tempdir().unwrap();
    let mut text = String::from("seq_len = 2048\nbatch_size = 8\neos_token = 0\n");
    for domain in 0..4u32 {
        let folder = root.path().join(format!("domain{domain}"));
        write_domain(&folder, domain + 1);
        text.push_str(&format!("[[domains]]\nname = 'domain{domain}'\npath = '{}'\nweight = 1\n", folder.display()));
    }
    let config = Config::from_toml_str(&text, root.path()).unwrap();

    let mut group = c.benchmark_group("pipeline");
    group.sample_size(10);
    group.throughput(Throughput::Elements((STEPS * 8 * 2049) as u64));
    for threads in [1usize, 2] {
        group.bench_function(format!("stream/threads_{threads}"), |b| {
            b.iter(|| {
                let loader = Loader::builder(config.clone()).threads(threads).build().unwrap();
                loader.take(STEPS).map(|batch| batch.unwrap().tokens.len()).sum::<usize>()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, stream);
criterion_main!(benches);
