"""`eie-compress train` of a decoder on Shakespeare against PyTorch training the same model,
side by side in one run: same shape (nanoGPT's CPU setting by default: 4 layers, 4 heads,
width 128, context 64), same character tokens, the same windows at every step (this script
draws them with the tool's own generator), the same recipe (AdamW with decay on matrices
only, global-norm clipping, warm-up then cosine), the same steps; PyTorch with its own
initial values. Both models' validation losses are measured by `transformers` on the same
windows of valid.txt (the tool's folder loaded as it is), and its own `eval` is run on the
folder too.

    cargo build --release
    python bench/language/train.py [--steps 2000] [--threads N] [--work DIR]

Needs torch and transformers (~/.cache/eie-compress/torch-2.5.1/bin/python, which .ci/run
builds). Writes the tool's folder under DIR (default /tmp/eie-lm-train). Prints a markdown
table: wall time, validation loss, and the ratios.
"""

import argparse
import json
import math
import os
import subprocess
import time
from pathlib import Path

import torch
import transformers as tf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = ROOT / "target" / "release" / "eie-compress"
DATA = ROOT.parent / "shared" / "data" / "shakespeare"
MASK = (1 << 64) - 1
SHUFFLE_STREAM = 0x7368_7566_666C_6521


class Rng:
    """eie_rng::Rng: xoshiro256** seeded by SplitMix64, `below` by Lemire's method."""

    def __init__(self, seed):
        x = seed
        s = []
        for _ in range(4):
            x = (x + 0x9E3779B97F4A7C15) & MASK
            z = x
            z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
            z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
            s.append(z ^ (z >> 31))
        self.s = s

    def next_u64(self):
        s = self.s
        rotl = lambda v, k: ((v << k) | (v >> (64 - k))) & MASK
        result = (rotl((s[1] * 5) & MASK, 7) * 9) & MASK
        t = (s[1] << 17) & MASK
        s[2] ^= s[0]
        s[3] ^= s[1]
        s[1] ^= s[2]
        s[0] ^= s[3]
        s[2] ^= t
        s[3] = rotl(s[3], 45)
        return result

    def below(self, n):
        while True:
            m = self.next_u64() * n
            if (m & MASK) >= ((-n) & MASK) % n:
                return m >> 64


def lr_at(i, steps, lr, min_lr, warmup):
    """eie_evaluate::decoder::DecoderTraining::lr_at."""
    if i < warmup:
        return lr * (i + 1) / (warmup + 1)
    progress = min((i - warmup) / max(steps - warmup, 1), 1.0)
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (lr - min_lr)


def windows_loss(model, ids, t):
    """Mean next-token loss over windows of t + 1 tokens at a stride of t."""
    n = (len(ids) - 1) // t
    total, count = 0.0, 0
    with torch.no_grad():
        for a in range(0, n, 64):
            b = min(n, a + 64)
            x = torch.tensor([ids[w * t:w * t + t] for w in range(a, b)])
            y = torch.tensor([ids[w * t + 1:w * t + t + 1] for w in range(a, b)])
            logits = model(x).logits
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), y.reshape(-1), reduction="sum")
            total += loss.item()
            count += y.numel()
    return total / count


def train_torch(config, ids, args):
    """The tool's recipe in PyTorch (nanoGPT's loop): returns the model and the wall time."""
    torch.manual_seed(args.seed)
    model = tf.LlamaForCausalLM(config)
    layers = config.num_hidden_layers
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * layers) if name.endswith(("o_proj.weight", "down_proj.weight")) else 0.02
                p.normal_(0.0, std)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    keep = [p for p in model.parameters() if p.dim() < 2]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": keep, "weight_decay": 0.0}],
                            lr=args.lr, betas=(0.9, 0.99), eps=1e-8)
    rng = Rng(args.seed ^ SHUFFLE_STREAM)
    t, data = config.max_position_embeddings, torch.tensor(ids)
    model.train()
    start = time.perf_counter()
    for i in range(args.steps):
        starts = [rng.below(len(ids) - t) for _ in range(args.batch)]
        x = torch.stack([data[s:s + t] for s in starts])
        y = torch.stack([data[s + 1:s + 1 + t] for s in starts])
        for g in opt.param_groups:
            g["lr"] = lr_at(i, args.steps, args.lr, args.lr / 10, 100)
        logits = model(x).logits
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
    return model.eval(), time.perf_counter() - start


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=12)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--arch", default="llama:layers=4,heads=4,width=128,context=64")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--work", type=Path, default=Path("/tmp/eie-lm-train"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    folder = args.work / "decoder"
    start = time.perf_counter()
    subprocess.run([str(BIN), "train", "--dataset", f"text:{DATA / 'train.txt'}", "--arch", args.arch,
                    "--steps", str(args.steps), "--batch-size", str(args.batch), "--lr", str(args.lr),
                    "--weight-decay", str(args.weight_decay), "--seed", str(args.seed),
                    "--out", str(folder), "--force"], check=True, stdout=subprocess.DEVNULL)
    ours_time = time.perf_counter() - start
    ours = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    tok = tf.AutoTokenizer.from_pretrained(folder)
    train_ids = tok((DATA / "train.txt").read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    valid_ids = tok((DATA / "valid.txt").read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    t = ours.config.max_position_embeddings
    theirs, torch_time = train_torch(ours.config, train_ids, args)
    ours_loss, torch_loss = windows_loss(ours, valid_ids, t), windows_loss(theirs, valid_ids, t)
    ev = subprocess.run([str(BIN), "eval", str(folder), "--dataset", f"text:{DATA / 'valid.txt'}",
                         "--stride", str(t), "--json"], check=True, capture_output=True, text=True)
    tool_ppl = json.loads(ev.stdout)["stages"][0]
    print(f"| {args.arch}, {args.steps} steps of {args.batch} x {t} tokens | wall s | valid loss (transformers) |")
    print("|---|---|---|")
    print(f"| eie-compress train (burn, a step in two halves on 2 threads) | {ours_time:.1f} | {ours_loss:.4f} |")
    print(f"| PyTorch {torch.__version__} ({args.threads} threads) | {torch_time:.1f} | {torch_loss:.4f} |")
    print(f"| ratio / difference | {ours_time / torch_time:.2f}x | {ours_loss - torch_loss:+.4f} nats |")
    print(f"\neie-compress eval on valid.txt (windows of {t} every {t}): {json.dumps(tool_ppl)}")


if __name__ == "__main__":
    main()
