"""Token dropping for visible-only text encoders (M3AE, Geng et al. 2022; spec in m3ae.md).

Like MAE on patches, exactly ``T - ceil(T * ratio)`` of the ``T`` positions of the
*padded* caption stay visible, so every sample keeps the same number of tokens and the
encoder can gather them by ``ids_keep``; ``ids_restore`` puts them back in order.

Padding and special tokens take part in the permutation (the kept count is over the
padded length, as in M3AE) but are never *masked*: ``mask`` and ``labels`` mark only the
dropped real, non-special tokens, which are the ones to predict. A kept padding token
stays excluded from attention through the gathered ``attention_mask``.

- Per sample (default, the MAE convention): special tokens are kept before any other
  position, and one randomly chosen real token is always dropped, so at least one token
  is masked whenever the caption has one and ``ratio > 0``.
- Shared across the batch (M3AE's public code): one permutation of positions for every
  sample; which positions hold special tokens or padding differs between samples, so
  neither guarantee holds in this mode.
"""

from __future__ import annotations

import torch

from framework.api import ComponentSpec, TextMaskingOutput

from ._common import (
    RATIO,
    SHARED,
    check_ratio,
    num_kept,
    params_schema,
    shuffle_masking,
    uniform,
)
from .mlm import IGNORE_INDEX, eligible_tokens

SCHEMA = params_schema({"ratio": {**RATIO, "default": 0.75}, "shared_across_batch": SHARED})


class TokenDropping:
    """Drop ``ratio`` of the padded caption positions; predict the dropped real tokens."""

    def __init__(self, *, ratio: float, shared_across_batch: bool) -> None:
        self.ratio = check_ratio(ratio)
        self.shared_across_batch = shared_across_batch

    def __call__(self, *, input_ids: torch.Tensor, attention_mask: torch.Tensor, special_tokens_mask: torch.Tensor,
                 generator: torch.Generator) -> TextMaskingOutput:
        batch, length = input_ids.shape
        eligible = eligible_tokens(attention_mask, special_tokens_mask)  # [B, T]
        rows = 1 if self.shared_across_batch else batch
        scores = uniform((rows, length), generator=generator, device=input_ids.device).expand(batch, length)  # [B, T]
        if not self.shared_across_batch and self.ratio > 0:
            special = attention_mask.bool() & special_tokens_mask.bool()  # [B, T] real special tokens
            forced = torch.zeros_like(eligible)  # [B, T] the highest-scoring real token of each row
            forced.scatter_(1, scores.masked_fill(~eligible, -1.0).argmax(dim=1, keepdim=True), True)
            # kept first / dropped
            scores = scores - special.to(scores.dtype) + 2.0 * (forced & eligible).to(scores.dtype)
        out = shuffle_masking(scores, num_kept(length, self.ratio))
        mask = out.mask & eligible  # [B, T] dropped real tokens: the ones to predict
        labels = torch.where(mask, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
        return TextMaskingOutput(input_ids=input_ids, labels=labels, mask=mask, ids_keep=out.ids_keep,
                                 ids_restore=out.ids_restore, ids_masked=out.ids_masked)


COMPONENTS = [
    ComponentSpec("text_masking", "drop", TokenDropping, SCHEMA,
                  "M3AE token dropping: keep T - ceil(T*ratio) positions of the padded caption; predict dropped "
                  "tokens."),
]
