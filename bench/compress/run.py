"""Compress benchmark: eie-compress against the Python pipeline and against one read of the
input, measured side by side in the same run.

    cargo build --release
    python3 bench/compress/run.py [--work DIR] [--repeat N] [--no-transformer]

Needs numpy, scipy, scikit-learn and safetensors (pip install numpy scipy scikit-learn
safetensors). Writes under DIR (default /tmp/eie-bench), generated, never committed:

- two Gaussian layers (seeded): Alex-7-shaped 4096 x 4096 pruned to 9% and VGG-6-shaped
  4096 x 25088 (411 MB of f32, VGG-16's fc6) pruned to 4%, both on 64 PEs with 4-bit codes
  and indices;
- a sharded bf16 decoder-only transformer in Hugging Face naming (make_transformer.py: 1.06 B
  weights, 1.97 GiB in 5 shards), compressed to 10% on 64 PEs.

Each whole-command run writes into a new folder after waiting SETTLE seconds (see below), so
a run with --repeat 3 takes about five minutes.

For each layer, the best of N runs of: the Python pipeline (baseline.py, stage by stage); the
whole `eie-compress compress` command (release build: hashing the input, writing the images,
model.eie, manifest and report; its peak RSS); the same stages alone in eie-compress (`cargo
bench -p eie-pipeline --bench stages`: prune, share, pack in memory, no hashing, no writing);
and `cat FILE > /dev/null`, one read of the same file. Prints markdown tables of times and
ratios, entries, SSE and memory.
"""

import argparse
import json
import os
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
            w = rng.standard_normal((rows, cols), dtype=np.float32) * np.float32(0.01)
            save_file({f"{name}.weight": w}, path)
        paths[name] = path
    return paths


def make_bf16(work, f32_path):
    """The VGG-6 layer again, as bf16 (rounded to nearest even): the same shape in the other
    dtype, for the prune rate per weight."""
    path = os.path.join(work, "vgg6-bf16.safetensors")
    if not os.path.exists(path):
        from safetensors.numpy import load_file
        w = load_file(f32_path)["vgg6.weight"]
        u = w.view(np.uint32)
        bits = ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)
        header = json.dumps({"vgg6.weight": {"dtype": "BF16", "shape": list(w.shape),
                                             "data_offsets": [0, bits.nbytes]}}).encode()
        header += b" " * (-len(header) % 8)
        with open(path, "wb") as f:
            f.write(len(header).to_bytes(8, "little"))
            f.write(header)
            f.write(bits.tobytes())
    return path


def timed(cmd):
    """Runs cmd under /usr/bin/time: (wall seconds, peak RSS MiB, stdout, stderr)."""
    start = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "MAXRSS_KB %M", *cmd], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if p.returncode != 0:
        sys.exit(f"{cmd[0]} failed: {p.stderr}")
    rss_kb = next(int(l.split()[1]) for l in p.stderr.splitlines() if l.startswith("MAXRSS_KB"))
    return wall, rss_kb / 1024, p.stdout, p.stderr


def timings(stderr):
    line = next(l for l in stderr.splitlines() if l.startswith("timings (ms):"))
    parts = line.split(":", 1)[1].split()
    return {parts[i]: float(parts[i + 1]) / 1e3 for i in range(0, len(parts), 2)}


# ext4 creates files several times slower for about 30 s after many were deleted (its inode
# allocator steps over recently deleted inodes), which a benchmark that replaces its own
# output run after run would measure instead of the tool: each whole-command run writes into
# a new folder, the previous one removed and that time waited out first.
SETTLE = 35


def run_rust(path, density, out, extra=()):
    subprocess.run(["rm", "-rf", out], check=True)
    time.sleep(SETTLE)
    cmd = [BIN, "compress", path, "-o", out, "--density", str(density), "--pes", "64",
           "--timings", "--json", "--allow-overflow", "--pointer-bits", "32", "-q", *extra]
    wall, rss, stdout, stderr = timed(cmd)
    report = json.loads(stdout)
    layer = report["layers"][0]
    return {"wall": wall, "stages": timings(stderr), "rss_mb": rss, "entries": layer["entries"],
            "padding": layer["padding"], "sse": layer["quantization"]["sse"], "report": report}


def run_stages(path, density, repeat):
    p = subprocess.run(["cargo", "bench", "-q", "-p", "eie-pipeline", "--bench", "stages", "--",
                        path, str(density), "64", str(repeat)], capture_output=True, text=True, cwd=ROOT)
    if p.returncode != 0:
        sys.exit(f"the stages bench failed: {p.stderr}")
    return json.loads(p.stdout.strip().splitlines()[-1])


