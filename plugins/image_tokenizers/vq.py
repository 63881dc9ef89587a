"""``vq``: a VQ-VAE image tokenizer (van den Oord et al. 2017), as VQGAN/MaskGIT tokenizers use.

A conv encoder maps each ``patch_size`` x ``patch_size`` cell to a latent ``z``; the code is
the nearest codebook vector ``e_k`` (squared Euclidean distance); the decoder reconstructs
the image from the quantised latents, with gradients passed straight through the
quantiser (``z + sg(e - z)``). Loss (VQ-VAE Eq. 3):
``||x - D(e)||^2 + ||sg(z) - e||^2 + beta ||z - sg(e)||^2``; with
``codebook_update: "ema"`` the codebook term is replaced by exponential moving averages of
the assigned latents (VQ-VAE appendix A.1), which avoids codebook collapse better.
``l2_normalize`` looks codes up on the unit sphere (ViT-VQGAN, Yu et al. 2022 §3.2),
another remedy for unused codes.
"""

from __future__ import annotations

from typing import Any, Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from framework.api import ComponentSpec, one_hot

from ._codes import TokenizerOutput, sample_mean
from ._networks import NETWORK_PROPERTIES, ConvDecoder, ConvEncoder, resolve_patch_size


class VQTokenizer(nn.Module):
    """Nearest-codebook quantisation with straight-through gradients."""

    def __init__(self, *, patch_size: int, channels: int, res_blocks: int, num_codes: int, code_dim: int,
                 beta: float, codebook_update: str, ema_decay: float, l2_normalize: bool) -> None:
        super().__init__()
        self.patch_size, self.num_codes, self.code_dim = patch_size, num_codes, code_dim
        self.beta, self.ema, self.ema_decay, self.l2_normalize = beta, codebook_update == "ema", ema_decay, l2_normalize
        self.encoder = ConvEncoder(channels=channels, res_blocks=res_blocks, patch_size=patch_size, out_dim=code_dim)
        self.decoder = ConvDecoder(channels=channels, res_blocks=res_blocks, patch_size=patch_size, in_dim=code_dim)
        init = torch.randn(num_codes, code_dim)  # [K,C]
        if self.ema:
            self.register_buffer("codebook", init)
            self.register_buffer("cluster_size", torch.ones(num_codes))  # EMA of assignments per code
            self.register_buffer("code_sum", init.clone())  # EMA of the sum of assigned latents
        else:
            self.codebook = nn.Parameter(init)

    def _codebook(self) -> torch.Tensor:
        return F.normalize(self.codebook, dim=-1) if self.l2_normalize else self.codebook  # [K,C]

    def _latents(self, images: torch.Tensor) -> torch.Tensor:
        z = self.encoder(images).permute(0, 2, 3, 1)  # [B,h,w,C]
        return F.normalize(z, dim=-1) if self.l2_normalize else z

    def _nearest(self, z: torch.Tensor) -> torch.Tensor:
        """z [B,h,w,C] -> index of the nearest codebook vector [B,h,w]."""
        flat = z.reshape(-1, self.code_dim).float()  # [M,C]
        book = self._codebook().float()  # [K,C]
        dist2 = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ book.t() + book.pow(2).sum(1)  # [M,K]
        return dist2.argmin(dim=1).view(z.shape[:-1])

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] (normalised) -> codes [B,H/p,W/p] long."""
        return self._nearest(self._latents(images))

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B,h,w] -> images [B,3,h*p,w*p]."""
        e = self._codebook()[codes]  # [B,h,w,C]
        return self.decoder(e.permute(0, 3, 1, 2))

    @torch.no_grad()
    def _ema_update(self, z: torch.Tensor, codes: torch.Tensor, weights: Optional[torch.Tensor]) -> None:
        """Move each code towards the mean of the latents assigned to it (summed over ranks),
        counting samples by ``weights`` [B]; with nothing assigned anywhere nothing moves."""
        onehot = one_hot(codes.flatten(), self.num_codes)  # [M,K], M = B*h*w
        if weights is not None:
            onehot = (onehot.view(codes.shape[0], -1, self.num_codes) * weights[:, None, None]).flatten(0, 1)
        counts = onehot.sum(0)  # [K]
        sums = onehot.t() @ z.reshape(-1, self.code_dim).float()  # [K,C]
        if dist.is_initialized():
            dist.all_reduce(counts)
            dist.all_reduce(sums)
        decay = torch.where(counts.sum() > 0, self.ema_decay, 1.0)  # a device scalar: no host sync
        self.cluster_size.mul_(decay).add_((1 - decay) * counts.to(self.cluster_size.dtype))
        self.code_sum.mul_(decay).add_((1 - decay) * sums.to(self.code_sum.dtype))
        total = self.cluster_size.sum()
        smoothed = (self.cluster_size + 1e-5) / (total + self.num_codes * 1e-5) * total  # Laplace smoothing
        self.codebook.copy_(self.code_sum / smoothed[:, None])

    def forward(self, images: torch.Tensor, *, generator: Optional[torch.Generator] = None,
                weights: Optional[torch.Tensor] = None) -> TokenizerOutput:
        """Encode, quantise and decode ``images`` [B,3,H,W], each sample's losses weighted by
        ``weights`` [B]; the generator is unused (deterministic)."""
        z = self._latents(images)  # [B,h,w,C]
        codes = self._nearest(z)  # [B,h,w]
        e = self._codebook()[codes].to(z.dtype)  # [B,h,w,C]
        losses = {"commitment": self.beta * sample_mean((z.float() - e.detach().float()).pow(2), weights)}
        if self.ema:
            if self.training:
                self._ema_update(z.detach(), codes, weights)
        else:
            losses["codebook"] = sample_mean((e.float() - z.detach().float()).pow(2), weights)
        quantised = z + (e - z).detach()  # straight-through: forward e, backward identity
        reconstruction = self.decoder(quantised.permute(0, 3, 1, 2))  # [B,3,H,W]
        losses["reconstruction"] = sample_mean((reconstruction.float() - images.float()).pow(2), weights)
        return TokenizerOutput(reconstruction, losses, codes)


