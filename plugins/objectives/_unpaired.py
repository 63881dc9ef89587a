"""Losses over batches that mix paired and unpaired samples (M3AE §3, spec m3ae.md).

Batches from text-only or image-only sources carry ``has_image`` / ``has_text`` [B]. A
reconstruction objective of modality *own* scores only samples that have *own*; among
them, samples whose *other* modality is absent are "unpaired". As in M3AE, where an
unpaired text batch adds ``unpaired_text_loss_weight * text_loss`` to the paired loss,
the loss is ``mean(paired) + unpaired_weight * mean(unpaired)``, each mean over that
group's scored positions, so mixing both kinds into one batch gives the same loss as
M3AE's separate batches. Batches without these keys are all paired.
"""

from __future__ import annotations

from typing import Any, Optional

import torch

from framework.api import Batch, global_denominator

UNPAIRED_WEIGHT: dict[str, Any] = {
    "type": "number", "minimum": 0, "default": 1.0,
    "description": "Weight of the mean loss of samples whose other modality is absent (M3AE's "
                   "unpaired_text_loss_weight for MLM, its image analogue for MIM); added to the paired mean.",
}


def presence(batch: Batch, modality: str) -> Optional[torch.Tensor]:
    """[B] bool: which samples have ``modality`` ("image" or "text"); None when the batch does
    not record it (every sample has it), so paired-only batches pay nothing for the split."""
    key = f"has_{modality}"
    return batch[key].bool() if key in batch else None


def paired_unpaired_mean(per_item: torch.Tensor, weights: torch.Tensor, other_present: Optional[torch.Tensor],
                         unpaired_weight: float) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Group means of scored positions.

    Args:
        per_item: [B,K] loss of each candidate position.
        weights: [B,K] weight of each position (zero where not scored).
        other_present: [B] bool, whether each sample has the other modality (None: all do).
        unpaired_weight: multiplier of the unpaired group's mean.

    Returns:
        The loss and ``{"unpaired_loss": ...}`` (zero when every sample is paired).
    """
    # Denominators count over all ranks (one all-reduce for both groups), so N ranks compute
    # one process's loss, and both terms always exist, so every rank logs the same keys and
    # makes the same collective calls, with no host sync.
    if other_present is None:  # every sample paired: one group, and the unpaired mean is 0
        paired_loss = (per_item * weights).sum() / global_denominator(weights.sum())
        return paired_loss, {"unpaired_loss": torch.zeros((), device=paired_loss.device)}
    paired = other_present[:, None].to(weights.dtype)  # [B,1]
    groups = torch.stack([weights * paired, weights * (1 - paired)])  # [2,B,K]: paired, unpaired
    sums = (per_item * groups).sum(dim=(1, 2))  # [2]
    paired_loss, unpaired_loss = (sums / global_denominator(groups.sum(dim=(1, 2)))).unbind()
    return paired_loss + unpaired_weight * unpaired_loss, {"unpaired_loss": unpaired_loss.detach()}
