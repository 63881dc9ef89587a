"""BERT masked language modelling (Devlin et al. 2019 §3.1) and [MASK]-only masking.

Eligible tokens are real (``attention_mask == 1``) and not special
(``special_tokens_mask == 0``); only they are masked and only they count toward the ratio.
Each sample masks exactly ``ceil(ratio * n_eligible)`` of its eligible tokens, the count
rule of every masker (:func:`.common.masked_count`; at least one when ``ratio > 0`` and
any is eligible). A masked token becomes [MASK] with
probability ``mask_prob``, a random non-special id with probability ``random_prob``, and
stays unchanged otherwise (BERT 80/10/10; VLMAE 15 %, MAMO 25 %). ``mask_only`` is the
same with every masked token set to [MASK] (MaskVLM, 30 %).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from framework.api import ComponentSpec, TextMaskingOutput

from ._common import RATIO, check_ratio, integers, masked_count, masked_counts, params_schema, uniform

IGNORE_INDEX = -100
"""Label of positions that are not predicted (cross-entropy's default ``ignore_index``)."""


def eligible_tokens(attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor) -> torch.Tensor:
    """[B, T] bool: real, non-special tokens (the only ones a text masker may mask)."""
    return attention_mask.bool() & ~special_tokens_mask.bool()


def most_masked(length: int, ratio: float) -> int:
    """The most tokens :func:`choose_masked` masks in a row of ``length`` positions: the
    count of a row of eligible tokens only (it grows with the eligible count)."""
    return masked_count(length, ratio)


def choose_masked(eligible: torch.Tensor, ratio: float,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """``ceil(ratio * n)`` uniformly chosen eligible tokens per row: the mask [B, T] bool
    and ``ids_masked`` [B, M] (M from :func:`most_masked`; masked ones first)."""
    n_mask = masked_counts(eligible.sum(dim=1), ratio, most=eligible.shape[1])  # [B], on the device
    noise = uniform(tuple(eligible.shape), generator=generator, device=eligible.device)  # [B, T]
    noise = noise.masked_fill(~eligible, 2.0)  # ineligible sort after every eligible token
    order = torch.argsort(noise, dim=1, stable=True)  # [B, T] eligible tokens in random order first
    rank = torch.argsort(order, dim=1, stable=True)  # [B, T]
    return (rank < n_mask[:, None]) & eligible, order[:, : most_masked(eligible.shape[1], ratio)]


class MaskedLanguageModelling:
    """Masks captions BERT-style: [MASK] / random token / unchanged in the given proportions."""

    def __init__(self, *, ratio: float, mask_prob: float, random_prob: float, vocab_size: int,
                 mask_token_id: int, special_token_ids: Sequence[int]) -> None:
        if mask_prob + random_prob > 1.0 + 1e-9:
            raise ValueError(f"mask_prob + random_prob must be at most 1, got {mask_prob} + {random_prob}; "
                             "the remainder is the share of masked tokens left unchanged")
        allowed = sorted(set(range(vocab_size)) - set(int(i) for i in special_token_ids) - {int(mask_token_id)})
        if random_prob > 0 and not allowed:
            raise ValueError(f"random_prob={random_prob} needs a non-special token id to draw, but all "
                             f"{vocab_size} ids are special; set random_prob to 0")
        self.ratio = check_ratio(ratio)
        self.mask_prob = float(mask_prob)
        self.random_prob = float(random_prob)
        self.mask_token_id = int(mask_token_id)
        # [V'] ids random replacement draws from ([MASK] as a never-drawn placeholder when random_prob is 0)
        self.replacement_ids = torch.tensor(allowed or [int(mask_token_id)], dtype=torch.long)

    def __call__(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor,
                 generator: torch.Generator) -> TextMaskingOutput:
        device = input_ids.device
        mask, ids_masked = choose_masked(eligible_tokens(attention_mask, special_tokens_mask), self.ratio, generator)
        action = uniform(tuple(input_ids.shape), generator=generator, device=device)  # [B, T] picks the corruption
        to_mask = mask & (action < self.mask_prob)
        to_random = mask & (action >= self.mask_prob) & (action < self.mask_prob + self.random_prob)
        pick = integers(len(self.replacement_ids), tuple(input_ids.shape), generator=generator, device=device)  # [B, T]
        if self.replacement_ids.device != device:  # moved once, not copied every step
            self.replacement_ids = self.replacement_ids.to(device)
        random_ids = self.replacement_ids[pick]  # [B, T]
        corrupted = torch.where(to_mask, torch.full_like(input_ids, self.mask_token_id), input_ids)
        corrupted = torch.where(to_random, random_ids, corrupted)
        labels = torch.where(mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        return TextMaskingOutput(input_ids=corrupted, labels=labels, mask=mask, ids_masked=ids_masked)


def _from_context(context: Any) -> dict[str, Any]:
    return {"vocab_size": context["vocab_size"], "mask_token_id": context["mask_token_id"],
            "special_token_ids": context["special_token_ids"]}


def build_mlm(*, ratio: float, mask_prob: float, random_prob: float, context: Any) -> MaskedLanguageModelling:
    """Factory of ``mlm``: token ids come from the tokenizer through the build context."""
    return MaskedLanguageModelling(ratio=ratio, mask_prob=mask_prob, random_prob=random_prob, **_from_context(context))


def build_mask_only(*, ratio: float, context: Any) -> MaskedLanguageModelling:
    """Factory of ``mask_only``: every masked token becomes [MASK] (MaskVLM)."""
    return MaskedLanguageModelling(ratio=ratio, mask_prob=1.0, random_prob=0.0, **_from_context(context))


PROBABILITY: dict[str, Any] = {"type": "number", "minimum": 0, "maximum": 1}

MLM_SCHEMA = params_schema({
    "ratio": {**RATIO, "default": 0.15},
    "mask_prob": {**PROBABILITY, "default": 0.8, "description": "Share of masked tokens replaced by [MASK]."},
    "random_prob": {**PROBABILITY, "default": 0.1,
                    "description": "Share of masked tokens replaced by a random non-special token (the rest stay "
                                   "unchanged)."},
})
MASK_ONLY_SCHEMA = params_schema({"ratio": {**RATIO, "default": 0.3}})

COMPONENTS = [
    ComponentSpec("text_masking", "mlm", build_mlm, MLM_SCHEMA,
                  "BERT MLM: mask a ratio of real tokens, 80% [MASK] / 10% random / 10% unchanged."),
    ComponentSpec("text_masking", "mask_only", build_mask_only, MASK_ONLY_SCHEMA,
                  "Replace a ratio of real tokens by [MASK] only (MaskVLM, 30%)."),
]
