"""Pieces every masker shares: seeded draws, the masked-count rule and the MAE shuffle.

**The count rule.** Every masker masks ``ceil(n * ratio)`` of ``n`` positions (patches,
blocks, caption positions or eligible tokens), computed exactly on the ratio as written
(its shortest decimal: 0.3 is 3/10): :func:`masked_count`. It is MAE's and M3AE's
``n - int(n * (1 - ratio))`` and SimMIM's ``ceil(n * ratio)`` without their
floating-point error (``int(5 * (1 - 0.8))`` keeps 0 of 5). It masks at least one
position whenever ``ratio > 0``, and all of them only when ``n * (1 - ratio) < 1``.

Randomness always comes from the caller's ``torch.Generator`` and is drawn on the
generator's own device, then moved to the tensors' device. A CPU generator therefore
gives the same mask whether the batch lives on the CPU or on a GPU.
"""

from __future__ import annotations

import math
from fractions import Fraction
from functools import lru_cache
from typing import Any

import torch

from framework.api import MaskingOutput

RATIO: dict[str, Any] = {
    "type": "number",
    "minimum": 0,
    "exclusiveMaximum": 1,
    "description": "Fraction of eligible positions to mask, in [0, 1).",
}
SHARED: dict[str, Any] = {
    "type": "boolean",
    "default": False,
    "description": "Draw one permutation for the whole batch (M3AE's public code) instead of one per sample (MAE).",
}


def params_schema(properties: dict[str, Any]) -> dict[str, Any]:
    """A masker's params schema: an object of ``properties`` and nothing else."""
    return {"type": "object", "additionalProperties": False, "properties": properties}


def check_ratio(ratio: float) -> float:
    """Refuse a ratio outside [0, 1) for callers that bypass the schema."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"mask ratio must be in [0, 1), got {ratio}; 1 would hide every position")
    return float(ratio)


def uniform(shape: tuple[int, ...], *, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """U[0,1) noise of ``shape`` drawn on ``generator``'s device, returned on ``device``."""
    return torch.rand(shape, generator=generator, device=generator.device).to(device)


def integers(high: int, shape: tuple[int, ...], *, generator: torch.Generator,
             device: torch.device | str) -> torch.Tensor:
    """Uniform integers in [0, high) drawn on ``generator``'s device, returned on ``device``."""
    return torch.randint(high, shape, generator=generator, device=generator.device).to(device)


def ratio_fraction(ratio: float) -> Fraction:
    """``ratio`` as written in a recipe: the shortest decimal that reads back as this float
    (``0.3`` is 3/10, not the binary 0.29999999999999998890)."""
    return Fraction(repr(float(ratio)))


@lru_cache(maxsize=4096)
def masked_count(length: int, ratio: float) -> int:
    """How many of ``length`` positions a masker masks: ``ceil(length * ratio)``, exactly.

    ``ratio`` must be in [0, 1): the count is at least 1 when ``ratio > 0`` and
    ``length > 0``, and some position stays visible whenever ``length * (1 - ratio) >= 1``.
    For example 4 of 5 at 0.8, 118 of 196 at 0.6, 147 of 196 at 0.75.
    """
    return math.ceil(length * ratio_fraction(check_ratio(ratio)))


def num_kept(length: int, ratio: float) -> int:
    """How many of ``length`` positions stay visible: ``length - masked_count(length, ratio)``."""
    return length - masked_count(length, ratio)


def masked_counts(lengths: torch.Tensor, ratio: float, most: int) -> torch.Tensor:
    """:func:`masked_count` of each entry of the integer tensor ``lengths`` (each at most
    ``most``), on its device without a host sync: ``(n * p + q - 1) // q`` for the ratio
    ``p / q``, or a lookup table when ``most * p`` could overflow int64."""
    fraction = ratio_fraction(check_ratio(ratio))
    p, q = fraction.numerator, fraction.denominator
    if (most + 1) * q < 2**62:
        return (lengths.long() * p + (q - 1)) // q
    return _count_table(most, float(ratio), str(lengths.device))[lengths.long()]


@lru_cache(maxsize=64)
def _count_table(most: int, ratio: float, device: str) -> torch.Tensor:
    """[most + 1] masked counts of 0 .. most positions, built once per device."""
    return torch.tensor([masked_count(n, ratio) for n in range(most + 1)], dtype=torch.long, device=device)


def shuffle_masking(scores: torch.Tensor, keep: int) -> MaskingOutput:
    """MAE's shuffle: keep the ``keep`` lowest-scoring positions of each row.

    Args:
        scores: [B, L] float or integer; lower scores are kept first. A stable sort
            breaks ties by position, so equal scores give the same result on any device.
            Rows expanded from one (stride 0, a mask shared by the batch) are sorted once.
        keep: number of visible positions per row.
    """
    batch, length = scores.shape
    if batch > 1 and scores.stride(0) == 0:
        one = shuffle_masking(scores[:1], keep)
        return MaskingOutput(**{name: value.expand(batch, -1) for name, value in vars(one).items()})
    ids_shuffle = torch.argsort(scores, dim=1, stable=True)  # [B, L] positions, kept first
    ids_restore = torch.argsort(ids_shuffle, dim=1, stable=True)  # [B, L] rank of each position
    return MaskingOutput(mask=ids_restore >= keep, ids_keep=ids_shuffle[:, :keep], ids_restore=ids_restore,
                         ids_masked=ids_shuffle[:, keep:])
