"""Training speed of `eie-compress train` (burn) against PyTorch training the same model with
the same batch and optimiser on this machine, side by side in one run, interleaved and
repeated (the median of REPEATS pairs):

- the MNIST classifiers docs/results.md trains (LeNet-300-100, LeNet-5, the LSTM 128), Adam
  at 1e-3, batches of 64, on the test set's images 0..8000: seconds per epoch;
- an LSTM language model (`tok-embed128-lstm256` on Shakespeare's characters), the tool's
  language-model recipe (AdamW, decay 0.1 on the matrices, global-norm clipping at 1, warm-up
  then cosine), steps of 12 windows of 64 characters: seconds per 100 steps.

A figure of ours is the difference of two whole runs of the command, one with more epochs
(steps) than the other, divided by the difference: process start, loading and the held-out
evaluation cancel out. PyTorch's is its training loop's own time over the same extra epochs
(steps), after a first one that warms it up. Both use the same number of threads
(--threads, default the machine's cores: torch.set_num_threads, and RAYON_NUM_THREADS for
ours; on the 2-core development machine, 2).

    cargo build --release
    ~/.cache/eie-compress/torch-2.5.1/bin/python bench/train/speed.py [--repeats 3]

Prints a markdown table: ours, PyTorch's and the ratio (above 1: ours is faster).
"""

import argparse
import gzip
import math
import os
import re
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = ROOT / "target" / "release" / "eie-compress"
SHARED = ROOT.parent / "shared" / "data"
MNIST = SHARED / "mnist"
TEXT = SHARED / "shakespeare" / "train.txt"

CLASSIFIERS = [
    ("LeNet-300-100", "784-300-100-10"),
    ("LeNet-5", "1x28x28-conv20k5-maxpool2-conv50k5-maxpool2-500-10"),
    ("LSTM 128", "28x28-lstm128-10"),
]
LM = "tok-embed128-lstm256"
ENV = dict(os.environ)


class Lstm(torch.nn.Module):
    """`28x28-lstm128-10`: the rows of an image as 28 steps, the last step's state classified."""

    def __init__(self):
        super().__init__()
        self.lstm = torch.nn.LSTM(28, 128, batch_first=True)
        self.fc = torch.nn.Linear(128, 10)

    def forward(self, x):
        h, _ = self.lstm(x.reshape(-1, 28, 28))
        return self.fc(h[:, -1])


class LstmLm(torch.nn.Module):
    """`tokV-embed128-lstm256-V`."""

    def __init__(self, vocab):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, 128)
        self.lstm = torch.nn.LSTM(128, 256, batch_first=True)
        self.fc = torch.nn.Linear(256, vocab)

    def forward(self, ids):
        h, _ = self.lstm(self.embed(ids))
        return self.fc(h)


def torch_classifier(arch):
    nn = torch.nn
    if arch.startswith("784"):
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 300), nn.ReLU(), nn.Linear(300, 100),
                             nn.ReLU(), nn.Linear(100, 10))
    if arch.startswith("1x28"):
        return nn.Sequential(nn.Unflatten(1, (1, 28, 28)), nn.Conv2d(1, 20, 5), nn.MaxPool2d(2),
                             nn.Conv2d(20, 50, 5), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(800, 500), nn.ReLU(), nn.Linear(500, 10))
    return Lstm()


def mnist(n):
    raw = gzip.open(MNIST / "t10k-images-idx3-ubyte.gz").read()[16:]
    x = np.frombuffer(raw, np.uint8).reshape(-1, 784)[:n].astype(np.float32) / 255.0
    y = np.frombuffer(gzip.open(MNIST / "t10k-labels-idx1-ubyte.gz").read()[8:], np.uint8)[:n]
    return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))


def torch_epochs(arch, x, y, epochs, batch):
    """Seconds of each epoch of Adam on (x, y)."""
    torch.manual_seed(0)
    model = torch_classifier(arch)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-8)
    loss_fn = torch.nn.CrossEntropyLoss()
    times = []
    for e in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(e))
        for i in range(0, len(x), batch):
            idx = order[i:i + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[idx]), y[idx]).backward()
            opt.step()
        times.append(time.perf_counter() - start)
    return times


