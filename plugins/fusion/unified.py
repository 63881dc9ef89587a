"""Fusion ``unified``: M3AE's single transformer over both modalities (Geng et al. 2022; spec m3ae.md).

The sequence ``[CLS] + image tokens + text tokens`` (the [CLS] arrives first in the image
encoding, from ``patch_embed``) goes through pre-norm timm ViT blocks (SDPA) with text padding excluded from
attention, then a final LayerNorm (every LayerNorm with eps 1e-6, flax's default, as in
M3AE's JAX code). ``pooled`` is the [CLS]; the output is split back into the
image stream [B,1+N',D] and the text stream [B,T',D] in their input layouts. With
token-dropping encoders the sequence holds only kept tokens, so cost follows visible tokens.

Sizes (spec): small 384/12/6, base 768/12/12, large 1024/24/16 (width/depth/heads), MLP
ratio 4. Encoder tokens of another width pass through a linear projection first.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from timm.models.vision_transformer import Block
from torch import nn

from framework.api import ComponentSpec, FusedEncoding, ImageEncoding, TextEncoding

from .._layers.projection import projection

SIZES = {"small": (384, 12, 6), "base": (768, 12, 12), "large": (1024, 24, 16)}
"""M3AE encoder sizes: (width, depth, heads)."""


class UnifiedFusion(nn.Module):
    """One pre-norm transformer over the concatenated image and text tokens."""

    encodes_image_alone = True  # joint self-attention: an empty caption leaves an image encoder

    def __init__(
        self,
        *,
        width: int,
        depth: int,
        heads: int,
        mlp_ratio: float,
        image_width: int,
        text_width: int,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"fusion width {width} is not divisible by {heads} heads; pick heads dividing the width")
        self.image_proj = projection(image_width, width)
        self.text_proj = projection(text_width, width)
        self.blocks = nn.ModuleList(Block(width, heads, mlp_ratio, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.width = self.image_width = self.text_width = width

    def forward(self, image: ImageEncoding, text: TextEncoding) -> FusedEncoding:
        """image tokens [B,1+N',Di] ([CLS] first), text tokens [B,T',Dt] -> streams [B,*,D], pooled [B,D]."""
        v, w = self.image_proj(image.tokens), self.text_proj(text.tokens)  # [B,1+N',D], [B,T',D]
        split = v.shape[1]
        x = torch.cat([v, w], dim=1)  # [B,1+N'+T',D]
        valid = torch.cat(
            [torch.ones_like(v[..., 0], dtype=torch.bool), text.attention_mask.bool()], dim=1
        )[:, None, None, :]  # [B,1,1,S]: keys that may be attended
        for block in self.blocks:
            x = block(x, attn_mask=valid)
        x = self.norm(x)
        return FusedEncoding(image=x[:, :split], text=x[:, split:], pooled=x[:, 0])


def _size_property(index: int, what: str) -> dict[str, Any]:
    return {
        "type": ["integer", "null"],
        "minimum": 1,
        "default": None,
        "description": f"{what}; null takes it from `size` ({', '.join(f'{k} {v[index]}' for k, v in SIZES.items())})",
    }


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "size": {
            "enum": sorted(SIZES),
            "default": "base",
            "description": "M3AE encoder size preset",
        },
        "width": _size_property(0, "token width"),
        "depth": _size_property(1, "number of blocks"),
        "heads": _size_property(2, "attention heads"),
        "mlp_ratio": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 4.0,
            "description": "MLP hidden width / width",
        },
    },
}


def build_unified(
    *,
    size: str,
    width: Optional[int],
    depth: Optional[int],
    heads: Optional[int],
    mlp_ratio: float,
    context: Any,
) -> UnifiedFusion:
    preset = SIZES[size]
    return UnifiedFusion(
        width=width or preset[0],
        depth=depth or preset[1],
        heads=heads or preset[2],
        mlp_ratio=mlp_ratio,
        image_width=context["image_width"],
        text_width=context["text_width"],
    )


COMPONENTS = [
    ComponentSpec("fusion", "unified", build_unified, SCHEMA, __doc__.strip().splitlines()[0])
]
