"""How long headless Chromium takes to open and draw the HTML report of a 127-layer
transformer, against a blank page in the same run (the difference is the report's cost).

    cargo build --release && python3 bench/report/open.py [--runs 5] [--chromium chromium]

Makes a Llama-named decoder of 18 blocks (q, k, v, o, gate, up, down) plus its head with
bench/compress/make_transformer.py (hidden 256, MLP 704, vocabulary 1024: the page's size
grows with layers and PEs, not with weights), compresses it at 10% for 64 PEs (report.html)
and renders `eie-compress report` (with a simulation). Prints each page's size and the
median of --runs screenshots' wall time, blank page first, alternating. Needs numpy.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "eie-compress")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--chromium", default="chromium")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as work:
        ck = os.path.join(work, "ck")
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "bench", "compress", "make_transformer.py"), ck,
             "--hidden", "256", "--mlp", "704", "--vocab", "1024", "--shards", "2"],
            check=True)
        eie = os.path.join(work, "eie")
        subprocess.run([BIN, "--quiet", "compress", os.path.join(ck, "model.safetensors.index.json"),
                        "-o", eie, "--pes", "64", "--density", "0.1"], check=True,
                       stdout=subprocess.DEVNULL)
        page = os.path.join(work, "page.html")
        subprocess.run([BIN, "report", eie, "-o", page], check=True, stdout=subprocess.DEVNULL)
        blank = os.path.join(work, "blank.html")
        with open(blank, "w") as f:
            f.write("<!DOCTYPE html><title>blank</title><p>blank</p>")
        pages = {"blank": blank, "report.html": os.path.join(eie, "report.html"), "report page": page}

        def shot(path):
            start = time.perf_counter()
            subprocess.run(
                [args.chromium, "--headless", "--no-sandbox", "--disable-gpu",
                 f"--user-data-dir={os.path.join(work, 'profile')}",
                 f"--screenshot={os.path.join(work, 'shot.png')}", "--window-size=1200,900",
                 "file://" + path],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            return time.perf_counter() - start

        shot(blank)  # the profile's first start
        times = {k: [] for k in pages}
        for _ in range(args.runs):
            for k, p in pages.items():
                times[k].append(shot(p))
        base = statistics.median(times["blank"])
        for k, p in pages.items():
            m = statistics.median(times[k])
            print(f"{k:12} {os.path.getsize(p):>10,} bytes  median {m:.2f} s  "
                  f"(+{m - base:.2f} s over the blank page)")


if __name__ == "__main__":
    main()
