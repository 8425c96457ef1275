#!/usr/bin/env bash
# Reproduces docs/results.md's "Compression with calibration" table: the decoder `train`
# makes on Shakespeare, compressed at one density (default 0.5), 4-bit codes, 64 PEs, by each
# method, without retraining; every method calibrated on the first 128 windows of 64
# characters of train.txt and measured on valid.txt's bytes RANGE (default all; the EIE
# bit-exact stage). Outputs go to out/calibrated/. About 2 minutes a method on two cores
# after the build with all of valid.txt.
#   bench/calibrated/shakespeare.sh [DENSITY [RANGE]]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/eie-compress
data=../shared/data/shakespeare
density=${1:-0.5}
range=${2:-0..}
out=out/calibrated
model=$out/shakespeare
mkdir -p "$out"
if [ ! -f "$model/config.json" ]; then
    echo "== train (the decoder of docs/results.md)"
    $bin -q train --dataset text:$data/train.txt --arch llama:layers=4,heads=4,width=128,context=64 \
        --steps 2000 -o "$model" --force
fi
calib=(--calibration text:$data/train.txt)
declare -a names flags
add() { names+=("$1"); flags+=("$2"); }
add "magnitude, k-means (Deep Compression)" ""
add "magnitude, balanced" "--balance"
add "magnitude + OBS update" "--update obs ${calib[*]}"
add "activation per row (Wanda)" "--prune-score activation --per-row ${calib[*]}"
add "activation per row + OBS + weighted codebook" "--prune-score activation --per-row --update obs --codebook-weight activation ${calib[*]}"
add "activation per layer + OBS + weighted codebook" "--prune-score activation --update obs --codebook-weight activation ${calib[*]}"
add "activation balanced + OBS + weighted codebook" "--prune-score activation --balance --update obs --codebook-weight activation ${calib[*]}"
add "activation per row + OBS + weighted optimal codebook" "--prune-score activation --per-row --update obs --codebook-weight activation --codebook optimal ${calib[*]}"
printf '| method | perplexity (EIE) | pruned + shared (float) | bits/weight | PE efficiency | compress s |\n|---|---|---|---|---|---|\n'
for i in "${!names[@]}"; do
    dir=$out/m$i-$density
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    $bin -q compress "$model" -o "$dir" --density "$density" --pes 64 \
        --dataset text:$data/valid.txt --range "$range" ${flags[$i]} --force > /dev/null
    end=$(date +%s.%N)
    python3 - "$dir/report.json" "${names[$i]}" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
stages = {s["stage"]: s for s in r["accuracy"]["stages"]}
eie = r["accuracy"]["stages"][-1]["perplexity"]
shared = stages["pruned + shared (float)"]["perplexity"]
t = r["totals"]
bits = 8 * t["bytes"]["total"] / t["weights"]
# Each layer's time is its busiest PE's: the model's efficiency is sum(mean) / sum(max).
mean = sum(l["entries_per_pe"]["mean"] for l in r["layers"])
most = sum(l["entries_per_pe"]["max"] for l in r["layers"])
print(f"| {sys.argv[2]} | {eie:.3f} | {shared:.3f} | {bits:.2f} | {100 * mean / most:.1f}% | {float(sys.argv[4]) - float(sys.argv[3]):.0f} |")
PY
done
