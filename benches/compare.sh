#!/usr/bin/env bash
# Runs `chameleon stream` and the peer loaders on the same token shards, in one run, and prints
# tokens per second, peak memory and the ratios between them.
#
# Usage: benches/compare.sh ROOT [STEPS] [THREADS]
#   ROOT     folder of domains: ROOT/<domain>/*.parquet with a `tokens` list column
#   STEPS    batches of 8 x 2049 tokens for chameleon. Default: one pass over ROOT's tokens, as
#            pyarrow_raw.py reads them, counted from the parquet footers (needs pyarrow; 2000
#            without it). On a different amount of work the ratios mislead: a small ROOT read
#            once by pyarrow_raw.py but streamed many times by chameleon looks far faster.
#   THREADS  chameleon's --threads (default: the available cores)
# Environment:
#   PEERS    folder with the peer scripts pyarrow_raw.py and hf_interleave.py; a peer is skipped
#            with a message when its script, python3 or its packages are missing.
#   CHAMELEON  the binary (default: target/release/chameleon, built if missing)
#   COLD     set to 1 to skip reading every shard once before the runs. By default the shards are
#            read first, so every tool reads them from the page cache and the figures compare
#            decoding, not the disk (a cold cache favours whichever tool runs second).
set -euo pipefail

root=${1:?usage: benches/compare.sh ROOT [STEPS] [THREADS]}
steps=${2:-}
threads=${3:-$(nproc)}
here=$(cd "$(dirname "$0")/.." && pwd)
peers=${PEERS:-$here/../shared/peers}
chameleon=${CHAMELEON:-${CARGO_TARGET_DIR:-$here/target}/release/chameleon}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

if [ ! -d "$root" ]; then
    echo "compare.sh: $root is not a folder; pass a folder of domains, ROOT/<domain>/*.parquet" >&2
    exit 1
fi
root=$(cd "$root" && pwd)
if [ ! -x "$chameleon" ]; then
    echo "building $chameleon (a first release build takes about 15 minutes on 2 cores)" >&2
    (cd "$here" && cargo build --release)
fi

# One pass over the tokens, in batches of 8 x 2049, unless STEPS is given.
if [ -z "$steps" ]; then
    steps=$(python3 - "$root" 2>/dev/null <<'PY' || true
import glob, sys
import pyarrow.parquet as pq
tokens = 0
for path in glob.glob(f"{sys.argv[1]}/*/*.parquet"):
    metadata = pq.ParquetFile(path).metadata
    tokens += sum(metadata.row_group(g).column(0).num_values for g in range(metadata.num_row_groups))
print(max(1, tokens // (8 * 2049)))
PY
)
    if [ -z "$steps" ]; then
        steps=2000
        echo "compare.sh: cannot count ROOT's tokens without python3 and pyarrow; streaming 2000 steps" >&2
    fi
fi

# One domain per folder, equal weights, the GPT-2 end-of-text token.
config=$work/compare.toml
printf 'seed = 1\nseq_len = 2048\nbatch_size = 8\neos_token = 50256\n' > "$config"
for folder in "$root"/*/; do
    name=$(basename "$folder")
    printf '[[domains]]\nname = "%s"\npath = "%s"\nweight = 1.0\n' "$name" "${folder%/}" >> "$config"
done

if [ "${COLD:-0}" != 1 ]; then
    find -L "$root" -name '*.parquet' -exec cat {} + > /dev/null
fi

peak_mb() { awk '/Maximum resident set size/ {printf "%.0f", $6 / 1024}' "$1"; }

echo "machine: $(nproc) cores, $(lscpu | sed -n 's/^Model name: *//p'), $(date -u +%Y-%m-%d)"
echo "data: $root ($(du -shL "$root" | cut -f1)), chameleon --steps $steps --threads $threads, page cache $([ "${COLD:-0}" = 1 ] && echo "as found" || echo "warmed")"

if ! /usr/bin/time -v "$chameleon" stream --config "$config" --steps "$steps" --threads "$threads" --json \
    > "$work/chameleon.json" 2> "$work/chameleon.time"; then
    echo "chameleon stream failed:" >&2
    grep -v $'^\t' "$work/chameleon.time" >&2 || true
    exit 1
fi
chameleon_rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens_per_second"])' "$work/chameleon.json")
chameleon_cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$work/chameleon.time")
chameleon_tokens=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["tokens"])' "$work/chameleon.json")
chameleon_digest=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["digest"])' "$work/chameleon.json")
printf 'chameleon      tokens/s %.4e  per core %.4e  peak RSS %s MB  CPU-seconds per 1e9 tokens %.1f  tokens %s  digest %s\n' \
    "$chameleon_rate" "$(python3 -c "print($chameleon_rate / $(nproc))")" "$(peak_mb "$work/chameleon.time")" \
    "$(python3 -c "print($chameleon_cpu / $chameleon_tokens * 1e9)")" "$chameleon_tokens" "$chameleon_digest"

run_peer() {
    local name=$1
    shift
    if [ ! -f "$peers/$name.py" ]; then
        echo "$name: skipped, $peers/$name.py not found (set PEERS)"
        return
    fi
    if ! /usr/bin/time -v python3 "$peers/$name.py" "$@" > "$work/$name.out" 2> "$work/$name.time"; then
        echo "$name: skipped, it failed (missing python3 packages?): $(grep -m1 -E 'Error|error' "$work/$name.time" || true)"
        return
    fi
    local rate tokens cpu
    rate=$(sed -n 's/.*tokens_per_s=\([^ ]*\).*/\1/p' "$work/$name.out")
    tokens=$(sed -n 's/.*tokens=\([0-9]*\).*/\1/p' "$work/$name.out")
    cpu=$(awk -F': ' '/User time/ {u=$2} /System time/ {s=$2} END {print u + s}' "$work/$name.time")
    printf '%-14s tokens/s %.4e  peak RSS %s MB  CPU-seconds per 1e9 tokens %.1f (whole process)  chameleon / %s = %.1fx\n' \
        "$name" "$rate" "$(peak_mb "$work/$name.time")" "$(python3 -c "print($cpu / $tokens * 1e9)")" \
        "$name" "$(python3 -c "print($chameleon_rate / $rate)")"
    local seconds
    seconds=$(sed -n 's/.*seconds=\([^ ]*\).*/\1/p' "$work/$name.out")
    if python3 -c "import sys; sys.exit(not $seconds < 2)"; then
        echo "note: $name timed only $seconds s, so one-off costs inside its timed loop weigh on its rate; use a larger ROOT for ratios"
    fi
    if [ "$name" = pyarrow_raw ] && ! python3 -c "import sys; sys.exit(not 0.9 * $tokens <= $chameleon_tokens <= 1.1 * $tokens)"; then
        echo "note: chameleon streamed $chameleon_tokens tokens and pyarrow_raw decoded $tokens, so the ratios compare different work; pass STEPS=$((tokens / 16392)) for one pass"
    fi
}

run_peer pyarrow_raw "$root"
run_peer hf_interleave "$root" --limit 20000000
