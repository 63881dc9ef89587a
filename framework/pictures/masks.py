"""Mask pictures: what each view of a recipe hides, drawn as a PNG grid.

One row per sample: the original image (caption underneath), then one column per view
with its masked patches greyed out (the view's masked caption underneath). It is what
``framework masks RECIPE --out masks.png`` writes, so a user can see a recipe's masking
before training with it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from framework.types import MaskingOutput, TextMaskingOutput

GREY = 0.5
"""Value masked patches fade towards; a masked patch keeps 30 % of its content so its
position in the image stays readable."""
MIN_SIDE = 128
"""Images smaller than this are enlarged (nearest neighbour) so patches stay visible."""
PAD = 6
LINE = 14


def grey_out(images: torch.Tensor, mask: torch.Tensor, patch_size: int) -> torch.Tensor:
    """``images`` [B,3,H,W] in [0, 1] with the patches where ``mask`` [B,L] is True greyed out."""
    batch, _, height, width = images.shape
    grid = (height // patch_size, width // patch_size)
    if mask.shape[1] != grid[0] * grid[1]:
        raise ValueError(f"mask has {mask.shape[1]} positions but a {height}x{width} image in {patch_size}-px "
                         f"patches has {grid[0] * grid[1]}; pass the patch size the masks were drawn for")
    pixels = mask.view(batch, 1, *grid).float()  # [B, 1, H', W']
    pixels = pixels.repeat_interleave(patch_size, 2).repeat_interleave(patch_size, 3).bool()  # [B, 1, H, W]
    return torch.where(pixels, 0.3 * images + 0.7 * GREY, images)


def masked_caption_text(tokens: Sequence[str], mask: Sequence[bool], kept: Sequence[bool]) -> str:
    """A caption as one view shows it: dropped tokens as ``_``, masked ones in brackets.

    ``tokens`` are what the encoder receives (already corrupted for MLM), ``mask`` marks the
    tokens to predict and ``kept`` the tokens the encoder sees.
    """
    words = [("_" if not seen else f"[{tok}]" if hidden else tok) for tok, hidden, seen in zip(tokens, mask, kept)]
    return " ".join(words)


def text_mask_captions(tokenizer, text_mask: TextMaskingOutput, attention_mask: torch.Tensor,
                       special_tokens_mask: torch.Tensor) -> list[str]:
    """One string per sample of a view's masked captions, special tokens and padding left out."""
    kept = torch.ones_like(text_mask.mask)
    if text_mask.ids_keep is not None:  # token dropping: only ids_keep are seen
        kept = torch.zeros_like(text_mask.mask).scatter_(1, text_mask.ids_keep, True)
    shown = attention_mask.bool() & ~special_tokens_mask.bool()  # [B, T]
    out = []
    for ids, hidden, seen, real in zip(text_mask.input_ids.tolist(), text_mask.mask.tolist(), kept.tolist(),
                                       shown.tolist()):
        pick = [i for i, r in enumerate(real) if r]
        out.append(masked_caption_text(tokenizer.convert_ids_to_tokens([ids[i] for i in pick]),
                                       [hidden[i] for i in pick], [seen[i] for i in pick]))
    return out


def _to_pil(image: torch.Tensor, side: int) -> Image.Image:
    """[3,H,W] float in [0, 1] -> RGB picture whose shorter side is at least ``side``."""
    scale = max(1, -(-side // min(image.shape[1:])))
    image = F.interpolate(image[None].clamp(0, 1), scale_factor=scale, mode="nearest")[0]
    array = (image * 255).round().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(array, mode="RGB")


def _wrap(text: str, font: ImageFont.ImageFont, width: int) -> list[str]:
    """Greedy word wrap of ``text`` to ``width`` pixels."""
    chars = max(8, int(width / max(1.0, font.getlength("n"))))
    return textwrap.wrap(text, chars) or [""]


def draw_mask_grid(images: torch.Tensor, masks: Sequence[Optional[MaskingOutput]], patch_size: int,
                   captions: Optional[Sequence[str]] = None,
                   masked_captions: Optional[Sequence[Optional[Sequence[str]]]] = None,
                   path: str | Path = "masks.png", view_names: Optional[Sequence[str]] = None) -> Path:
    """Write a PNG grid of samples (rows) by original + views (columns).

    Args:
        images: [B, 3, H, W] float in [0, 1] (un-normalised).
        masks: one image mask per view (``None``: the view leaves the image whole).
        patch_size: patch side in pixels the masks were drawn for.
        captions: B original captions, written under the original images.
        masked_captions: per view, B masked captions (see :func:`text_mask_captions`) or ``None``.
        path: where the PNG goes; parent folders are created.
        view_names: column titles (default ``view 1``, ``view 2``, ...).

    Returns:
        The path written.
    """
    batch = images.shape[0]
    names = ["original", *(view_names or [f"view {i + 1}" for i in range(len(masks))])]
    texts = [list(captions) if captions is not None else [""] * batch]
    texts += [list(c) if c is not None else [""] * batch for c in (masked_captions or [None] * len(masks))]
    if len(names) != len(masks) + 1 or len(texts) != len(masks) + 1:
        raise ValueError(f"got {len(masks)} masks, {len(names) - 1} view names and {len(texts) - 1} caption lists; "
                         "give one of each per view")
    columns = [images] + [images if m is None else grey_out(images, m.mask.cpu(), patch_size) for m in masks]
    font = ImageFont.load_default()
    side = _to_pil(images[0].cpu(), MIN_SIDE).size
    wrapped = [[_wrap(texts[c][b], font, side[0]) for c in range(len(columns))] for b in range(batch)]
    row_heights = [side[1] + PAD + LINE * max(len(lines) for lines in row) + PAD for row in wrapped]
    canvas = Image.new("RGB", (len(columns) * (side[0] + PAD) + PAD, LINE + PAD + sum(row_heights)), "white")
    draw = ImageDraw.Draw(canvas)
    for c, name in enumerate(names):
        draw.text((PAD + c * (side[0] + PAD), 2), name, fill="black", font=font)
    top = LINE + PAD
    for b in range(batch):
        for c, column in enumerate(columns):
            left = PAD + c * (side[0] + PAD)
            canvas.paste(_to_pil(column[b].cpu(), MIN_SIDE), (left, top))
            for i, line in enumerate(wrapped[b][c]):
                draw.text((left, top + side[1] + PAD + i * LINE), line, fill="black", font=font)
        top += row_heights[b]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
