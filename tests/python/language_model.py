"""A small Hugging Face language model folder made offline, as a user would bring one: a
byte-level BPE tokenizer trained on the start of a corpus, a random GPT-2 or Llama of its
vocabulary, saved with save_pretrained; and transformers' own sliding-window perplexity of a
text's first bytes with that tokenizer, which tests/language.rs compares `eval` with.

With STEPS (default 0), the model is first trained that many AdamW steps on TRAIN_TXT (batches
of 16 windows of 64 tokens, seed 0), so that what compression costs in perplexity means
something.

Usage: python language_model.py TRAIN_TXT TEXT_TXT BYTES KIND OUT_DIR CONTEXT STRIDE [STEPS]
"""

import json
import sys
from pathlib import Path

import tokenizers as tk
import torch
import transformers as tf


def fit(model, tok, text, steps):
    """AdamW on random 64-token windows of `text` (seed 0)."""
    ids = torch.tensor(tok.encode(text).ids)
    gen = torch.Generator().manual_seed(0)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.0)
    model.train()
    for _ in range(steps):
        starts = torch.randint(0, len(ids) - 65, (16,), generator=gen)
        batch = torch.stack([ids[s:s + 64] for s in starts])
        loss = model(batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()


def main(train, text, nbytes, kind, out, context, stride, steps="0"):
    nbytes, context, stride, steps = int(nbytes), int(context), int(stride), int(steps)
    out = Path(out)
    out.mkdir(parents=True)
    corpus = Path(train).read_text(encoding="utf-8")[:200_000].splitlines()
    tok = tk.ByteLevelBPETokenizer()
    tok.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=["<|endoftext|>"])
    tok.save(str(out / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    torch.manual_seed(0)
    if kind == "gpt2":
        model = tf.GPT2LMHeadModel(tf.GPT2Config(vocab_size=vocab, n_embd=48, n_layer=2, n_head=4,
                                                 n_positions=128))
    else:
        model = tf.LlamaForCausalLM(tf.LlamaConfig(vocab_size=vocab, hidden_size=48, intermediate_size=96,
                                                   num_hidden_layers=2, num_attention_heads=4,
                                                   num_key_value_heads=2, max_position_embeddings=128,
                                                   tie_word_embeddings=True))
    if steps == 0:
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() >= 2:
                    p.mul_(10.0)
    else:
        fit(model, tok, Path(train).read_text(encoding="utf-8")[:400_000], steps)
    model.eval().save_pretrained(out, safe_serialization=True)
    body = Path(text).read_bytes()[:nbytes].decode("utf-8")
    fast = tf.PreTrainedTokenizerFast(tokenizer_file=str(out / "tokenizer.json"))
    ids = torch.tensor([fast(body, add_special_tokens=False)["input_ids"]])
    length = ids.shape[1]
    nll, scored, prev_end = 0.0, 0, 0
    for begin in range(0, length, stride):
        end = min(begin + context, length)
        trg_len = end - prev_end
        input_ids = ids[:, begin:end]
        target_ids = input_ids.clone()
        target_ids[:, :-trg_len] = -100
        with torch.no_grad():
            loss = model(input_ids, labels=target_ids).loss
        count = int((target_ids[:, 1:] != -100).sum())
        nll += float(loss) * count
        scored += count
        prev_end = end
        if end == length:
            break
    (out / "expected.json").write_text(json.dumps(
        {"tokens": length, "scored": scored, "nll": nll}))


if __name__ == "__main__":
    main(*sys.argv[1:9])
