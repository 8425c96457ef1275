"""A small Hugging Face language model folder made offline, as a user would bring one: a
byte-level BPE tokenizer trained on the start of a corpus, a random GPT-2, Llama or BERT
(with its masked-LM head) of its vocabulary, saved with save_pretrained; and transformers' own
loss on a text's first bytes with that tokenizer, which tests/language.rs compares `eval` with:
a decoder's sliding-window perplexity, or BERT's masked-token loss (windows of CONTEXT - 2
tokens as [CLS] ... [SEP], the tokens `masked` picks replaced by [MASK], the rule of
crates/transformer/src/masked.rs).

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


def masked(index, seed=0):
    """crates/transformer/src/masked.rs's is_masked: SplitMix64's finaliser, below 15 of 100."""
    m = (1 << 64) - 1
    z = ((seed ^ index) + 0x9E3779B97F4A7C15) & m
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & m
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & m
    return (z ^ (z >> 31)) % 100 < 15


def masked_nll(model, ids, context, cls, sep, mask):
    """The masked tokens' summed negative log-likelihood, their count and the windows'."""
    chunk = context - 2
    nll, scored, top1 = 0.0, 0, 0
    for first in range(0, len(ids), chunk):
        tokens = ids[first:first + chunk]
        hidden = [i for i in range(len(tokens)) if masked(first + i)]
        window = [cls] + [mask if i in hidden else t for i, t in enumerate(tokens)] + [sep]
        with torch.no_grad():
            logits = model(torch.tensor([window])).logits[0].double()
        for i in hidden:
            row = torch.log_softmax(logits[i + 1], dim=-1)
            nll -= float(row[tokens[i]])
            top1 += int(int(torch.argmax(logits[i + 1])) == tokens[i])
            scored += 1
    return nll, scored, top1


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
    specials = ["[CLS]", "[SEP]", "[MASK]"] if kind == "bert" else ["<|endoftext|>"]
    tok.train_from_iterator(corpus, vocab_size=400, min_frequency=2, special_tokens=specials)
    tok.save(str(out / "tokenizer.json"))
    vocab = tok.get_vocab_size()
    torch.manual_seed(0)
    if kind == "bert":
        model = tf.BertForMaskedLM(tf.BertConfig(vocab_size=vocab, hidden_size=48, num_hidden_layers=2,
                                                 num_attention_heads=4, intermediate_size=96,
                                                 max_position_embeddings=128))
    elif kind == "gpt2":
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
    if kind == "bert":
        ids = fast(body, add_special_tokens=False)["input_ids"]
        nll, scored, top1 = masked_nll(model, ids, context, *(tok.token_to_id(t) for t in specials))
        (out / "expected.json").write_text(json.dumps(
            {"tokens": len(ids), "scored": scored, "nll": nll, "top1": top1}))
        return
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
