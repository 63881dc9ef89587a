"""Helpers of the fusion tests: build contexts, tiny encodings, hand parameter counts."""

from __future__ import annotations

import torch

from framework.registry import BuildContext, Registry
from framework.types import ImageEncoding, TextEncoding

B, N, T = 2, 6, 5


def make_context(registry: Registry, image_width: int = 32, text_width: int = 32) -> BuildContext:
    return BuildContext(
        registry,
        {
            "image_width": image_width,
            "text_width": text_width,
            "vocab_size": 40,
            "pad_token_id": 0,
            "max_text_len": T,
        },
    )


def encodings(
    image_width: int = 32, text_width: int = 32, seed: int = 0
) -> tuple[ImageEncoding, TextEncoding]:
    """Image tokens [B,1+N,Di] and text tokens [B,T,Dt] whose second sample has 2 pads."""
    g = torch.Generator().manual_seed(seed)
    attention = torch.ones(B, T, dtype=torch.long)
    attention[1, T - 2 :] = 0
    image = ImageEncoding(
        torch.randn(B, 1 + N, image_width, generator=g, requires_grad=True), "full", None, (2, 3)
    )
    return image, TextEncoding(
        torch.randn(B, T, text_width, generator=g, requires_grad=True), attention
    )


def with_padding_changed(text: TextEncoding) -> TextEncoding:
    """The same text with different features at padded positions."""
    noise = torch.randn(text.tokens.shape, generator=torch.Generator().manual_seed(9))
    pad = text.attention_mask[..., None] == 0
    return TextEncoding(torch.where(pad, noise, text.tokens), text.attention_mask)


def cross_layer_params(d: int, inter: int) -> int:
    """Hand count of one post-norm layer: self-attn + cross-attn (each q,k,v,o + LayerNorm) + MLP."""
    attention = 4 * d * d + 4 * d + 2 * d
    return 2 * attention + (d * inter + inter) + (inter * d + d) + 2 * d
