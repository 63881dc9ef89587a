"""``wordpiece_from_data``: a BERT-style WordPiece vocabulary trained on the training captions.

Needs no download: a ``tokenizers`` WordPiece model (BERT normaliser: lower-casing and
accent stripping; whitespace and punctuation pre-tokenisation; greedy longest-match
subwords with ``##`` continuations; ``[CLS] text [SEP]`` template) whose vocabulary is
the most frequent words of the training captions plus every character seen, so rare
words are spelt out instead of becoming ``[UNK]``. The vocabulary and its ids are a pure
function of the captions, so a resumed run rebuilds the same tokenizer; the training
loop also saves it with the run (``save_pretrained``).
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Iterable

from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
)
from transformers import PreTrainedTokenizerFast

from framework.api import ComponentSpec, dataset_captions

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
"""In id order: ``[PAD]`` is 0, as BERT's embedding padding index expects."""


def learn_vocabulary(words: Counter, *, vocab_size: int, min_frequency: int) -> list[str]:
    """Special tokens, every character seen (word-initial and ``##`` continuation forms, so
    any word can be spelt) and then whole words by falling frequency (ties alphabetical)."""
    chars = sorted({ch for word in words for ch in word})
    alphabet = chars + [f"##{ch}" for ch in chars]
    ranked = sorted((w for w, n in words.items() if n >= min_frequency and len(w) > 1), key=lambda w: (-words[w], w))
    room = max(0, vocab_size - len(SPECIAL_TOKENS) - len(alphabet))
    return SPECIAL_TOKENS + alphabet + ranked[:room]


def train_wordpiece(captions: Iterable[str], *, vocab_size: int, min_frequency: int) -> PreTrainedTokenizerFast:
    """Learn a lower-casing BERT WordPiece tokenizer from ``captions``.

    The vocabulary is chosen here rather than by ``tokenizers``' WordPieceTrainer, which
    breaks count ties in hash-map order and so learns a different vocabulary on every
    call for the same captions (seen with tokenizers 0.23); a run must rebuild the same ids.
    """
    normalizer = normalizers.BertNormalizer(lowercase=True, strip_accents=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    words = Counter(word for text in captions
                    for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)))
    vocab = learn_vocabulary(words, vocab_size=vocab_size, min_frequency=min_frequency)
    tokenizer = Tokenizer(models.WordPiece(vocab={t: i for i, t in enumerate(vocab)}, unk_token="[UNK]"))
    tokenizer.normalizer, tokenizer.pre_tokenizer, tokenizer.decoder = normalizer, pre_tokenizer, decoders.WordPiece()
    cls, sep = vocab.index("[CLS]"), vocab.index("[SEP]")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1", special_tokens=[("[CLS]", cls), ("[SEP]", sep)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")


def wordpiece_from_data(*, vocab_size: int, min_frequency: int, context: Any) -> PreTrainedTokenizerFast:
    """Factory: trains on ``context["dataset"]`` (the built training dataset)."""
    dataset = context["dataset"]
    if not hasattr(dataset, "iter_captions") and not hasattr(dataset, "__getitem__"):
        raise ValueError("wordpiece_from_data needs a map-style training dataset or one with iter_captions(); "
                         "for streaming sources train a tokenizer once and use the 'pretrained' tokenizer with its "
                         "path")
    tokenizer = train_wordpiece(dataset_captions(dataset), vocab_size=vocab_size, min_frequency=min_frequency)
    if len(tokenizer) <= len(SPECIAL_TOKENS):
        raise ValueError("wordpiece_from_data learnt no words: the training dataset has no captions")
    return tokenizer


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "vocab_size": {"type": "integer", "minimum": 16, "default": 1000,
                       "description": "Largest vocabulary (special tokens and characters included); small corpora give "
                                      "fewer."},
        "min_frequency": {"type": "integer", "minimum": 1, "default": 2,
                          "description": "A word must occur this many times to enter the vocabulary whole."},
    },
}

COMPONENTS = [
    ComponentSpec("tokenizer", "wordpiece_from_data", wordpiece_from_data, SCHEMA,
                  "BERT WordPiece trained on the training captions; no download."),
]
