"""Image encoder ``vit``: a timm VisionTransformer with three ways of handling masked patches.

- ``input`` (SimMIM, Xie et al. 2022; MaskVLM Sec. 3.1): a learned mask token replaces the
  embeddings of masked patches before the position embeddings and blocks; every patch is
  encoded (layout ``full``).
- ``drop`` (MAE, He et al. 2022; VLMAE Sec. 3.1): only the kept patches and [CLS] enter the
  blocks (layout ``visible``, in ``mask.ids_keep`` order) — cost scales with visible patches.
- ``after_encoder`` (MAMO Sec. 3.1): visible patches are encoded as in ``drop``; then a shared
  learned mask token fills each masked position, the grid order is restored and positional
  embeddings are added to all tokens of this full set (layout ``full``); unmasked images get
  the same positional step so that masked and unmasked views stay comparable.

Without a mask every patch is encoded (layout ``full``). The ViT itself is timm's
(``patch_embed``, ``pos_embed``, ``blocks``, ``norm``), built directly at the given size.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import torch
from timm.layers import trunc_normal_
from timm.models import load_checkpoint
from timm.models.vision_transformer import VisionTransformer, checkpoint_filter_fn
from torch import nn

from framework.api import ComponentSpec, ImageEncoding, MaskingOutput, gather_tokens

from ._sizes import input_side

TIMM_ARCHITECTURE = "vit_base_patch16_224"
"""The timm model an export names; the recorded kwargs override all of its sizes."""
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "model.pth")
"""File names looked for when ``checkpoint`` names a directory (timm's hub layout first)."""


def resolve_checkpoint(checkpoint: str) -> str:
    """A local weights file: ``checkpoint`` itself, or the first of WEIGHT_FILES inside it."""
    path = Path(checkpoint)
    if path.is_file():
        return str(path)
    found = [path / name for name in WEIGHT_FILES if (path / name).is_file()]
    if not found:
        raise FileNotFoundError(
            f"ViT checkpoint '{checkpoint}' is neither a weights file nor a directory holding one of "
            f"{', '.join(WEIGHT_FILES)}; download timm weights once and name the local file"
        )
    return str(found[0])


def _encoder_weights(
    state_dict: dict[str, torch.Tensor], model: VisionTransformer
) -> dict[str, torch.Tensor]:
    """timm's ViT checkpoint filter (resamples position/patch embeddings to this size) minus the
    classifier head, which this encoder does not have."""
    return {
        k: v
        for k, v in checkpoint_filter_fn(state_dict, model).items()
        if not k.startswith("head.")
    }


class ViTEncoder(nn.Module):
    """timm ViT with a mask-handling mode; see the module docstring for the modes."""

    def __init__(
        self,
        *,
        width: int,
        depth: int,
        heads: int,
        patch_size: int,
        mlp_ratio: float,
        image_size: int,
        mask_tokens: str,
    ) -> None:
        super().__init__()
        if width % heads:
            raise ValueError(f"vit width {width} is not a multiple of heads {heads}")
        if image_size % patch_size:
            raise ValueError(
                f"image_size {image_size} is not a multiple of patch_size {patch_size}"
            )
        self.timm_kwargs = {  # timm.create_model(TIMM_ARCHITECTURE, **timm_kwargs) builds the same network
            "img_size": image_size,
            "patch_size": patch_size,
            "embed_dim": width,
            "depth": depth,
            "num_heads": heads,
            "mlp_ratio": mlp_ratio,
            "num_classes": 0,
            "global_pool": "token",
        }
        self.vit = VisionTransformer(**self.timm_kwargs)
        self.mode = mask_tokens
        self.masked_layout = "visible" if mask_tokens == "drop" else "full"  # tokens of a masked view
        self.width, self.patch_size = width, patch_size
        self.grid = tuple(self.vit.patch_embed.grid_size)
        self.num_patches = self.grid[0] * self.grid[1]
        if mask_tokens in ("input", "after_encoder"):
            self.mask_token = nn.Parameter(trunc_normal_(torch.zeros(1, 1, width), std=0.02))
        if mask_tokens == "after_encoder":
            self.post_pos_embed = nn.Parameter(
                trunc_normal_(torch.zeros(1, 1 + self.num_patches, width), std=0.02)
            )

    def timm_export(self) -> tuple[str, dict[str, Any], VisionTransformer]:
        """The timm architecture and kwargs this encoder mirrors, and its VisionTransformer:
        ``timm.create_model(name, **kwargs).forward_features(x)`` with these weights gives
        this encoder's unmasked tokens. Raises ValueError where timm has no equivalent."""
        if self.mode == "after_encoder":
            raise ValueError("mask_tokens='after_encoder' adds learned positions (post_pos_embed) after the blocks, "
                             "which timm's VisionTransformer has no place for")
        return TIMM_ARCHITECTURE, dict(self.timm_kwargs), self.vit

    def load_timm(self, checkpoint: str) -> None:
        """Load timm ViT weights from a local file/directory, all encoder keys required."""
        path = resolve_checkpoint(checkpoint)
        try:
            load_checkpoint(self.vit, path, strict=True, filter_fn=_encoder_weights)
        except RuntimeError as exc:
            raise ValueError(
                f"ViT checkpoint '{path}' does not fit this encoder (width {self.width}, patch {self.patch_size}, "
                f"depth {len(self.vit.blocks)}); set width/depth/heads/patch_size to the checkpoint's: {exc}"
            ) from exc

    def _blocks(self, x: torch.Tensor) -> torch.Tensor:
        """[B,1+K,D] embedded tokens -> timm's pre-norm, blocks and final norm."""
        return self.vit.norm(self.vit.blocks(self.vit.norm_pre(x)))

    def forward(self, images: torch.Tensor, mask: Optional[MaskingOutput] = None) -> ImageEncoding:
        """images [B,3,H,W] -> ImageEncoding with tokens [B,1+N',D] ([CLS] first)."""
        x = self.vit.patch_embed(images)  # [B,N,D]
        if mask is None:
            tokens = self._blocks(self.vit._pos_embed(x))  # [B,1+N,D]
            if self.mode == "after_encoder":  # same positional step as masked views
                tokens = tokens + self.post_pos_embed
            return ImageEncoding(tokens, "full", None, self.grid)
        if mask.mask.shape != x.shape[:2]:
            raise ValueError(
                f"image mask has shape {tuple(mask.mask.shape)} but the encoder has {tuple(x.shape[:2])} patches"
            )
        if self.mode == "input":
            # [B,N,D]: masked patch embeddings replaced by the mask token, before positions
            x = torch.where(mask.mask.unsqueeze(-1), self.mask_token.to(x.dtype), x)
            return ImageEncoding(self._blocks(self.vit._pos_embed(x)), "full", mask, self.grid)
        if mask.ids_keep is None:
            raise ValueError(
                f"image_encoder 'vit' with mask_tokens='{self.mode}' drops masked patches and needs a masker that "
                "keeps the same number of patches per sample (ids_keep); use mask_tokens='input' with this masker"
            )
        x = self.vit._pos_embed(x)  # [B,1+N,D], [CLS] first (timm adds CLS and positions)
        visible = torch.cat([x[:, :1], gather_tokens(x[:, 1:], mask.ids_keep)], dim=1)  # [B,1+K,D]
        encoded = self._blocks(visible)  # [B,1+K,D]
        if self.mode == "drop":
            return ImageEncoding(encoded, "visible", mask, self.grid)
        b, _, d = encoded.shape
        index = mask.ids_keep.unsqueeze(-1).expand(-1, -1, d)  # [B,K,D]
        filler = self.mask_token.to(encoded.dtype).expand(b, self.num_patches, d)  # [B,N,D]
        patches = filler.scatter(1, index, encoded[:, 1:])  # [B,N,D] in grid order
        full = torch.cat([encoded[:, :1], patches], dim=1) + self.post_pos_embed  # [B,1+N,D]
        return ImageEncoding(full, "full", mask, self.grid)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "width": {
            "type": "integer",
            "minimum": 1,
            "default": 768,
            "description": "token width (ViT-B: 768)",
        },
        "depth": {
            "type": "integer",
            "minimum": 1,
            "default": 12,
            "description": "number of transformer blocks",
        },
        "heads": {
            "type": "integer",
            "minimum": 1,
            "default": 12,
            "description": "attention heads per block",
        },
        "patch_size": {
            "type": "integer",
            "minimum": 1,
            "default": 16,
            "description": "square patch side in pixels",
        },
        "mlp_ratio": {
            "type": "number",
            "exclusiveMinimum": 0,
            "default": 4.0,
            "description": "MLP hidden width / width",
        },
        "image_size": {
            "type": ["integer", "null"],
            "minimum": 1,
            "default": None,
            "description": "input side in pixels; null takes the data's image_size",
        },
        "mask_tokens": {
            "enum": ["input", "drop", "after_encoder"],
            "default": "drop",
            "description": "masked patches: 'input' = learned mask token before the blocks (SimMIM), "
            "'drop' = visible patches only (MAE), 'after_encoder' = visible only, then "
            "mask tokens and positions added after the blocks (MAMO)",
        },
        "checkpoint": {
            "type": ["string", "null"],
            "x-framework-path": "any",
            "default": None,
            "description": "local timm ViT weights (file, or directory with model.safetensors / "
            "pytorch_model.bin); null = random init",
        },
    },
}


def build_vit(
    *,
    width: int,
    depth: int,
    heads: int,
    patch_size: int,
    mlp_ratio: float,
    image_size: Optional[int],
    mask_tokens: str,
    checkpoint: Optional[str],
    context: Any,
) -> ViTEncoder:
    encoder = ViTEncoder(
        width=width,
        depth=depth,
        heads=heads,
        patch_size=patch_size,
        mlp_ratio=mlp_ratio,
        image_size=input_side(image_size, context),
        mask_tokens=mask_tokens,
    )
    if checkpoint is not None and context.get("load_pretrained", True):  # else the caller loads a model file
        encoder.load_timm(checkpoint)
    return encoder


COMPONENTS = [
    ComponentSpec("image_encoder", "vit", build_vit, SCHEMA, __doc__.strip().splitlines()[0])
]
