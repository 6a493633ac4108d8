"""Read a chameleon export back with pyarrow and, when installed, Hugging Face datasets.

Usage: python3 tests/export_readback.py EXPORT_FOLDER

Checks the schema, the rows and tokens of every shard against manifest.json, the domain names and
the document starts. Prints one JSON line with the totals. Exits with status 1 on a mismatch and
with status 2 when pyarrow is missing. `datasets` is optional: without it, that part is skipped
with a message.
"""

import json
import os
import sys


def fail(message):
    print(f"readback failed: {message}", file=sys.stderr)
    sys.exit(1)


def check_pyarrow(folder, manifest):
    import pyarrow as pa
    import pyarrow.parquet as pq

    expected_schema = {
        "tokens": pa.list_(pa.field("item", pa.uint32(), nullable=False)),
        "domain": pa.dictionary(pa.int32(), pa.string()),
        "doc_starts": pa.list_(pa.field("item", pa.int32(), nullable=False)),
    }
    names = set(manifest["mixture_versions"][0]["domains"])
    row_len = manifest["seq_len"] + 1
    rows = tokens = 0
    for shard in manifest["shards"]:
        table = pq.read_table(os.path.join(folder, shard["file"]))
        for column, expected in expected_schema.items():
            found = table.schema.field(column).type
            if found != expected:
                fail(f"{shard['file']}: column {column} has type {found}, expected {expected}")
        if table.num_rows != shard["rows"]:
            fail(f"{shard['file']}: {table.num_rows} rows, the manifest says {shard['rows']}")
        lengths = table.column("tokens").combine_chunks().value_lengths().to_pylist()
        if any(length != row_len for length in lengths):
            fail(f"{shard['file']}: a row does not hold seq_len + 1 = {row_len} tokens")
        if sum(lengths) != shard["tokens"]:
            fail(f"{shard['file']}: {sum(lengths)} tokens, the manifest says {shard['tokens']}")
        unknown = set(table.column("domain").to_pylist()) - names
        if unknown:
            fail(f"{shard['file']}: domains {sorted(unknown)} are not in the manifest")
        for starts in table.column("doc_starts").to_pylist():
            if starts != sorted(starts) or any(start < 0 or start >= row_len for start in starts):
                fail(f"{shard['file']}: document starts {starts} are not ascending positions in the row")
        rows += table.num_rows
        tokens += sum(lengths)
    if tokens != manifest["tokens"]:
        fail(f"{tokens} tokens in the shards, the manifest says {manifest['tokens']}")
    return rows, tokens


def check_datasets(folder, manifest):
    try:
        import datasets
    except ImportError:
        print("skipping datasets: the datasets package is not installed")
        return None
    files = [os.path.join(folder, shard["file"]) for shard in manifest["shards"]]
    dataset = datasets.load_dataset("parquet", data_files=files, split="train")
    if dataset.num_rows != manifest["steps"] * manifest["batch_size"]:
        fail(f"datasets reads {dataset.num_rows} rows, expected {manifest['steps'] * manifest['batch_size']}")
    first = dataset[0]
    if len(first["tokens"]) != manifest["seq_len"] + 1:
        fail(f"datasets reads a first row of {len(first['tokens'])} tokens, expected {manifest['seq_len'] + 1}")
    if first["domain"] not in manifest["mixture_versions"][0]["domains"]:
        fail(f"datasets reads domain {first['domain']!r}, which is not in the manifest")
    return dataset.num_rows


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    folder = sys.argv[1]
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        print("skipping: pyarrow is not installed", file=sys.stderr)
        sys.exit(2)
    with open(os.path.join(folder, "manifest.json"), encoding="utf-8") as file:
        manifest = json.load(file)
    rows, tokens = check_pyarrow(folder, manifest)
    dataset_rows = check_datasets(folder, manifest)
    print(json.dumps({"rows": rows, "tokens": tokens, "datasets_rows": dataset_rows}))


if __name__ == "__main__":
    main()
