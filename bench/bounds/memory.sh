#!/usr/bin/env bash
# The memory estimate commands make before any work (--max-memory, docs/reliability.md
# "Budgets") against the peak RSS the same command then measures: training, evaluating and
# compressing networks of every kind, simulating a packed model, sweeping and bench-paper at
# many PEs. The estimate is read from the refusal of a run given --max-memory 1 (or, where
# the model is estimated first on its own, a limit just above that); the target is a ratio
# within 2x. Needs python3 with numpy and safetensors (a 4096 x 9216 layer);
# writes into out/bounds/.
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
    case_at 1 "$@"
}
case_at() { # the limit that shows the estimate, label, then the command's arguments
    local limit=$1 label=$2
    shift 2
    local est
    est=$({ "$bin" -q "$@" --max-memory "$limit" 2>&1 || true; } | sed -n 's/.*need about \([0-9.]*\) \([A-Za-z]*\) of memory.*/\1 \2/p')
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
python3 - <<'PY'
import numpy as np
from safetensors.numpy import save_file
r = np.random.default_rng(0)
save_file({"fc6.weight": r.standard_normal((4096, 9216), dtype=np.float32),
           "fc7.weight": r.standard_normal((1000, 4096), dtype=np.float32)}, "alex.safetensors")
PY
"$bin" -q compress alex.safetensors -o alex-c --density 0.09 --pes 64 --force >/dev/null
case_ "simulate 4096x9216 + 1000x4096 at 9%" simulate alex-c
case_ "vectors of the same" vectors alex-c -o alex-v --force
case_ "sweep --param pes --values 4089..4096" sweep sw --param pes --values 4089,4090,4091,4092,4093,4094,4095,4096 --force
case_at 40M "sweep --param pes of the model, 1024,4096" sweep sw-m --param pes --values 1024,4096 --model alex-c --force
case_ "bench-paper --pes 4096" bench-paper --pes 4096
case_ "bench-paper --pes 1024 --cpu" bench-paper --pes 1024 --cpu
case_ "sweep --param pes --values 4096" sweep sw1 --param pes --values 4096 --force
rm -rf demo && "$bin" -q demo -o demo >/dev/null
case_at 17M "sweep --param pes of the demo, 2048 values" sweep sw-d --param pes --values "$(seq -s, 2049 4096)" --model demo/eie --force
case_ "bench-paper --pes 1" bench-paper --pes 1
case_at 40M "simulate --cpu of the 4096x9216 model" simulate alex-c --cpu
