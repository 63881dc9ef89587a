"""Pictures with PIL only (no plotting dependency): image grids of evaluation results.

``image_grid`` lays out columns of images (original | masked | reconstruction) with
titles and returns a PIL image of a size fixed by its arguments, so callers and tests know
what they get. Training curves (``draw_curves``, ``curve_series``) live in
:mod:`framework.pictures.curves`.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

# Training curves moved to framework.pictures.curves; imported here for callers of this module.
from framework.pictures.curves import curve_series, draw_curves  # noqa: F401 (re-exported)

PAD = 6
TITLE = 14
"""Pixels of padding between cells and of the title row."""


def denormalize(images: torch.Tensor, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    """Undo the data pipeline's normalisation: [B,3,H,W] -> [0, 1]."""
    m = torch.tensor(mean, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=images.dtype, device=images.device).view(1, 3, 1, 1)
    return (images * s + m).clamp(0, 1)


def grid_size(rows: int, columns: int, cell: int) -> tuple[int, int]:
    """(width, height) in pixels of an :func:`image_grid`."""
    return columns * (cell + PAD) + PAD, TITLE + PAD + rows * (cell + PAD)


def image_grid(columns: Sequence[torch.Tensor], titles: Sequence[str], cell: int) -> Image.Image:
    """A grid with one column per [B,3,H,W] tensor in [0, 1], each image resized to ``cell`` px."""
    if len(columns) != len(titles):
        raise ValueError(f"got {len(columns)} image columns but {len(titles)} titles; give one title per column")
    rows = columns[0].shape[0]
    canvas = Image.new("RGB", grid_size(rows, len(columns), cell), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for c, (images, title) in enumerate(zip(columns, titles)):
        left = PAD + c * (cell + PAD)
        draw.text((left, 2), title, fill="black", font=font)
        resized = F.interpolate(images.detach().float().cpu().clamp(0, 1), size=(cell, cell), mode="nearest")
        pixels = (resized * 255).round().byte().permute(0, 2, 3, 1).numpy()  # [B,cell,cell,3]
        for r in range(rows):
            canvas.paste(Image.fromarray(pixels[r], mode="RGB"), (left, TITLE + PAD + r * (cell + PAD)))
    return canvas
