#!/usr/bin/env bash
# Memory and time of the cases docs/performance.md's "Bounded by the work asked for" lists,
# each beside a baseline measured in the same run: a checkpoint of 500,000 [1, 1] tensors
# against one of a single tensor (compress --layers l1.weight), PE sweeps of eight and four
# values against one value, and bench-paper on 4096 PEs with 4096-slot queues against the paper's
# 64 PEs. Needs python3 with numpy and safetensors; writes into out/bounds/.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release --quiet
bin=$PWD/target/release/eie-compress
out=out/bounds
mkdir -p "$out"
cd "$out"
python3 - <<'PY'
import numpy as np
from safetensors.numpy import save_file
a = np.full((1, 1), 0.5, dtype=np.float32)
for n, name in ((500_000, "many"), (2, "few")):
    save_file({f"l{i}.weight": a for i in range(n)}, f"{name}.safetensors")
PY
measure() { # label, then the command's arguments
    local label=$1
    shift
    /usr/bin/time -f "%e %M" -o t.txt "$bin" -q "$@" >/dev/null 2>&1 || true
    read -r s kb < <(tail -1 t.txt)
    printf '%-44s %8s %10s\n' "$label" "$s" "$kb"
}
printf '%-44s %8s %10s\n' "case" "time s" "peak KB"
measure "compress --layers l1.weight, 500,000 tensors" compress many.safetensors -o c1 --layers l1.weight --force
measure "compress --layers l1.weight, 2 tensors" compress few.safetensors -o c2 --layers l1.weight --force
measure "compress, 500,000 layers (refused)" compress many.safetensors -o c3 --force
rm -rf s1 s4 s8
measure "sweep --param pes --values 4089..4096" sweep s8 --param pes --values 4089,4090,4091,4092,4093,4094,4095,4096
measure "sweep --param pes --values 4093..4096" sweep s4 --param pes --values 4093,4094,4095,4096
measure "sweep --param pes --values 4096" sweep s1 --param pes --values 4096
measure "bench-paper --pes 4096 --fifo 4096" bench-paper --pes 4096 --fifo 4096
measure "bench-paper (64 PEs)" bench-paper
