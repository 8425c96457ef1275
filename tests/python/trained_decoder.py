"""Loads a folder `eie-compress train` wrote with transformers, as a user would, and prints
as JSON: the loss the tool recorded on its held-out bytes (model.safetensors' eie.eval_loss)
and transformers' loss on the same bytes (windows of the context + 1 tokens at a stride of
the context, every position scored once), with the tokenizer's ids checked against the
characters.

    python trained_decoder.py FOLDER TEXT START END
"""

import json
import sys

import torch
from safetensors import safe_open
from transformers import AutoModelForCausalLM, AutoTokenizer

folder, path, start, end = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
model = AutoModelForCausalLM.from_pretrained(folder).eval()
tok = AutoTokenizer.from_pretrained(folder)
text = open(path, "rb").read()[start:end].decode("utf-8")
ids = tok(text, add_special_tokens=False)["input_ids"]
vocab = tok.get_vocab()
assert ids == [vocab.get(c, 0) for c in text], "the tokenizer is not one token per character"
assert tok.decode(ids) == text
t = model.config.max_position_embeddings
n = (len(ids) - 1) // t
x = torch.tensor([ids[w * t:w * t + t] for w in range(n)])
y = torch.tensor([ids[w * t + 1:w * t + t + 1] for w in range(n)])
with torch.no_grad():
    logits = model(x).logits
loss = torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
with safe_open(f"{folder}/model.safetensors", "pt") as f:
    recorded = float(f.metadata()["eie.eval_loss"])
print(json.dumps({"transformers": loss.item(), "recorded": recorded,
                  "model": type(model).__name__, "tokenizer": type(tok).__name__}))
