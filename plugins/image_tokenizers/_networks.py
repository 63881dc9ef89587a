"""Small convolutional encoder and decoder shared by the image tokenizers.

The shape follows the VQ-VAE / VQGAN / DALL-E dVAE family (van den Oord et al. 2017;
Esser et al. 2021; Ramesh et al. 2021): a stem convolution, ``log2(patch_size)``
stride-2 stages each followed by residual blocks, and a 1x1 projection to the latent
width. One latent vector per ``patch_size`` x ``patch_size`` pixels, so a tokenizer with
the ViT's patch size gives exactly one code per ViT patch. The decoder mirrors it with
nearest-neighbour upsampling (no checkerboard artefacts of transposed convolutions).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def stages(patch_size: int) -> int:
    """Number of stride-2 stages that downsample by ``patch_size`` (a power of two)."""
    if patch_size < 1 or patch_size & (patch_size - 1):
        raise ValueError(f"image tokenizer patch_size must be a power of two (1, 2, 4, 8, 16, ...), got {patch_size}")
    return patch_size.bit_length() - 1


class ResBlock(nn.Module):
    """Pre-activation residual block: GroupNorm -> SiLU -> 3x3 conv, twice, plus identity."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        groups = 8 if channels % 8 == 0 else 1
        self.body = nn.Sequential(
            nn.GroupNorm(groups, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(groups, channels), nn.SiLU(), nn.Conv2d(channels, channels, 3, padding=1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ConvEncoder(nn.Module):
    """images [B,3,H,W] -> latents [B,out_dim,H/p,W/p]."""

    def __init__(self, *, channels: int, res_blocks: int, patch_size: int, out_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(3, channels, 3, padding=1)]
        for _ in range(stages(patch_size)):
            layers.append(nn.Conv2d(channels, channels, 4, stride=2, padding=1))  # halves H and W
            layers.extend(ResBlock(channels) for _ in range(res_blocks))
        layers += [nn.SiLU(), nn.Conv2d(channels, out_dim, 1)]
        self.net = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net(images)


class ConvDecoder(nn.Module):
    """latents [B,in_dim,h,w] -> images [B,3,h*p,w*p] (in the normalised pixel space)."""

    def __init__(self, *, channels: int, res_blocks: int, patch_size: int, in_dim: int) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Conv2d(in_dim, channels, 3, padding=1)]
        for _ in range(stages(patch_size)):
            layers.extend(ResBlock(channels) for _ in range(res_blocks))
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(channels, channels, 3, padding=1)]
        layers += [nn.SiLU(), nn.Conv2d(channels, 3, 3, padding=1)]
        self.net = nn.Sequential(*layers)

    def forward(self, latents: torch.Tensor) -> torch.Tensor:
        return self.net(latents)


NETWORK_PROPERTIES: dict[str, Any] = {
    "patch_size": {"type": ["integer", "null"], "minimum": 1, "default": None,
                   "description": "Pixels per code side, a power of two; null takes the image encoder's patch size "
                                  "(a tokenizer-training recipe without encoders must set it)."},
    "channels": {"type": "integer", "minimum": 8, "default": 64,
                 "description": "Convolution width of encoder and decoder."},
    "res_blocks": {"type": "integer", "minimum": 0, "default": 1,
                   "description": "Residual blocks after each down/up-sampling stage."},
    "num_codes": {"type": "integer", "minimum": 2, "default": 512,
                  "description": "Codebook size (classes of the discrete_tokens target)."},
}
"""Schema properties both tokenizers share."""


def resolve_patch_size(patch_size: int | None, context: Any) -> int:
    """``patch_size`` or, when null, the image encoder's (from the build context)."""
    if patch_size is not None:
        return patch_size
    if context is None or context.get("patch_size") is None:
        raise ValueError("image tokenizer has no patch_size and the recipe has no image encoder to take it from; "
                         "set the tokenizer's \"patch_size\" (e.g. 8)")
    return context["patch_size"]
