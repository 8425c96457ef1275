"""Tokenizers of the three kinds the hub's models use, trained offline on a slice of a corpus
by Hugging Face's `tokenizers`, each saved as tokenizer.json with the ids `transformers`
(PreTrainedTokenizerFast, as AutoTokenizer loads a tokenizer.json) gives for a text: what
tests/tokenizers.rs compares eie-text's ids with.

Usage: python make_tokenizers.py TRAIN_TXT TEXT_TXT OUT_DIR
"""

import json
import sys
from pathlib import Path

import tokenizers as tk
from transformers import PreTrainedTokenizerFast


def kinds(corpus):
    # GPT-2's: byte-level BPE.
    gpt2 = tk.ByteLevelBPETokenizer()
    gpt2.train_from_iterator(corpus, vocab_size=1000, min_frequency=2,
                             special_tokens=["<|endoftext|>"])
    yield "byte-level-bpe", gpt2
    # BERT's: WordPiece over lower-cased, accent-stripped words.
    bert = tk.BertWordPieceTokenizer(lowercase=True)
    bert.train_from_iterator(corpus, vocab_size=1000, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    yield "wordpiece", bert
    # LLaMA's: SentencePiece-style BPE on metaspace-joined words.
    spm = tk.SentencePieceBPETokenizer()
    spm.train_from_iterator(corpus, vocab_size=1000, special_tokens=["<unk>", "<s>", "</s>"])
    yield "sentencepiece-bpe", spm


def main(train, text, out):
    corpus = Path(train).read_text(encoding="utf-8")[:300_000].splitlines()
    body = Path(text).read_text(encoding="utf-8")
    for name, tokenizer in kinds(corpus):
        folder = Path(out) / name
        folder.mkdir(parents=True)
        tokenizer.save(str(folder / "tokenizer.json"))
        fast = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
        ids = fast(body, add_special_tokens=False)["input_ids"]
        (folder / "ids.json").write_text(json.dumps(ids))


if __name__ == "__main__":
    main(*sys.argv[1:4])
