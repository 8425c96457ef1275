"""Random tiny models of every family eie-transformer runs, built offline by `transformers`
itself, each saved as a Hugging Face folder with the outputs `transformers` computes for a
fixed window of tokens: what tests/transformers.rs compares the float path with.

Usage: python make_reference.py OUT_DIR   (needs torch, transformers, safetensors)
"""

import json
import sys
from pathlib import Path

import torch
import transformers as tf
from safetensors.torch import save_file

VOCAB, WIDTH, LAYERS, HEADS, POSITIONS, TOKENS = 99, 32, 2, 4, 64, 17


def widen(model, seed):
    """Weights large enough that every block changes the outputs (the default init's 0.02
    would leave them near zero), norms away from 1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (1.0 / p.shape[-1] ** 0.5) * 1.5)
            elif "norm" in name.lower() or "ln_" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g) if "weight" in name
                        else 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))
    return model


def models():
    common = dict(vocab_size=VOCAB, max_position_embeddings=POSITIONS)
    llama = dict(common, hidden_size=WIDTH, intermediate_size=48, num_hidden_layers=LAYERS,
                 num_attention_heads=HEADS, num_key_value_heads=2, rms_norm_eps=1e-5)
    bert = dict(common, hidden_size=WIDTH, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, intermediate_size=37)
    yield "bert-mlm", tf.BertForMaskedLM(tf.BertConfig(**bert))
    yield "bert", tf.BertModel(tf.BertConfig(**bert), add_pooling_layer=False)
    yield "gpt2", tf.GPT2LMHeadModel(tf.GPT2Config(
        vocab_size=VOCAB, n_embd=WIDTH, n_layer=LAYERS, n_head=HEADS, n_positions=POSITIONS))
    yield "llama-gqa-tied", tf.LlamaForCausalLM(tf.LlamaConfig(
        **llama, tie_word_embeddings=True, rope_theta=500000.0))
    yield "qwen2-bias", tf.Qwen2ForCausalLM(tf.Qwen2Config(**llama, tie_word_embeddings=False))
    yield "mistral", tf.MistralForCausalLM(tf.MistralConfig(**llama, sliding_window=None))


def main(out):
    torch.manual_seed(0)
    tokens = torch.randint(0, VOCAB, (1, TOKENS), generator=torch.Generator().manual_seed(1))
    for i, (name, model) in enumerate(models()):
        model = widen(model.eval(), 100 + i)
        folder = Path(out) / name
        model.save_pretrained(folder, safe_serialization=True)
        with torch.no_grad():
            result = model(tokens, output_hidden_states=True)
        outputs = {"hidden": result.hidden_states[-1][0].contiguous()}
        if getattr(result, "logits", None) is not None:
            outputs["logits"] = result.logits[0].contiguous()
        save_file(outputs, str(folder / "reference.safetensors"))
        reference = {"tokens": tokens[0].tolist()}
        if model.config.is_decoder or "CausalLM" in type(model).__name__ or "LMHead" in type(model).__name__:
            reference["perplexity"] = [perplexity(model, stride) for stride in (24, POSITIONS)]
        (folder / "reference.json").write_text(json.dumps(reference))


def perplexity(model, stride, length=150):
    """transformers' documented sliding-window recipe ("Perplexity of fixed-length models"),
    on a fixed random sequence: the sum of the windows' losses times their scored tokens."""
    ids = torch.randint(0, VOCAB, (1, length), generator=torch.Generator().manual_seed(2))
    nll, scored, prev_end = 0.0, 0, 0
    for begin in range(0, length, stride):
        end = min(begin + POSITIONS, length)
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
    return {"ids": ids[0].tolist(), "context": POSITIONS, "stride": stride,
            "nll": nll, "scored": scored}


if __name__ == "__main__":
    main(sys.argv[1])
