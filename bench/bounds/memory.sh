#!/usr/bin/env bash
# The memory estimate every command that loads a dataset makes before any work
# (--max-memory, docs/reliability.md "Budgets") against the peak RSS the same command then
# measures, for training, evaluating and compressing networks of every kind. The estimate is
# read from the refusal of a run given --max-memory 1; the target is a ratio within 2x.
# Writes into out/bounds/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=$PWD/target/release/eie-compress
out=out/bounds
mkdir -p "$out"
cd "$out"
mib() { # "781.0 MiB" or "6.9 GiB" -> MiB
    awk -v v="$1" -v u="$2" 'BEGIN { m = (u == "GiB") ? 1024 : (u == "KiB") ? 1 / 1024 : (u == "B") ? 1 / 1048576 : 1; printf "%.1f", v * m }'
}
case_() { # label, then the command's arguments
    local label=$1
    shift
    local est
    est=$({ "$bin" -q "$@" --max-memory 1 2>&1 || true; } | sed -n 's/.*need about \([0-9.]*\) \([A-Za-z]*\) of memory.*/\1 \2/p')
    /usr/bin/time -f "%M" -o t.txt "$bin" -q "$@" >/dev/null 2>&1
    local rss
    rss=$(tail -1 t.txt)
    local e
    e=$(mib $est)
    printf '%-40s %12s %12s %7s\n' "$label" "$e" "$(awk -v k="$rss" 'BEGIN { printf "%.1f", k / 1024 }')" \
        "$(awk -v e="$e" -v k="$rss" 'BEGIN { printf "%.2f", e / (k / 1024) }')"
}
printf '%-40s %12s %12s %7s\n' "case" "estimate MiB" "peak MiB" "ratio"
case_ "train 64-300-100-10" train --dataset synthetic --range 0..512 --arch 64-300-100-10 --epochs 1 -o small.safetensors --force
case_ "train 64-4000-4000-10" train --dataset synthetic --range 0..512 --arch 64-4000-4000-10 --epochs 1 -o wide.safetensors --force
case_ "train 8x8-lstm2000-10" train --dataset synthetic-sequence --range 0..256 --arch 8x8-lstm2000-10 --epochs 1 -o lstm.safetensors --force
case_ "train 1x8x8-conv256k3-conv256k3-512-10" train --dataset synthetic-image --range 0..256 --arch 1x8x8-conv256k3-conv256k3-512-10 --epochs 1 -o cnn.safetensors --force
case_ "eval 64-4000-4000-10, 10,000 samples" eval wide.safetensors --dataset synthetic
case_ "compress --retrain 64-300-100-10" compress small.safetensors -o small-c --density 0.1 --dataset synthetic --range 0..2000 --eval-range 2000..3000 --retrain --epochs 2 --force
