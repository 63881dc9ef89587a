"""Synthetic batches at a recipe's sizes, for benchmarking paper-size recipes without data.

Paper recipes name local corpora and tokenizers that a benchmark machine need not hold;
speed depends only on shapes. :class:`StandInTokenizer` gives ``assemble`` the sizes a real
tokenizer would (vocabulary, special ids) and :func:`synthetic_batch` a collated batch:
normalised noise images, captions of random length ``[CLS] words [SEP] [PAD]...``, one
to four boxes per image (region masking reads them) and the collator's presence flags.
"""

from __future__ import annotations

import copy
from typing import Any, Mapping

import torch

from framework.types import Batch

BERT_SPECIALS = {"pad": 0, "unk": 100, "cls": 101, "sep": 102, "mask": 103}
"""bert-base-uncased's special ids; the stand-in keeps them for any vocabulary size."""


class StandInTokenizer:
    """The attributes ``framework.assemble`` reads from a tokenizer, for ``vocab_size`` ids."""

    def __init__(self, vocab_size: int) -> None:
        if vocab_size <= max(BERT_SPECIALS.values()):
            raise ValueError(f"vocab_size {vocab_size} is too small; it must exceed {max(BERT_SPECIALS.values())}")
        self.vocab_size = vocab_size
        self.pad_token_id, self.cls_token_id = BERT_SPECIALS["pad"], BERT_SPECIALS["cls"]
        self.sep_token_id, self.mask_token_id = BERT_SPECIALS["sep"], BERT_SPECIALS["mask"]
        self.all_special_ids = sorted(BERT_SPECIALS.values())

    def __len__(self) -> int:
        return self.vocab_size

    def get_vocab(self) -> dict[str, int]:
        """A token for every id: BERT's special tokens at their ids, placeholders elsewhere."""
        names = {i: f"[{k.upper()}]" for k, i in BERT_SPECIALS.items()}
        return {names.get(i, f"[unused{i}]"): i for i in range(self.vocab_size)}

    @property
    def special_tokens_map(self) -> dict[str, str]:
        return {f"{k}_token": f"[{k.upper()}]" for k in BERT_SPECIALS}

    def convert_tokens_to_ids(self, token: str) -> int:
        """The id of a special token's name or of an ``[unusedN]`` placeholder."""
        specials = {f"[{k.upper()}]": i for k, i in BERT_SPECIALS.items()}
        return specials[token] if token in specials else int(token.removeprefix("[unused").removesuffix("]"))


def synthetic_batch(recipe: Mapping[str, Any], batch_size: int, vocab_size: int, generator: torch.Generator) -> Batch:
    """A collated batch of ``batch_size`` random samples shaped as ``recipe['data']`` says."""
    size, length = recipe["data"]["image_size"], recipe["data"]["max_text_len"]
    image = torch.randn(batch_size, 3, size, size, generator=generator)  # [B,3,H,W], already normalised
    ends = torch.randint(4, length, (batch_size, 1), generator=generator)  # [B,1]: position of [SEP]
    pos = torch.arange(length)[None, :]  # [1,T]
    words = torch.randint(max(BERT_SPECIALS.values()) + 1, vocab_size, (batch_size, length), generator=generator)
    ids = torch.where(pos == 0, BERT_SPECIALS["cls"], torch.where(pos == ends, BERT_SPECIALS["sep"], words))
    ids = torch.where(pos > ends, BERT_SPECIALS["pad"], ids)  # [B,T]
    corners = torch.rand(batch_size, 4, 2, 2, generator=generator) * size  # [B,M,corner,xy]
    boxes = torch.cat([corners.min(2).values, corners.max(2).values], dim=-1)  # [B,M,4]: x0 y0 x1 y1
    box_mask = torch.arange(4)[None, :] < torch.randint(1, 5, (batch_size, 1), generator=generator)  # [B,M]
    return {
        "image": image,
        "input_ids": ids,
        "attention_mask": (pos <= ends).long(),
        "special_tokens_mask": ((pos == 0) | (pos >= ends)).long(),
        "boxes": boxes,
        "box_mask": box_mask,
        "has_image": torch.ones(batch_size, dtype=torch.bool),  # as the collator always records
        "has_text": torch.ones(batch_size, dtype=torch.bool),
        "index": torch.arange(batch_size),
        "label": torch.zeros(batch_size, dtype=torch.long),  # class 0 exists for any classifier
    }


def without_checkpoints(recipe: Mapping[str, Any]) -> dict[str, Any]:
    """The recipe with every ``model.*.checkpoint`` set to null: random weights train at
    the same speed, and the benchmark machine need not hold the files."""
    out = copy.deepcopy(dict(recipe))
    for component in out["model"].values():
        if isinstance(component, dict) and component.get("checkpoint"):
            component["checkpoint"] = None
    return out
