"""PyTorch's own perplexity of a token model `eie-compress train` wrote (an LSTM language
model: `nn.Embedding`, `nn.LSTM(batch_first=True)`, `nn.Linear`, its `state_dict` loaded as
the checkpoint stores it), over a text's first bytes tokenized by the `tokenizer.json` beside
it, by the sliding-window recipe `eval` uses (windows of CONTEXT tokens every STRIDE, each from
a zero state, each token scored once; crates/transformer/src/perplexity.rs), which
tests/tokens.rs compares `eval` with. With WEIGHTS (the tensors `eie-compress unpack` writes of
a compressed model: the embedding as its [V, E] table, the LSTM as its packed matrix
`lstm.packed_l0` = [weight_ih | weight_hh] with `lstm.packed_bias_l0` = bias_ih + bias_hh,
the decoder as it is), the model with those weights instead.

Usage: python lstm_lm.py MODEL_DIR TEXT_TXT BYTES CONTEXT STRIDE [WEIGHTS]
"""

import json
import re
import sys
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import load_file
from tokenizers import Tokenizer


class LstmLm(torch.nn.Module):
    """tokV-embedE-lstmH[xL]-V, the module names eie-compress gives by default."""

    def __init__(self, arch):
        super().__init__()
        m = re.fullmatch(r"tok(\d+)-embed(\d+)-lstm(\d+)(?:x(\d+))?-(\d+)", arch)
        assert m, arch
        vocab, width, hidden, layers = (int(m[1]), int(m[2]), int(m[3]), int(m[4] or 1))
        self.embed = torch.nn.Embedding(vocab, width)
        self.lstm = torch.nn.LSTM(width, hidden, num_layers=layers, batch_first=True)
        self.fc1 = torch.nn.Linear(hidden, vocab)

    def forward(self, ids):
        h, _ = self.lstm(self.embed(ids))
        return self.fc1(h)


def unpacked(model, weights):
    """`model`'s state_dict with the unpacked tensors in PyTorch's names."""
    state = model.state_dict()
    for name, value in load_file(weights).items():
        m = re.fullmatch(r"lstm\.packed_l(\d+)", name)
        b = re.fullmatch(r"lstm\.packed_bias_l(\d+)", name)
        if m:
            k = m[1]
            cols = state[f"lstm.weight_ih_l{k}"].shape[1]
            state[f"lstm.weight_ih_l{k}"] = value[:, :cols]
            state[f"lstm.weight_hh_l{k}"] = value[:, cols:]
        elif b:
            state[f"lstm.bias_ih_l{b[1]}"] = value
            state[f"lstm.bias_hh_l{b[1]}"] = torch.zeros_like(value)
        else:
            assert state[name].shape == value.shape, (name, state[name].shape, value.shape)
            state[name] = value
    return state


def main(model_dir, text, nbytes, context, stride, weights=None):
    model_dir, nbytes, context, stride = Path(model_dir), int(nbytes), int(context), int(stride)
    path = model_dir / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        arch = f.metadata()["eie.arch"]
    model = LstmLm(arch)
    model.load_state_dict(load_file(str(path)))
    if weights:
        model.load_state_dict(unpacked(model, weights))
    model.eval()
    body = Path(text).read_bytes()[:nbytes].decode("utf-8", errors="ignore")
    ids = Tokenizer.from_file(str(model_dir / "tokenizer.json")).encode(body).ids
    nll, scored, prev_end, begin = 0.0, 0, 0, 0
    while begin < len(ids):
        end = min(begin + context, len(ids))
        first = max(end - begin - (end - prev_end), 1) + begin
        with torch.no_grad():
            logits = model(torch.tensor([ids[begin:end]]))[0].double()
        logp = torch.log_softmax(logits, dim=-1)
        for j in range(first, end):
            nll -= float(logp[j - 1 - begin, ids[j]])
            scored += 1
        prev_end = end
        if end == len(ids):
            break
        begin += stride
    print(json.dumps({"tokens": len(ids), "scored": scored, "nll": nll}))


if __name__ == "__main__":
    main(*sys.argv[1:7])
