"""Writes a sharded bf16 checkpoint of a small decoder-only transformer in Hugging Face naming,
for the compress benchmark (generated on the machine that runs it, never committed).

    python3 bench/compress/make_transformer.py DIR [--layers 18] [--shards 5]

The default shape is a 1.06 B-weight model (hidden 2048, MLP 5632, vocabulary 32000, 18
layers): `model.embed_tokens.weight`, per layer `self_attn.{q,k,v,o}_proj.weight`,
`mlp.{gate,up,down}_proj.weight`, `input_layernorm.weight` and
`post_attention_layernorm.weight`, then `model.norm.weight` and `lm_head.weight`; about
1.97 GiB of bf16 in SHARDS files `model-0000K-of-0000N.safetensors` filled in that order, with
`model.safetensors.index.json` beside them, as `save_pretrained` writes them (tensors sorted
by name inside each file, the index's weight map sorted by name). Weights are Gaussian
(std 0.02, seeded), norms are ones. Needs numpy only: bf16 is written as its bit patterns.
"""

import argparse
import json
import os
import struct

import numpy as np


def tensors(layers, hidden, mlp, vocab):
    """(name, shape) in the model's own order."""
    out = [("model.embed_tokens.weight", (vocab, hidden))]
    for i in range(layers):
        p = f"model.layers.{i}"
        out += [
            (f"{p}.self_attn.q_proj.weight", (hidden, hidden)),
            (f"{p}.self_attn.k_proj.weight", (hidden, hidden)),
            (f"{p}.self_attn.v_proj.weight", (hidden, hidden)),
            (f"{p}.self_attn.o_proj.weight", (hidden, hidden)),
            (f"{p}.mlp.gate_proj.weight", (mlp, hidden)),
            (f"{p}.mlp.up_proj.weight", (mlp, hidden)),
            (f"{p}.mlp.down_proj.weight", (hidden, mlp)),
            (f"{p}.input_layernorm.weight", (hidden,)),
            (f"{p}.post_attention_layernorm.weight", (hidden,)),
        ]
    out += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return out


def bf16_bits(x):
    """float32 array to bf16 bit patterns, rounding to nearest even."""
    u = x.view(np.uint32)
    return ((u + (((u >> 16) & 1) + 0x7FFF)) >> 16).astype(np.uint16)


def write_shard(path, names_shapes, rng):
    header = {}
    offset = 0
    for name, shape in sorted(names_shapes):
        n = int(np.prod(shape)) * 2
        header[name] = {"dtype": "BF16", "shape": list(shape), "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for name, shape in sorted(names_shapes):
            if len(shape) == 1:
                data = np.ones(shape, dtype=np.float32)
            else:
                data = rng.standard_normal(shape, dtype=np.float32) * np.float32(0.02)
            f.write(bf16_bits(data).tobytes())
    return offset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--layers", type=int, default=18)
    ap.add_argument("--hidden", type=int, default=2048)
    ap.add_argument("--mlp", type=int, default=5632)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--shards", type=int, default=5)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    index_path = os.path.join(args.dir, "model.safetensors.index.json")
    if os.path.exists(index_path):
        return
    all_tensors = tensors(args.layers, args.hidden, args.mlp, args.vocab)
    total = sum(int(np.prod(s)) * 2 for _, s in all_tensors)
    per_shard = total / args.shards
    shards, current, size = [], [], 0
    for t in all_tensors:
        current.append(t)
        size += int(np.prod(t[1])) * 2
        if size >= per_shard * (len(shards) + 1) and len(shards) < args.shards - 1:
            shards.append(current)
            current = []
    shards.append(current)
    rng = np.random.default_rng(2016)
    weight_map = {}
    for k, group in enumerate(shards):
        name = f"model-{k + 1:05d}-of-{len(shards):05d}.safetensors"
        write_shard(os.path.join(args.dir, name), group, rng)
        for t, _ in group:
            weight_map[t] = name
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    with open(index_path, "w") as f:
        json.dump(index, f, indent=2)


if __name__ == "__main__":
    main()
