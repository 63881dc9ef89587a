"""Random patch masking (MAE, He et al. 2022 §3; M3AE; VLMAE; MAMO).

Each sample (or the whole batch, as in M3AE's public code) draws uniform noise over the
patch grid; the ``num_kept(L, ratio) = L - ceil(L * ratio)`` lowest-noise patches stay
visible (the exact count rule of every masker, :func:`.common.masked_count`). The output
carries ``ids_keep`` / ``ids_restore`` so visible-only encoders can drop masked patches.
"""

from __future__ import annotations

import torch

from framework.api import ComponentSpec, MaskingOutput

from ._common import (
    RATIO,
    SHARED,
    check_ratio,
    num_kept,
    params_schema,
    shuffle_masking,
    uniform,
)

SCHEMA = params_schema({"ratio": {**RATIO, "default": 0.75}, "shared_across_batch": SHARED})


class RandomPatches:
    """Mask a uniformly random ``ratio`` of the patches; exactly ``ceil(L * ratio)`` are masked."""

    def __init__(self, *, ratio: float, shared_across_batch: bool) -> None:
        self.ratio = check_ratio(ratio)
        self.shared_across_batch = shared_across_batch

    def __call__(self, *, batch_size: int, grid: tuple[int, int], patch_size: int, generator: torch.Generator,
                 device: torch.device | str) -> MaskingOutput:
        length = grid[0] * grid[1]
        rows = 1 if self.shared_across_batch else batch_size
        noise = uniform((rows, length), generator=generator, device=device)  # [B or 1, L]
        return shuffle_masking(noise.expand(batch_size, length), num_kept(length, self.ratio))


COMPONENTS = [
    ComponentSpec(
        "image_masking", "random_patches", RandomPatches, SCHEMA,
        "MAE random patch masking (per-sample or one permutation per batch as in M3AE).",
    )
]
