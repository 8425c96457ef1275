"""Co-simulates random models through `eie-compress rtl-check` (docs/rtl.md): each case a
chained model of 1-3 layers (up to 90 units, biases on 70% of the layers) compressed with a
random PE count, code and index widths, density and column batches, then checked with a
random queue depth, accumulator width and activation density. Prints one line per case and
the count that PASSed; exits 1 if any did not. Deterministic for a given range of seeds.

    python3 rtl/random_cases.py [FIRST [LAST]]      (default 1 100)

Needs numpy, safetensors, iverilog, and a release build (`cargo build --release`).
"""

import os
import random
import subprocess
import sys
import tempfile

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
BINARY = os.path.join(HERE, "..", "target", "release", "eie-compress")


def case(seed, folder):
    rng = np.random.default_rng(seed)
    layers = int(rng.integers(1, 4))
    sizes = [int(rng.integers(1, 90)) for _ in range(layers + 1)]
    tensors = {}
    for i in range(layers):
        tensors[f"l{i}.weight"] = rng.normal(size=(sizes[i + 1], sizes[i])).astype(np.float32)
        if rng.random() < 0.7:
            tensors[f"l{i}.bias"] = rng.normal(size=(sizes[i + 1],)).astype(np.float32)
    model = os.path.join(folder, "m.safetensors")
    save_file(tensors, model)
    pick = random.Random(seed)
    knobs = {
        "pes": pick.choice([1, 2, 3, 4, 5, 7, 8, 16, 17, 64]),
        "index-bits": pick.choice([1, 2, 3, 4]),
        "code-bits": pick.choice([1, 2, 4, 8]),
        "density": pick.choice([0.02, 0.1, 0.3, 0.7, 1.0]),
        "column-batch": pick.choice(["0", "0", "5", "13", "auto"]),
    }
    checks = {
        "fifo": pick.choice([1, 2, 3, 8]),
        "acc-bits": pick.choice([20, 32, 32, 40]),
        "act-density": pick.choice([0.0, 0.3, 1.0]),
        "seed": seed,
    }
    out = os.path.join(folder, "out")
    flags = lambda d: [x for k, v in d.items() for x in (f"--{k}", str(v))]
    subprocess.run([BINARY, "compress", model, "-o", out] + flags(knobs), check=True,
                   capture_output=True)
    run = subprocess.run([BINARY, "rtl-check", out] + flags(checks), capture_output=True,
                         text=True)
    last = (run.stdout + run.stderr).strip().splitlines()[-1]
    settings = " ".join(f"{k}={v}" for k, v in {**knobs, **checks}.items())
    return run.returncode == 0, f"case {seed} ({layers} layers) {settings}: {last}"


def main():
    first = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    last = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    passed = 0
    for seed in range(first, last + 1):
        with tempfile.TemporaryDirectory() as folder:
            ok, line = case(seed, folder)
        passed += ok
        print(line, flush=True)
    total = last - first + 1
    print(f"{passed} of {total} cases PASS")
    sys.exit(0 if passed == total else 1)


if __name__ == "__main__":
    main()
