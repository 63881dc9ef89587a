"""``dvae``: a discrete VAE tokenizer with a Gumbel-softmax relaxation (DALL-E, Ramesh et al. 2021 §2.1).

The tokenizer BEiT and MAMO (Table 9) take their visual tokens from. The encoder outputs
logits over ``num_codes`` per ``patch_size`` cell; training samples a relaxed one-hot
``y = softmax((logits + g) / tau)`` with Gumbel noise ``g`` drawn from the step's generator,
and the decoder reconstructs from ``y @ codebook``. ``tau`` is annealed exponentially from
``temperature`` to ``min_temperature`` over ``anneal_steps`` training passes (DALL-E anneals
1 -> 1/16). The ELBO's KL term to the uniform prior, weighted by ``kl_weight`` (DALL-E's
beta), keeps the code distribution spread. Codes at inference are the logits' argmax.
Reconstruction is a mean squared error in the normalised pixel space (DALL-E uses a
logit-Laplace likelihood; MSE keeps both tokenizers comparable).
"""

from __future__ import annotations

import math
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import nn

from framework.api import ComponentSpec, one_hot

from ._codes import TokenizerOutput, sample_mean
from ._networks import NETWORK_PROPERTIES, ConvDecoder, ConvEncoder, resolve_patch_size


def gumbel_noise(shape: torch.Size, generator: Optional[torch.Generator], device: torch.device) -> torch.Tensor:
    """Standard Gumbel samples of ``shape``, from ``generator`` (on its own device) when given."""
    if generator is None:
        uniform = torch.rand(shape, device=device)
    else:
        uniform = torch.rand(shape, generator=generator, device=generator.device).to(device)
    return -torch.log(-torch.log(uniform.clamp(1e-9, 1 - 1e-9)))


class DVAETokenizer(nn.Module):
    """Gumbel-softmax discrete VAE; ``encode`` takes the most likely code per cell."""

    def __init__(self, *, patch_size: int, channels: int, res_blocks: int, num_codes: int, code_dim: int,
                 temperature: float, min_temperature: float, anneal_steps: int, kl_weight: float, hard: bool) -> None:
        super().__init__()
        if min_temperature > temperature:
            raise ValueError(f"dvae min_temperature {min_temperature} exceeds temperature {temperature}; anneal "
                             "downwards")
        self.patch_size, self.num_codes = patch_size, num_codes
        self.start_tau, self.end_tau, self.anneal_steps = temperature, min_temperature, anneal_steps
        self.kl_weight, self.hard = kl_weight, hard
        self.encoder = ConvEncoder(channels=channels, res_blocks=res_blocks, patch_size=patch_size, out_dim=num_codes)
        self.codebook = nn.Parameter(torch.randn(num_codes, code_dim) / math.sqrt(code_dim))  # [K,C]
        self.decoder = ConvDecoder(channels=channels, res_blocks=res_blocks, patch_size=patch_size, in_dim=code_dim)
        self.register_buffer("passes", torch.zeros((), dtype=torch.long))  # training passes, for the anneal

    def temperature(self) -> torch.Tensor:
        """Current tau: exponential interpolation from ``temperature`` to ``min_temperature``
        (a device scalar, computed from the pass counter without a host sync)."""
        progress = (self.passes.double() / max(1, self.anneal_steps)).clamp(max=1.0)
        return (self.start_tau * (self.end_tau / self.start_tau) ** progress).float()

    @torch.no_grad()
    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images [B,3,H,W] (normalised) -> codes [B,H/p,W/p] long."""
        return self.encoder(images).argmax(dim=1)

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """codes [B,h,w] -> images [B,3,h*p,w*p]."""
        return self.decoder(self.codebook[codes].permute(0, 3, 1, 2))

    def forward(self, images: torch.Tensor, *, generator: Optional[torch.Generator] = None,
                weights: Optional[torch.Tensor] = None) -> TokenizerOutput:
        """Relaxed sample, decode, and the ELBO terms for ``images`` [B,3,H,W], each sample's
        terms weighted by ``weights`` [B]."""
        logits = self.encoder(images).float()  # [B,K,h,w]
        tau = self.temperature()
        soft = F.softmax((logits + gumbel_noise(logits.shape, generator, logits.device)) / tau, dim=1)  # [B,K,h,w]
        if self.hard:  # straight-through one-hot of the sample
            hard = one_hot(soft.argmax(dim=1), self.num_codes, soft.dtype).permute(0, 3, 1, 2)
            soft = hard + soft - soft.detach()
        latents = torch.einsum("bkhw,kc->bchw", soft.to(self.codebook.dtype), self.codebook)  # [B,C,h,w]
        reconstruction = self.decoder(latents)  # [B,3,H,W]
        log_q = F.log_softmax(logits, dim=1)  # [B,K,h,w]
        # KL(q || uniform) per cell
        kl = sample_mean((log_q.exp() * (log_q + math.log(self.num_codes))).sum(dim=1), weights)
        if self.training:
            self.passes += 1
        losses = {"reconstruction": sample_mean((reconstruction.float() - images.float()).pow(2), weights),
                  "kl": self.kl_weight * kl}
        return TokenizerOutput(reconstruction, losses, logits.argmax(dim=1))


def build_dvae(*, patch_size: Optional[int], channels: int, res_blocks: int, num_codes: int, code_dim: int,
               temperature: float, min_temperature: float, anneal_steps: int, kl_weight: float, hard: bool,
               context: Any = None) -> DVAETokenizer:
    return DVAETokenizer(patch_size=resolve_patch_size(patch_size, context), channels=channels, res_blocks=res_blocks,
                         num_codes=num_codes, code_dim=code_dim, temperature=temperature,
                         min_temperature=min_temperature, anneal_steps=anneal_steps, kl_weight=kl_weight, hard=hard)


SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        **NETWORK_PROPERTIES,
        "code_dim": {"type": "integer", "minimum": 1, "default": 64,
                     "description": "Width of the embedding each code maps to in the decoder."},
        "temperature": {"type": "number", "exclusiveMinimum": 0, "default": 1.0,
                        "description": "Initial Gumbel-softmax temperature tau."},
        "min_temperature": {"type": "number", "exclusiveMinimum": 0, "default": 0.0625,
                            "description": "Final tau (DALL-E: 1/16)."},
        "anneal_steps": {"type": "integer", "minimum": 0, "default": 5000,
                         "description": "Training passes over which tau decays exponentially."},
        "kl_weight": {"type": "number", "minimum": 0, "default": 0.01,
                      "description": "Weight of KL(q || uniform) (DALL-E's beta)."},
        "hard": {"type": "boolean", "default": False,
                 "description": "Straight-through hard one-hot samples instead of soft ones."},
    },
}

COMPONENTS = [ComponentSpec("image_tokenizer", "dvae", build_dvae, SCHEMA,
                            "DALL-E style discrete VAE tokenizer: Gumbel-softmax relaxation (as BEiT and MAMO use).")]
