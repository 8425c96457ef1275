"""A sentence-embedding encoder as sentence-transformers lays one out, made offline, and
transformers' own measure of how closely other weights' sentence embeddings follow it, which
tests/language.rs compares `eval` and `compress` with (the rules of
crates/transformer/src/pooled.rs: the sentences are a text's distinct lines, each tokenized
alone, cut to CONTEXT - 2 tokens and run as [CLS] ... [SEP]; mean or [CLS] pooling of the last
hidden state; mean cosine, Spearman's rank correlation of the pairwise cosines with tied
values at their mean rank, and top-1 retrieval with the first largest on a tie).

Usage:
  python sentence_encoder.py make TRAIN_TXT OUT_DIR POOLING
      a byte-level BPE tokenizer trained on TRAIN_TXT's start, a random BertModel (no head,
      its matrices scaled up so that compression shows), modules.json, 1_Pooling/config.json
      (POOLING: mean or cls) and sentence_bert_config.json (max_seq_length 32)
  python sentence_encoder.py fidelity OUT_DIR TEXT_TXT BYTES WEIGHTS
      the fidelity of the model with WEIGHTS (a safetensors file of some of its tensors, as
      `eie-compress unpack` writes them) against the model itself, on TEXT_TXT's first BYTES
      bytes, printed as JSON
"""

import json
import sys
from pathlib import Path

import numpy as np
import tokenizers as tk
import torch
import transformers as tf
from safetensors.torch import load_file

CONTEXT = 32


def make(train, out, pooling):
    out = Path(out)
    out.mkdir(parents=True)
    corpus = Path(train).read_text(encoding="utf-8")[:200_000].splitlines()
    tok = tk.ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus, vocab_size=400, min_frequency=2,
                            special_tokens=["[CLS]", "[SEP]", "[MASK]"])
    tok.save(str(out / "tokenizer.json"))
    torch.manual_seed(0)
    model = tf.BertModel(tf.BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=48,
                                       num_hidden_layers=2, num_attention_heads=4,
                                       intermediate_size=96, max_position_embeddings=64))
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(5.0)
    model.eval().save_pretrained(out, safe_serialization=True)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"},
    ]))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 48,
        "pooling_mode_cls_token": pooling == "cls",
        "pooling_mode_mean_tokens": pooling == "mean",
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    (out / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": CONTEXT, "do_lower_case": False}))


def sentences(tok, text):
    seen, out = set(), []
    for line in text.split("\n"):
        ids = tok.encode(line.strip(), add_special_tokens=False)[:CONTEXT - 2]
        if ids and tuple(ids) not in seen:
            seen.add(tuple(ids))
            out.append(ids)
    return out[:4096]


def embed(model, ids, cls, sep, pooling):
    rows = []
    with torch.no_grad():
        for s in ids:
            hidden = model(torch.tensor([[cls] + s + [sep]])).last_hidden_state[0].double()
            rows.append(hidden[0] if pooling == "cls" else hidden.mean(0))
    return torch.nn.functional.normalize(torch.stack(rows), dim=1).numpy()


def ranks(x):
    order = np.argsort(x, kind="stable")
    r = np.empty(len(x))
    i = 0
    while i < len(x):
        j = i + 1
        while j < len(x) and x[order[j]] == x[order[i]]:
            j += 1
        r[order[i:j]] = (i + j + 1) / 2.0
        i = j
    return r


def fidelity(out, text, nbytes, weights):
    out = Path(out)
    pooling = "cls" if json.loads((out / "1_Pooling" / "config.json").read_text())[
        "pooling_mode_cls_token"] else "mean"
    tok = tf.PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    body = Path(text).read_bytes()[:int(nbytes)].decode("utf-8", errors="ignore")
    ids = sentences(tok, body)
    cls, sep = tok.convert_tokens_to_ids("[CLS]"), tok.convert_tokens_to_ids("[SEP]")
    model = tf.BertModel.from_pretrained(out).eval()
    ref = embed(model, ids, cls, sep, pooling)
    state = model.state_dict()
    for name, value in load_file(weights).items():
        assert name in state, name
        state[name] = value
    model.load_state_dict(state)
    got = embed(model, ids, cls, sep, pooling)
    n = len(ids)
    upper = np.triu_indices(n, 1)
    rx, ry = ranks((ref @ ref.T)[upper]), ranks((got @ got.T)[upper])
    rank = float(np.corrcoef(rx, ry)[0, 1])
    print(json.dumps({
        "sentences": n,
        "tokens": sum(len(s) for s in ids),
        "cosine": float(np.mean(np.sum(ref * got, axis=1))),
        "rank_correlation": rank,
        "top1": int(np.sum(np.argmax(got @ ref.T, axis=1) == np.arange(n))),
    }))


if __name__ == "__main__":
    {"make": make, "fidelity": fidelity}[sys.argv[1]](*sys.argv[2:])
