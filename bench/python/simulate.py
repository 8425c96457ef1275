"""What a `simulate` call costs from Python against the same work in the command line, side
by side in one run (the median of --repeats calls each, interleaved):

- cli: `eie-compress --quiet simulate DIR --input x.safetensors --json`, the whole process
  (start, reading model.eie, the run, the JSON on stdout);
- cli start: `eie-compress --version`, the process alone; cli minus it is the command's work;
- python load+simulate: `eie_compress.load(DIR).simulate(x)`, the same work in one call;
- python simulate: `Compressed.simulate(x)` on a model loaded once, as a testbench calls it;
- python overhead: `simulate` on the 4 x 8 Figure 2 layer, whose run is negligible: what
  crossing the boundary costs a call (arguments, arrays, the report as a dict).

The model is LeNet-300-100's shape (784-300-100-10, biases folded), random weights, 8% kept,
4-bit codes, 64 PEs; one input vector.

    cargo build --release && pip install ./crates/python
    python bench/python/simulate.py [--repeats 50]

Prints a markdown table: milliseconds per call and the ratio to the command's work.
"""

import argparse
import json
import statistics
import struct
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

import eie_compress as eie

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / "target" / "release" / "eie-compress"


def save_x(x: np.ndarray, path: Path) -> None:
    data = x.astype("<f4").tobytes()
    header = json.dumps({"x": {"dtype": "F32", "shape": [len(x)], "data_offsets": [0, len(data)]}})
    header = header.encode() + b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + data)


def timed(f) -> float:
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=50)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    tensors = {}
    for i, (n_in, n_out) in enumerate([(784, 300), (300, 100), (100, 10)], start=1):
        tensors[f"fc{i}.weight"] = rng.normal(0, 0.05, (n_out, n_in)).astype(np.float32)
        tensors[f"fc{i}.bias"] = rng.normal(0, 0.05, n_out).astype(np.float32)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        held = eie.compress(tensors, tmp / "lenet", pes=64, density=0.08, code_bits=4, quiet=True)
        tiny = eie.pack(ROOT / "fixtures" / "figure2.safetensors", tmp / "f2", pes=4, quiet=True)
        x = rng.uniform(0, 1, 784).astype(np.float32)
        save_x(x, tmp / "x.safetensors")
        x_tiny = np.ones(tiny.layers[0].inputs, dtype=np.float32)
        cli = [str(BIN), "--quiet", "simulate", str(tmp / "lenet"), "--input", str(tmp / "x.safetensors"), "--json"]
        # The same report both ways, or the timing compares different work.
        want = json.loads(subprocess.run(cli, capture_output=True, check=True).stdout)
        assert held.simulate(x).report == want
        runs = {
            "cli": lambda: subprocess.run(cli, capture_output=True, check=True),
            "cli start": lambda: subprocess.run([str(BIN), "--version"], capture_output=True, check=True),
            "python load+simulate": lambda: eie.load(tmp / "lenet").simulate(x),
            "python simulate": lambda: held.simulate(x),
            "python overhead": lambda: tiny.simulate(x_tiny),
        }
        times = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, f in runs.items():
                times[name].append(timed(f))
    ms = {name: 1e3 * statistics.median(t) for name, t in times.items()}
    work = ms["cli"] - ms["cli start"]
    print(f"| call | ms | / the command's work ({work:.2f} ms) |")
    print("|---|---|---|")
    for name, t in ms.items():
        print(f"| {name} | {t:.2f} | {t / work:.2f}x |")


if __name__ == "__main__":
    main()