def lr_at(i, steps, lr, min_lr, warmup):
    if i < warmup:
        return lr * (i + 1) / (warmup + 1)
    progress = min((i - warmup) / max(steps - warmup, 1), 1.0)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def torch_lm_steps(ids, vocab, steps, batch, t):
    """Seconds of each step of the language-model recipe."""
    torch.manual_seed(0)
    model = LstmLm(vocab)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    keep = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1},
                             {"params": keep, "weight_decay": 0.0}],
                            lr=1e-3, betas=(0.9, 0.99), eps=1e-8)
    data = torch.tensor(ids)
    gen = torch.Generator().manual_seed(0)
    times = []
    for i in range(steps):
        start = time.perf_counter()
        starts = torch.randint(0, len(ids) - t - 1, (batch,), generator=gen)
        x = torch.stack([data[s:s + t] for s in starts])
        y = torch.stack([data[s + 1:s + 1 + t] for s in starts])
        for g in opt.param_groups:
            g["lr"] = lr_at(i, steps, 1e-3, 1e-4, 100)
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
    return times


def ours(args, work):
    """Wall seconds of one `eie-compress train` run."""
    start = time.perf_counter()
    subprocess.run([str(BIN), "-q", "train", "--out", str(work), "--force", *args], check=True,
                   stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=3, help="extra epochs timed (after one)")
    ap.add_argument("--steps", type=int, default=300, help="extra LM steps timed (after 100)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", type=Path, default=Path("/tmp/eie-train-speed"))
    args = ap.parse_args()
    if not MNIST.is_dir() or not TEXT.is_file():
        raise SystemExit(f"needs {MNIST} and {TEXT} (../shared/data beside the repository)")
    torch.set_num_threads(args.threads)
    ENV["RAYON_NUM_THREADS"] = str(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    x, y = mnist(8000)
    rows = []
    for name, arch in CLASSIFIERS:
        common = ["--arch", arch, "--dataset", f"mnist:{MNIST}", "--range", "0..8000",
                  "--eval-range", "8000..8001", "--batch-size", "64"]
        work = args.work / "classifier.safetensors"
        pairs = []
        for _ in range(args.repeats):
            short = ours([*common, "--epochs", "1"], work)
            long = ours([*common, "--epochs", str(1 + args.epochs)], work)
            theirs = torch_epochs(arch, x, y, 1 + args.epochs, 64)
            pairs.append(((long - short) / args.epochs, statistics.mean(theirs[1:])))
        rows.append((f"{name} (`{arch}`), batch 64", "s/epoch", pairs))
        print(f"{name}: {pairs}", flush=True)
    text = TEXT.read_text(encoding="utf-8")
    chars = sorted(set(text))
    lookup = {c: i for i, c in enumerate(chars)}
    ids = [lookup[c] for c in text]
    common = ["--arch", LM, "--dataset", f"text:{TEXT}", "--batch-size", "12", "--context", "64"]
    work = args.work / "lm"
    pairs = []
    for _ in range(args.repeats):
        short = ours([*common, "--steps", "100"], work)
        long = ours([*common, "--steps", str(100 + args.steps)], work)
        theirs = torch_lm_steps(ids, len(chars) + 1, 100 + args.steps, 12, 64)
        pairs.append(((long - short) / args.steps * 100, statistics.mean(theirs[100:]) * 100))
    rows.append((f"LSTM language model (`{LM}`), 12 x 64 characters", "s/100 steps", pairs))
    print(f"LM: {pairs}", flush=True)
    print(f"\n| model | unit | eie-compress | PyTorch {torch.__version__} ({args.threads} threads) "
          "| PyTorch / ours |")
    print("|---|---|---|---|---|")
    for name, unit, pairs in rows:
        a = statistics.median(p[0] for p in pairs)
        b = statistics.median(p[1] for p in pairs)
        print(f"| {name} | {unit} | {a:.3f} | {b:.3f} | {b / a:.2f}x |")
    print(f"\n(median of {args.repeats} interleaved pairs; {args.epochs} epochs, {args.steps} steps)")


if __name__ == "__main__":
    main()
