"""What an image tokenizer returns, and how much of its codebook it uses.

Every ``image_tokenizer`` component follows one protocol:

- ``encode(images [B,3,H,W]) -> codes [B,h,w]`` long, one code per ``patch_size`` pixels;
- ``decode(codes [B,h,w]) -> images [B,3,H,W]`` in the same normalised pixel space;
- ``forward(images, *, generator=None) -> TokenizerOutput`` for training;
- attributes ``num_codes`` and ``patch_size``.
"""

from __future__ import annotations

from typing import NamedTuple

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


def codebook_usage(codes: torch.Tensor, num_codes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(distinct codes used, perplexity) of ``codes`` (any shape, long).

    Perplexity is ``exp(entropy)`` of the codes' empirical distribution: the number of
    equally used codes that would give the same entropy (``num_codes`` at best, 1 when a
    single code is used everywhere).
    """
    counts = torch.bincount(codes.flatten(), minlength=num_codes).float()  # [K]
    probs = counts / counts.sum().clamp(min=1)
    entropy = -(probs * probs.clamp(min=1e-12).log()).sum()
    return (counts > 0).sum(), entropy.exp()
