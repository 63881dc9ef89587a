"""Pieces every masker shares: seeded draws, the kept-count rule and the MAE shuffle.

Randomness always comes from the caller's ``torch.Generator`` and is drawn on the
generator's own device, then moved to the tensors' device. A CPU generator therefore
gives the same mask whether the batch lives on the CPU or on a GPU.
"""

from __future__ import annotations

from typing import Any

import torch

from framework.types import MaskingOutput

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


def integers(high: int, shape: tuple[int, ...], *, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """Uniform integers in [0, high) drawn on ``generator``'s device, returned on ``device``."""
    return torch.randint(high, shape, generator=generator, device=generator.device).to(device)


def num_kept(length: int, ratio: float) -> int:
    """How many of ``length`` positions stay visible: ``int(length * (1 - ratio))`` (MAE, M3AE).

    When ``ratio > 0`` at least one position is masked, even where floating-point
    rounding would otherwise keep them all.
    """
    keep = int(length * (1.0 - ratio))
    return min(keep, length - 1) if ratio > 0 and length > 0 else keep


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
