#!/usr/bin/env bash
# Reproduces docs/results.md's "Distilling a sentence encoder" table: the BERT-family encoder
# bench/calibrated/encoder.py trains (made once, about 20 minutes on two cores, with the
# Python of EIE_TORCH_PYTHON), compressed at one density (default 0.5), 4-bit codes, 64 PEs:
# without retraining, and distilled toward the original's sentence embeddings of
# train.txt's first 4,096 distinct lines (EPOCHS masked and centroid fine-tuning epochs,
# default 3); every output then measured by eval on the distinct lines of valid.txt's bytes
# RANGE (default 0..60000: 1,453 distinct lines; the EIE bit-exact stage). Outputs go to
# out/calibrated/. About 4 minutes a method on two cores.
#   bench/calibrated/encoder.sh [DENSITY [EPOCHS [RANGE]]]
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=target/release/eie-compress
data=../shared/data/shakespeare
density=${1:-0.5}
epochs=${2:-3}
range=${3:-0..60000}
out=out/calibrated
model=$out/bert
python=${EIE_TORCH_PYTHON:-python3}
mkdir -p "$out"
if [ ! -f "$model/config.json" ]; then
    echo "== train (the encoder of docs/results.md)"
    TRANSFORMERS_VERBOSITY=error "$python" bench/calibrated/encoder.py "$data/train.txt" "$model" 2500 2
fi
train=(--dataset "text:$data/train.txt" --range 0..400000 --eval-range 400000..500000)
declare -a names flags
add() { names+=("$1"); flags+=("$2"); }
add "magnitude, k-means (Deep Compression)" ""
add "activation + OBS + weighted codebook (calibrated)" "--calibration text:$data/train.txt --prune-score activation --update obs --codebook-weight activation"
add "distilled, magnitude" "--retrain --distill --epochs $epochs"
add "distilled, activation + OBS (calibrated), weighted codebook" "--retrain --distill --epochs $epochs --calibration text:$data/train.txt --prune-score activation --update obs --codebook-weight activation"
add "distilled, magnitude, gradient-weighted codebook" "--retrain --distill --epochs $epochs --codebook-weight gradient"
add "distilled, magnitude, balanced" "--retrain --distill --epochs $epochs --balance"
printf '| method | mean cosine (EIE) | rank corr. | top-1 | bits/weight | PE efficiency | compress s |\n|---|---|---|---|---|---|---|\n'
for i in "${!names[@]}"; do
    dir=$out/bert-m$i-$density
    start=$(date +%s.%N)
    # shellcheck disable=SC2086
    $bin -q compress "$model" -o "$dir" --density "$density" --pes 64 "${train[@]}" \
        ${flags[$i]} --force > /dev/null
    end=$(date +%s.%N)
    $bin -q eval "$model" "$dir" --dataset "text:$data/valid.txt" --range "$range" --json > "$dir.eval.json"
    python3 - "$dir/report.json" "$dir.eval.json" "${names[$i]}" "$start" "$end" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
e = json.load(open(sys.argv[2]))
eie = e["stages"][-1]
t = r["totals"]
bits = 8 * t["bytes"]["total"] / t["weights"]
mean = sum(l["entries_per_pe"]["mean"] for l in r["layers"])
most = sum(l["entries_per_pe"]["max"] for l in r["layers"])
print(f"| {sys.argv[3]} | {eie['cosine']:.4f} | {eie['rank_correlation']:.4f} | {100 * eie['top1']:.2f}% | {bits:.2f} | {100 * mean / most:.1f}% | {float(sys.argv[5]) - float(sys.argv[4]):.0f} |")
PY
done
