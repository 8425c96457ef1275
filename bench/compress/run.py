"""Compress benchmark: eie-compress against the Python pipeline, in the same session.

    cargo build --release
    python3 bench/compress/run.py [--work DIR] [--repeat N]

Needs numpy, scipy, scikit-learn and safetensors (pip install numpy scipy scikit-learn
safetensors). Writes two Gaussian layers (seeded) under DIR (default /tmp/eie-bench):
Alex-7-shaped 4096 x 4096 pruned to 9% and VGG-6-shaped 4096 x 25088 pruned to 4%, both on
64 PEs with 4-bit codes and indices. For each layer, runs the Python pipeline
(baseline.py) and `eie-compress compress` (release build, --timings), the best of N runs
each, measures the peak RSS of every eie-compress run, and prints a markdown table of times
and ratios, entries and SSE.
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
BIN = os.path.join(ROOT, "target", "release", "eie-compress")
LAYERS = [("alex7", 4096, 4096, 0.09), ("vgg6", 4096, 25088, 0.04)]


def make(work):
    paths = {}
    for name, rows, cols, _ in LAYERS:
        path = os.path.join(work, f"{name}.safetensors")
        if not os.path.exists(path):
            rng = np.random.default_rng(2016)
            w = (rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.01))
            save_file({f"{name}.weight": w}, path)
        paths[name] = path
    return paths


def run_rust(path, density, out):
    cmd = [BIN, "compress", path, "-o", out, "--force", "--density", str(density), "--pes", "64",
           "--no-bias-column", "--timings", "--json", "--allow-overflow", "--pointer-bits", "32"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"eie-compress failed: {p.stderr}")
    rss_kb = next(int(l.split()[1]) for l in p.stderr.splitlines() if l.startswith("MAXRSS_KB"))
    timing_line = next(l for l in p.stderr.splitlines() if l.startswith("timings (ms):"))
    parts = timing_line.split(":", 1)[1].split()
    stages = {parts[i]: float(parts[i + 1]) / 1e3 for i in range(0, len(parts), 2)}
    report = json.loads(p.stdout)
    layer = report["layers"][0]
    return {"wall": wall, "stages": stages, "rss_mb": rss_kb / 1024, "entries": layer["entries"],
            "padding": layer["padding"], "sse": layer["quantization"]["sse"]}


def run_python(path, tensor, density):
    p = subprocess.run([sys.executable, os.path.join(HERE, "baseline.py"), path, tensor, str(density), "64"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"baseline failed: {p.stderr}")
    return json.loads(p.stdout)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/eie-bench")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    paths = make(args.work)
    print(f"nproc {os.cpu_count()}, {args.repeat} runs each, best kept\n")
    rows = []
    for name, r, c, density in LAYERS:
        py = min((run_python(paths[name], f"{name}.weight", density) for _ in range(args.repeat)),
                 key=lambda x: x["seconds"]["total"])
        rs = min((run_rust(paths[name], density, os.path.join(args.work, f"out-{name}")) for _ in range(args.repeat)),
                 key=lambda x: x["wall"])
        tensor_mb = r * c * 4 / 2**20
        rows.append((name, r, c, density, py, rs, tensor_mb))

    print("| layer | stage | Python (s) | eie-compress (s) | speed-up |")
    print("|---|---|---|---|---|")
    for name, r, c, d, py, rs, _ in rows:
        st = rs["stages"]
        pipeline = st["read"] + st["prune"] + st["cluster"] + st["assign"] + st["encode"]
        pairs = [("load + prune (ours reads the mapped file while pruning)",
                  py["seconds"]["load"] + py["seconds"]["prune"], st["read"] + st["prune"]),
                 ("k-means", py["seconds"]["kmeans"], st["cluster"]),
                 ("codes", py["seconds"]["assign"], st["assign"]),
                 ("pack (CSC per PE + padding / encode)", py["seconds"]["pack"], st["encode"]),
                 ("end to end, the same stages", py["seconds"]["total"], pipeline),
                 ("whole command (ours also hashes the input and writes images, bundle, pruned and quantized checkpoints, report)",
                  py["seconds"]["total"], rs["wall"])]
        for stage, a, b in pairs:
            print(f"| {name} {r}x{c} @ {d:.0%} | {stage} | {a:.3f} | {b:.3f} | {a / max(b, 1e-9):.1f}x |")
    print()
    print("| layer | entries (Python / ours) | padding (Python / ours) | k-means SSE Python | SSE ours | peak RSS ours | tensor | RSS / tensor |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r, c, d, py, rs, mb in rows:
        print(f"| {name} | {py['entries']} / {rs['entries']} | {py['padding']} / {rs['padding']} | {py['sse']:.6g} | "
              f"{rs['sse']:.6g} | {rs['rss_mb']:.0f} MiB | {mb:.0f} MiB | {rs['rss_mb'] / mb:.2f} |")
    print()
    for name, *_, py, rs, _ in rows:
        print(f"{name}: eie-compress stages (s) {json.dumps(rs['stages'])}; the end-to-end time also writes the "
              f"images, pruned.safetensors, quantized.safetensors and report.json; Python writes nothing")


if __name__ == "__main__":
    main()
