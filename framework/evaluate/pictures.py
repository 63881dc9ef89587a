"""Pictures with PIL only (no plotting dependency): image grids and training curves.

``image_grid`` lays out columns of images (original | masked | reconstruction) with
titles; ``draw_curves`` plots one panel per metric of ``metrics.jsonl``. Both return a PIL
image of a size fixed by their arguments, so callers and tests know what they get.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

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


PALETTE = ((31, 119, 180), (214, 39, 40), (44, 160, 44), (148, 103, 189), (255, 127, 14), (23, 190, 207))


def _panel(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], name: str,
           points: Sequence[tuple[float, float]], colour: tuple[int, int, int], font: ImageFont.ImageFont) -> None:
    """One metric's line plot inside ``box`` (x0, y0, x1, y1) with its range written on the axes."""
    x0, y0, x1, y1 = box
    left, top, right, bottom = x0 + 44, y0 + 18, x1 - 8, y1 - 18  # plot area inside the axis labels
    draw.rectangle((left, top, right, bottom), outline=(160, 160, 160))
    steps, values = [p[0] for p in points], [p[1] for p in points]
    lo, hi = min(values), max(values)
    span_y, span_x = (hi - lo) or 1.0, (max(steps) - min(steps)) or 1.0
    xy = [(left + (s - min(steps)) / span_x * (right - left), bottom - (v - lo) / span_y * (bottom - top))
          for s, v in points]
    if len(xy) > 1:
        draw.line(xy, fill=colour, width=2)
    x, y = xy[-1]  # mark the last value (the only one after a single log)
    draw.ellipse((x - 2, y - 2, x + 2, y + 2), fill=colour)
    draw.text((x0 + 4, y0 + 2), f"{name} (last {values[-1]:.4g})", fill="black", font=font)
    draw.text((x0 + 2, top), f"{hi:.3g}", fill="black", font=font)
    draw.text((x0 + 2, bottom - 10), f"{lo:.3g}", fill="black", font=font)
    draw.text((left, bottom + 4), f"{min(steps):g}", fill="black", font=font)
    draw.text((right - 6 * len(f"{max(steps):g}"), bottom + 4), f"{max(steps):g}", fill="black", font=font)


def curve_series(records: Sequence[Mapping[str, object]], keys: Sequence[str] | None = None,
                 skip: Sequence[str] = ("step", "samples_seen")) -> dict[str, list[tuple[float, float]]]:
    """(step, value) points of each numeric metric in ``records`` (``keys``: only these)."""
    series: dict[str, list[tuple[float, float]]] = {}
    for record in records:
        for key, value in record.items():
            if key in skip or (keys is not None and key not in keys):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                series.setdefault(key, []).append((float(record["step"]), float(value)))
    missing = [k for k in keys or () if k not in series]
    if missing:
        raise ValueError(f"no metric named {missing} in the records; known: {sorted(series)}")
    return series


def draw_curves(series: Mapping[str, Sequence[tuple[float, float]]], *, panel: tuple[int, int] = (320, 180),
                columns: int = 3) -> Image.Image:
    """One panel (``panel`` = width, height) per series, ``columns`` panels a row."""
    if not series:
        raise ValueError("no metrics to plot; is metrics.jsonl empty?")
    rows = -(-len(series) // columns)
    width, height = panel
    canvas = Image.new("RGB", (min(columns, len(series)) * width, rows * height), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    for i, (name, points) in enumerate(series.items()):
        x, y = (i % columns) * width, (i // columns) * height
        _panel(draw, (x, y, x + width, y + height), name, points, PALETTE[i % len(PALETTE)], font)
    return canvas
