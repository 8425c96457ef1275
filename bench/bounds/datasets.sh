#!/usr/bin/env bash
# Memory and time of reading one sample of a large dataset, against reading it from a dataset
# of that one sample, in the same run (docs/performance.md, "Bounded by the work asked for"):
# `eval --range 0..1` of a 784-10 model on a safetensors dataset of 500,000 U8 samples
# (392 MB) and on IDX files of the same samples (raw and gzip); then `train` on two ranges of
# them. Needs python3 with numpy and safetensors; writes into out/bounds/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=$PWD/target/release/eie-compress
out=out/bounds
mkdir -p "$out"
cd "$out"
python3 - <<'PY'
import gzip, struct
import numpy as np
from safetensors.numpy import save_file
for n, name in ((500_000, "big"), (1, "one")):
    x = np.zeros((n, 784), dtype=np.uint8)
    x[:, ::7] = 128
    y = (np.arange(n) % 10).astype(np.int64)
    save_file({"inputs": x, "labels": y}, f"{name}.safetensors")
    head = struct.pack(">BBBBIII", 0, 0, 8, 3, n, 28, 28)
    with open(f"{name}-images-idx3-ubyte", "wb") as f:
        f.write(head + x.tobytes())
    with gzip.open(f"{name}-images-idx3-ubyte.gz", "wb", compresslevel=1) as f:
        f.write(head + x.tobytes())
    with open(f"{name}-labels-idx1-ubyte", "wb") as f:
        f.write(struct.pack(">BBBBI", 0, 0, 8, 1, n) + y.astype(np.uint8).tobytes())
PY
$bin -q train --dataset safetensors:one.safetensors --arch 784-10 --epochs 1 -o m.safetensors --force
measure() { # label, dataset spec
    /usr/bin/time -f "%e %M" -o t.txt $bin -q eval m.safetensors --dataset "$2" --range 0..1 >/dev/null
    read -r s kb < <(tail -1 t.txt)
    echo "$1 $s $kb"
}
printf '%-28s %8s %10s\n' "dataset (eval --range 0..1)" "time s" "peak KB"
for form in safetensors idx idx-gzip; do
    for size in big one; do
        case $form in
            safetensors) spec="safetensors:$size.safetensors" ;;
            idx) spec="idx:$size-images-idx3-ubyte,$size-labels-idx1-ubyte" ;;
            idx-gzip) spec="idx:$size-images-idx3-ubyte.gz,$size-labels-idx1-ubyte" ;;
        esac
        read -r label s kb < <(measure "$form-$size" "$spec")
        printf '%-28s %8s %10s\n' "$label" "$s" "$kb"
    done
done
# Two ranges of the large files: the dataset's headers are read once for the estimate, then
# each range alone.
printf '\n%-28s %8s %10s\n' "train, two ranges of 500k" "time s" "peak KB"
for form in safetensors idx idx-gzip; do
    case $form in
        safetensors) spec="safetensors:big.safetensors" ;;
        idx) spec="idx:big-images-idx3-ubyte,big-labels-idx1-ubyte" ;;
        idx-gzip) spec="idx:big-images-idx3-ubyte.gz,big-labels-idx1-ubyte" ;;
    esac
    /usr/bin/time -f "%e %M" -o t.txt $bin -q train --dataset "$spec" --range 0..100 \
        --eval-range 100..200 --arch 784-10 --epochs 1 -o two.safetensors --force >/dev/null
    read -r s kb < <(tail -1 t.txt)
    printf '%-28s %8s %10s\n' "$form" "$s" "$kb"
done
