"""What an image tokenizer returns, and how much of its codebook it uses.

Every ``image_tokenizer`` component follows one protocol:

- ``encode(images [B,3,H,W]) -> codes [B,h,w]`` long, one code per ``patch_size`` pixels;
- ``decode(codes [B,h,w]) -> images [B,3,H,W]`` in the same normalised pixel space;
- ``forward(images, *, generator=None, weights=None) -> TokenizerOutput`` for training, where
  ``weights`` [B] scales each sample's part of the losses (0: a placeholder image to ignore);
- attributes ``num_codes`` and ``patch_size``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch


class TokenizerOutput(NamedTuple):
    """A training pass: ``reconstruction`` [B,3,H,W], loss terms and the codes [B,h,w].

    ``losses`` maps a term's name to a scalar that already carries its weight (e.g.
    ``commitment`` = beta x ||z - sg(e)||^2); the training loss is their sum.
    ``losses["reconstruction"]`` is the plain mean squared error.
    """

    reconstruction: torch.Tensor
    losses: dict[str, torch.Tensor]
    codes: torch.Tensor


def codebook_usage(codes: torch.Tensor, num_codes: int,
                   weights: Optional[torch.Tensor] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(distinct codes used, perplexity) of ``codes`` [B,...] long, counting only samples of
    nonzero ``weights`` [B] (all when None). Counts go into a fixed-size table (no
    ``bincount``, whose output size a GPU would report to the host).

    Perplexity is ``exp(entropy)`` of the codes' empirical distribution: the number of
    equally used codes that would give the same entropy (``num_codes`` at best, 1 when a
    single code is used everywhere).
    """
    per_code = torch.ones_like(codes, dtype=torch.float32)
    if weights is not None:
        per_code = per_code * (weights > 0).float().view(-1, *([1] * (codes.ndim - 1)))
    counts = torch.zeros(num_codes, device=codes.device).scatter_add_(0, codes.flatten(), per_code.flatten())  # [K]
    probs = counts / counts.sum().clamp(min=1)
    entropy = -(probs * probs.clamp(min=1e-12).log()).sum()
    return (counts > 0).sum(), entropy.exp()


def sample_mean(values: torch.Tensor, weights: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean of ``values`` [B,...] over everything but the batch, then over samples weighted
    by ``weights`` [B] (a plain mean when None; 0 when every weight is 0)."""
    per_sample = values.flatten(1).mean(1)  # [B]
    if weights is None:
        return per_sample.mean()
    return (per_sample * weights).sum() / weights.sum().clamp(min=1)
