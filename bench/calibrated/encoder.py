"""A BERT-family sentence encoder trained here, offline: the target model of docs/results.md's
"Distilling a sentence encoder" (no pretrained BERT can be downloaded on this project's
machines, so one is trained).

A WordPiece tokenizer (4,000 tokens, lower-cased) and a BertForMaskedLM (4 layers, width 256,
4 heads, MLP 1024, 128 positions: BERT-mini's shape) trained by masked-LM (15% of tokens,
BERT's 80/10/10 rule) on windows of 64 tokens of Shakespeare's train.txt, AdamW 5e-4, warmed
up then decayed linearly, seed 0. The encoder without its head is saved as
sentence-transformers lays one out: mean pooling, max_seq_length 64.

Usage: python encoder.py TRAIN_TXT OUT_DIR [STEPS [THREADS]]   (default 3000 steps, 2 threads:
about 20 minutes on this project's two cores)
"""

import json
import sys
import time
from pathlib import Path

import tokenizers as tk
import torch
import transformers as tf

CONTEXT = 64


def main(train, out, steps="3000", threads="2"):
    torch.manual_seed(0)
    torch.set_num_threads(int(threads))
    out = Path(out)
    out.mkdir(parents=True)
    text = Path(train).read_text(encoding="utf-8")
    tok = tk.BertWordPieceTokenizer(lowercase=True)
    tok.train_from_iterator(text.splitlines(), vocab_size=4000, min_frequency=2)
    tok.save(str(out / "tokenizer.json"))
    ids = torch.tensor(tok.encode(text.replace("\n", " "), add_special_tokens=False).ids)
    vocab = tok.get_vocab_size()
    cls, sep, mask = (tok.token_to_id(t) for t in ("[CLS]", "[SEP]", "[MASK]"))
    config = tf.BertConfig(vocab_size=vocab, hidden_size=256, num_hidden_layers=4,
                           num_attention_heads=4, intermediate_size=1024,
                           max_position_embeddings=128)
    model = tf.BertForMaskedLM(config)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, weight_decay=0.01)
    steps, batch, warm = int(steps), 32, 200
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / (steps - warm))))
    n = CONTEXT - 2
    start = time.time()
    model.train()
    for step in range(steps):
        at = torch.randint(0, len(ids) - n, (batch,))
        body = torch.stack([ids[a:a + n] for a in at])
        x = torch.cat([torch.full((batch, 1), cls), body, torch.full((batch, 1), sep)], 1)
        labels = x.clone()
        chosen = torch.rand(x.shape) < 0.15
        chosen[:, 0] = chosen[:, -1] = False
        labels[~chosen] = -100
        r = torch.rand(x.shape)
        x = x.clone()
        x[chosen & (r < 0.8)] = mask
        swap = chosen & (r >= 0.8) & (r < 0.9)
        x[swap] = torch.randint(0, vocab, (int(swap.sum()),))
        loss = model(input_ids=x, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        if step % 100 == 0 or step == steps - 1:
            print(f"step {step}: masked-LM loss {loss.item():.3f} ({time.time() - start:.0f} s)",
                  flush=True)
    model.bert.eval().save_pretrained(out, safe_serialization=True)
    (out / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
    ]))
    (out / "1_Pooling").mkdir()
    (out / "1_Pooling" / "config.json").write_text(json.dumps({
        "word_embedding_dimension": 256,
        "pooling_mode_cls_token": False,
        "pooling_mode_mean_tokens": True,
        "pooling_mode_max_tokens": False,
        "pooling_mode_mean_sqrt_len_tokens": False,
    }))
    (out / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": CONTEXT, "do_lower_case": False}))


if __name__ == "__main__":
    main(*sys.argv[1:])
