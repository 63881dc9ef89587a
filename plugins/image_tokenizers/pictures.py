"""Reconstruction pictures: what an image tokenizer keeps of an image after ``decode(encode(x))``.

One row per sample, the original on the left and the image decoded from its codes on the
right, both mapped back from the normalised space with the data's mean/std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from framework.api import denormalize

PAD = 4
MIN_SIDE = 96
"""Images smaller than this are enlarged (nearest neighbour) so the codes' cells stay visible."""


@torch.no_grad()
def reconstruct(tokenizer: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """``decode(encode(images))`` in eval mode, restoring the tokenizer's mode afterwards."""
    was_training = tokenizer.training
    tokenizer.eval()
    try:
        return tokenizer.decode(tokenizer.encode(images))
    finally:
        tokenizer.train(was_training)


def draw_reconstructions(tokenizer: nn.Module, images: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                         path: str | Path) -> Path:
    """Write a PNG of originals (left) next to their reconstructions from codes (right).

    Args:
        tokenizer: an ``image_tokenizer`` component (``encode`` / ``decode``).
        images: [B,3,H,W] normalised as the tokenizer was trained.
        mean, std: the data normalisation, to map pixels back to [0, 1].
        path: where the PNG goes; parent folders are created.

    Returns:
        The path written.
    """
    pairs = torch.stack([denormalize(images, mean, std), denormalize(reconstruct(tokenizer, images), mean, std)], 1)
    b, _, _, h, w = pairs.shape  # [B,2,3,H,W]
    scale = max(1, -(-MIN_SIDE // min(h, w)))
    pairs = F.interpolate(pairs.flatten(0, 1).float(), scale_factor=scale,
                          mode="nearest").view(b, 2, 3, h * scale, w * scale)
    canvas = Image.new("RGB", (2 * (w * scale + PAD) + PAD, b * (h * scale + PAD) + PAD), "white")
    for row in range(b):
        for col in range(2):
            array = (pairs[row, col] * 255).round().byte().permute(1, 2, 0).cpu().numpy()
            canvas.paste(Image.fromarray(array, mode="RGB"),
                         (PAD + col * (w * scale + PAD), PAD + row * (h * scale + PAD)))
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