def build_vq(*, patch_size: Optional[int], channels: int, res_blocks: int, num_codes: int, code_dim: int, beta: float,
             codebook_update: str, ema_decay: float, l2_normalize: bool, context: Any = None) -> VQTokenizer:
    return VQTokenizer(patch_size=resolve_patch_size(patch_size, context), channels=channels, res_blocks=res_blocks,
                       num_codes=num_codes, code_dim=code_dim, beta=beta, codebook_update=codebook_update,
                       ema_decay=ema_decay, l2_normalize=l2_normalize)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **NETWORK_PROPERTIES,
        "code_dim": {"type": "integer", "minimum": 1, "default": 32,
                     "description": "Width of a codebook vector (latent width)."},
        "beta": {"type": "number", "minimum": 0, "default": 0.25,
                 "description": "Commitment-loss weight (VQ-VAE's beta)."},
        "codebook_update": {"enum": ["loss", "ema"], "default": "ema",
                            "description": "Learn the codebook by the codebook loss, or by exponential moving averages "
                                           "of assigned latents."},
        "ema_decay": {"type": "number", "minimum": 0, "exclusiveMaximum": 1, "default": 0.99,
                      "description": "Decay of the codebook EMA (codebook_update: ema)."},
        "l2_normalize": {"type": "boolean", "default": True,
                         "description": "Compare unit-normalised latents and codes (ViT-VQGAN); improves codebook "
                                        "usage."},
    },
}

COMPONENTS = [ComponentSpec("image_tokenizer", "vq", build_vq, SCHEMA,
                            "VQ-VAE tokenizer: nearest-codebook codes, straight-through gradients (VQGAN/MaskGIT "
                            "style).")]