def run_python(path, tensor, density):
    p = subprocess.run([sys.executable, os.path.join(HERE, "baseline.py"), path, tensor, str(density), "64"],
                       capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit(f"baseline failed: {p.stderr}")
    return json.loads(p.stdout)


def read_once(path):
    start = time.perf_counter()
    subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--work", default="/tmp/eie-bench")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-transformer", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    paths = make(args.work)
    n = args.repeat
    print(f"nproc {os.cpu_count()}, {n} runs each, best kept\n")
    rows = []
    for name, r, c, density in LAYERS:
        path = paths[name]
        read = min(read_once(path) for _ in range(n))
        py = min((run_python(path, f"{name}.weight", density) for _ in range(n)),
                 key=lambda x: x["seconds"]["total"])
        rs = min((run_rust(path, density, os.path.join(args.work, f"out-{name}"), ["--no-bias-column"])
                  for _ in range(min(n, 3))), key=lambda x: x["wall"])
        st = run_stages(path, density, n)
        rows.append((name, r, c, density, py, rs, st, read, r * c * 4 / 2**20))

    print("| layer | what | Python (s) | eie-compress (s) | speed-up |")
    print("|---|---|---|---|---|")
    for name, r, c, d, py, rs, st, read, _ in rows:
        s = py["seconds"]
        pairs = [("load + prune", s["load"] + s["prune"], st["prune"]),
                 ("k-means and codes", s["kmeans"] + s["assign"], st["cluster"] + st["assign"]),
                 ("pack (CSC per PE + padding / encode)", s["pack"], st["encode"]),
                 ("**the same stages alone**", s["total"], st["total"]),
                 ("**whole command** (also hashes the input, writes images, model.eie, report)",
                  s["total"], rs["wall"])]
        for what, a, b in pairs:
            print(f"| {name} {r}x{c} @ {d:.0%} | {what} | {a:.3f} | {b:.3f} | {a / max(b, 1e-9):.1f}x |")
    print()
    print("| layer | one read (`cat`) | whole command | command / read | stages in the command (prune, cluster, assign, encode, write, hash-wait) |")
    print("|---|---|---|---|---|")
    for name, r, c, d, py, rs, st, read, _ in rows:
        t = rs["stages"]
        inner = ", ".join(f"{t[k]:.3f}" for k in ["prune", "cluster", "assign", "encode", "write", "hash-wait"])
        print(f"| {name} | {read:.3f} s | {rs['wall']:.3f} s | {rs['wall'] / max(read, 1e-9):.1f}x | {inner} |")
    print()
    print("| layer | entries (Python / ours) | padding (Python / ours) | k-means SSE Python | SSE ours | peak RSS ours | tensor | RSS / tensor |")
    print("|---|---|---|---|---|---|---|---|")
    for name, r, c, d, py, rs, st, read, mb in rows:
        print(f"| {name} | {py['entries']} / {rs['entries']} | {py['padding']} / {rs['padding']} | {py['sse']:.6g} | "
              f"{rs['sse']:.6g} | {rs['rss_mb']:.0f} MiB | {mb:.0f} MiB | {rs['rss_mb'] / mb:.2f} |")

    bf16 = run_stages(make_bf16(args.work, paths["vgg6"]), 0.04, n)
    f32 = next(x for x in rows if x[0] == "vgg6")[6]
    weights = 4096 * 25088
    print()
    print("| VGG-6 layer, stages alone | prune | prune rate |")
    print("|---|---|---|")
    for dtype, st in [("f32", f32), ("bf16", bf16)]:
        print(f"| {dtype} | {st['prune']:.3f} s | {weights / st['prune'] / 1e6:.0f} M weights/s |")

    if args.no_transformer:
        return
    lm = os.path.join(args.work, "lm")
    subprocess.run([sys.executable, os.path.join(HERE, "make_transformer.py"), lm], check=True)
    index = os.path.join(lm, "model.safetensors.index.json")
    files = [os.path.join(lm, f) for f in sorted(os.listdir(lm)) if f.endswith(".safetensors")]
    size = sum(os.path.getsize(f) for f in files)
    read = min(sum(read_once(f) for f in files) for _ in range(2))
    # 32 766 image files, into a new folder after the settling time (see SETTLE), once.
    out = os.path.join(args.work, "out-lm")
    subprocess.run(["rm", "-rf", out], check=True)
    time.sleep(SETTLE)
    wall, rss, stdout, stderr = timed([BIN, "compress", index, "-o", out, "--density", "0.1", "--pes", "64",
                                       "--pointer-bits", "32", "--allow-overflow", "--timings", "--json", "-q"])
    report, t = json.loads(stdout), timings(stderr)
    weights = report["totals"]["weights"]
    largest = max(l["rows"] * l["inputs"] for l in report["layers"]) * 4 / 2**20
    print()
    print("| checkpoint | size | layers | weights | whole command | one read | peak RSS | largest tensor (f32) | RSS / largest | prune rate in the command |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| transformer, {len(files)} bf16 shards | {size / 2**30:.2f} GiB | {len(report['layers'])} "
          f"(+{len(report.get('skipped', []))} skipped) | {weights / 1e9:.2f} B | {wall:.1f} s | {read:.2f} s | "
          f"{rss:.0f} MiB | {largest:.0f} MiB | {rss / largest:.2f} | {weights / t['prune'] / 1e6:.0f} M weights/s |")
    print(f"\ntransformer stages in the command (s): {json.dumps(t)}")


if __name__ == "__main__":
    main()
