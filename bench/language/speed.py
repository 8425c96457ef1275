"""Float-path speed of `eie-compress eval` on a language model folder against PyTorch eager
(transformers) on the same model, the same text's tokens, the same windows and the same
thread count, measured side by side in one run; and the bit-exact EIE path's speed beside
it (`eval FOLDER DIR` after `compress`).

    cargo build --release
    python bench/language/speed.py [--work DIR] [--hidden 384] [--layers 6] [--threads N]

Needs torch, transformers and tokenizers (the environment .ci/run builds:
~/.cache/eie-compress/torch-2.5.1/bin/python). Writes under DIR (default /tmp/eie-lm-bench),
generated, never committed: a byte-level BPE tokenizer of 400 tokens trained on the start of
../shared/data/shakespeare/train.txt, and a random Llama (grouped-query attention, half as
many key/value heads as heads, head width 64, MLP 8/3 x hidden rounded to 64) of that
vocabulary. Measures valid.txt's first BYTES bytes (default 40,000) in windows of 256 tokens
every 128: tokens a second over every window's tokens (context included), the best of
--repeat runs for each side. Prints a markdown table.
"""

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

import tokenizers as tk
import torch
import transformers as tf

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = ROOT / "target" / "release" / "eie-compress"
DATA = ROOT.parent / "shared" / "data" / "shakespeare"


def make(work, hidden, layers):
    """The tokenizer and the model, once per shape."""
    out = work / f"llama-{hidden}x{layers}"
    if (out / "config.json").exists():
        return out
    out.mkdir(parents=True)
    tok = tk.ByteLevelBPETokenizer()
    corpus = (DATA / "train.txt").read_text(encoding="utf-8")[:200_000].splitlines()
    tok.train_from_iterator(corpus, vocab_size=400, min_frequency=2,
                            special_tokens=["<|endoftext|>"])
    tok.save(str(out / "tokenizer.json"))
    heads = max(1, hidden // 64)
    torch.manual_seed(0)
    model = tf.LlamaForCausalLM(tf.LlamaConfig(
        vocab_size=tok.get_vocab_size(), hidden_size=hidden,
        intermediate_size=(hidden * 8 // 3 + 63) // 64 * 64, num_hidden_layers=layers,
        num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
        max_position_embeddings=1024, tie_word_embeddings=True))
    model.eval().save_pretrained(out, safe_serialization=True)
    return out


def torch_tokens_per_second(folder, text, context, stride, repeat):
    """PyTorch eager over the same windows (transformers' sliding-window recipe)."""
    model = tf.AutoModelForCausalLM.from_pretrained(folder).eval()
    fast = tf.PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
    ids = torch.tensor([fast(text, add_special_tokens=False)["input_ids"]])
    best = float("inf")
    for _ in range(repeat):
        run, start = 0, time.perf_counter()
        with torch.no_grad():
            for begin in range(0, ids.shape[1], stride):
                end = min(begin + context, ids.shape[1])
                model(ids[:, begin:end])
                run += end - begin
                if end == ids.shape[1]:
                    break
        best = min(best, time.perf_counter() - start)
    return run / best, ids.shape[1]


def ours(args, folder, extra=()):
    """`eval`'s JSON, the best of --repeat runs by float tokens a second."""
    best = None
    for _ in range(args.repeat):
        cmd = [str(BIN), "eval", str(folder), *extra, "--dataset",
               f"text:{DATA / 'valid.txt'}", "--range", f"0..{args.bytes}",
               "--context", "256", "--stride", "128", "--json"]
        env = dict(os.environ, RAYON_NUM_THREADS=str(args.threads))
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, env=env).stdout)
        if best is None or r["text"]["tokens_per_second"] > best["text"]["tokens_per_second"]:
            best = r
    return best


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--work", default="/tmp/eie-lm-bench")
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=6)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--bytes", type=int, default=40_000)
    p.add_argument("--repeat", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work)
    folder = make(work, args.hidden, args.layers)
    text = (DATA / "valid.txt").read_bytes()[:args.bytes].decode("utf-8", errors="ignore")
    theirs, tokens = torch_tokens_per_second(folder, text, 256, 128, args.repeat)
    r = ours(args, folder)
    mine = r["text"]["tokens_per_second"]
    packed = work / f"{folder.name}-c"
    if not (packed / "model.eie").exists():
        subprocess.run([str(BIN), "compress", str(folder), "--out", str(packed), "--density",
                        "0.25", "--pes", "64", "--quiet"], check=True, capture_output=True)
    e = ours(argparse.Namespace(**{**vars(args), "repeat": 1}), folder, [str(packed)])
    print(f"Llama hidden {args.hidden}, {args.layers} layers, {tokens} tokens in windows of 256 "
          f"every 128, {args.threads} threads\n")
    print("| path | tokens/s | vs PyTorch eager |")
    print("|---|---|---|")
    print(f"| PyTorch eager (transformers {tf.__version__}, torch {torch.__version__}) "
          f"| {theirs:.0f} | 1.00 |")
    print(f"| eie-compress eval, float | {mine:.0f} | {mine / theirs:.2f} |")
    eie = e["text"]["eie_tokens_per_second"]
    print(f"| eie-compress eval, EIE bit-exact (25% density, 64 PEs) | {eie:.0f} "
          f"| {eie / theirs:.3f} |")


if __name__ == "__main__":
    main()
