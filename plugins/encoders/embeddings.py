"""Embedding-only encoders of M3AE (Geng et al. 2022; spec shared/papers/m3ae.md): ``patch_embed``
and ``token_embed``. The unified transformer (fusion ``unified``) does all the encoding.

- ``patch_embed``: 16x16 patches flattened (p*p*3 values, MAE order) and projected by one
  linear layer, plus fixed 2-D sin-cos positions and a learned image type embedding; a
  learned [CLS] (no position, no type) leads the sequence.
- ``token_embed``: a learned embedding table plus fixed 1-D sin-cos positions and a learned
  text type embedding.

Both drop masked tokens MAE-style when the mask has ``ids_keep`` (layout ``visible``), after
adding positions, so kept tokens keep their places. Learned tables start as N(0, 0.02).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from framework.api import (
    ComponentSpec,
    ImageEncoding,
    MaskingOutput,
    TextEncoding,
    TextMaskingOutput,
    gather_tokens,
    patchify,
)

from .._layers.posembed import sincos_1d, sincos_2d
from ._sizes import input_side


def learned(*shape: int) -> nn.Parameter:
    return nn.Parameter(nn.init.normal_(torch.empty(*shape), std=0.02))


class PatchEmbedEncoder(nn.Module):
    """Linear patch projection + 2-D sin-cos + image type embedding, [CLS] first."""

    def __init__(self, *, width: int, patch_size: int, image_size: int) -> None:
        super().__init__()
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not a multiple of patch_size {patch_size}"
            )
        self.width, self.patch_size = width, patch_size
        self.grid = (image_size // patch_size,) * 2
        self.num_patches = self.grid[0] * self.grid[1]
        self.masked_layout = "visible"  # masked patches are dropped
        self.proj = nn.Linear(3 * patch_size * patch_size, width)
        self.register_buffer(
            "pos_embed", sincos_2d(self.grid, width)[None], persistent=False
        )  # [1,N,D]
        self.type_embed = learned(1, 1, width)
        self.cls_token = learned(1, 1, width)

    def no_weight_decay(self) -> set[str]:
        """M3AE decays neither type embeddings nor [CLS] (spec m3ae.md, Training)."""
        return {"type_embed", "cls_token"}

    def forward(self, images: torch.Tensor, mask: Optional[MaskingOutput] = None) -> ImageEncoding:
        """images [B,3,H,W] -> tokens [B,1+N',D]; N' = kept patches when ``mask`` drops them."""
        x = (
            self.proj(patchify(images, self.patch_size)) + self.pos_embed + self.type_embed
        )  # [B,N,D]
        layout = "full"
        if mask is not None:
            if mask.ids_keep is None:
                raise ValueError(
                    "image_encoder 'patch_embed' drops masked patches and needs a masker that keeps "
                    "the same number of patches per sample (ids_keep)"
                )
            x, layout = gather_tokens(x, mask.ids_keep), "visible"  # [B,K,D]
        cls = self.cls_token.expand(x.shape[0], -1, -1)  # [B,1,D]
        return ImageEncoding(torch.cat([cls, x], dim=1), layout, mask, self.grid)


class TokenEmbedEncoder(nn.Module):
    """Embedding table + 1-D sin-cos + text type embedding."""

    def __init__(self, *, width: int, vocab_size: int, max_positions: int) -> None:
        super().__init__()
        self.width = width
        self.embed = nn.Embedding(vocab_size, width)
        nn.init.normal_(self.embed.weight, std=0.02)
        self.register_buffer(
            "pos_embed", sincos_1d(torch.arange(max_positions), width)[None], persistent=False
        )
        self.type_embed = learned(1, 1, width)

    def no_weight_decay(self) -> set[str]:
        """M3AE decays no type embedding (spec m3ae.md, Training)."""
        return {"type_embed"}

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        mask: Optional[TextMaskingOutput] = None,
    ) -> TextEncoding:
        """input_ids, attention_mask [B,T] -> tokens [B,T',D] (T' = kept count for dropping masks)."""
        length = input_ids.shape[1]
        if length > self.pos_embed.shape[1]:
            raise ValueError(
                f"text of {length} tokens is longer than max_positions {self.pos_embed.shape[1]}"
            )
        x = self.embed(input_ids) + self.pos_embed[:, :length] + self.type_embed  # [B,T,D]
        if mask is not None and mask.ids_keep is not None:
            x = gather_tokens(x, mask.ids_keep)  # [B,K,D]
            attention_mask = torch.gather(attention_mask, 1, mask.ids_keep)  # [B,K]
        return TextEncoding(x, attention_mask, mask)


PATCH_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "width": {
            "type": "integer",
            "minimum": 4,
            "multipleOf": 4,
            "default": 768,
            "description": "token width; equal to the unified transformer's (M3AE-base: 768)",
        },
        "patch_size": {
            "type": "integer",
            "minimum": 1,
            "default": 16,
            "description": "square patch side in pixels",
        },
        "image_size": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "input side in pixels; null takes the data's image_size",
        },
    },
}

TOKEN_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "width": {
            "type": "integer",
            "minimum": 2,
            "multipleOf": 2,
            "default": 768,
            "description": "token width; equal to the unified transformer's (M3AE-base: 768)",
        },
        "max_positions": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "rows of the sin-cos table; null takes the data's max_text_len",
        },
    },
}


def build_patch_embed(
    *, width: int, patch_size: int, image_size: Optional[int], context: Any
) -> PatchEmbedEncoder:
    return PatchEmbedEncoder(
        width=width, patch_size=patch_size, image_size=input_side(image_size, context)
    )


def build_token_embed(
    *, width: int, max_positions: Optional[int], context: Any
) -> TokenEmbedEncoder:
    return TokenEmbedEncoder(
        width=width,
        vocab_size=context["vocab_size"],
        max_positions=max_positions or context["max_text_len"],
    )


COMPONENTS = [
    ComponentSpec(
        "image_encoder",
        "patch_embed",
        build_patch_embed,
        PATCH_SCHEMA,
        "M3AE image embedding: linear patch projection, 2-D sin-cos, type embedding, [CLS]",
    ),
    ComponentSpec(
        "text_encoder",
        "token_embed",
        build_token_embed,
        TOKEN_SCHEMA,
        "M3AE text embedding: token table, 1-D sin-cos, type embedding",
    ),
]
