"""Image-text contrastive loss with negatives from every rank (CLIP; ALBEF's ITC).

Embeddings of all ranks are gathered *with* gradient
(``torch.distributed.nn.functional.all_gather``), so the loss and gradients of N ranks
equal those of one process holding the whole global batch. The local similarity rows are
left in ``ctx.shared["itc"]`` for ITM's hard-negative sampling.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from framework.context import StepContext
from framework.objective import Objective, objective_schema
from framework.registry import BuildContext, ComponentSpec
from framework.types import LossOutput


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [B,D] from all ranks in rank order; gradients flow back to each rank."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


class ImageTextContrastive(Objective):
    """Symmetric InfoNCE between projected, normalised image and text [CLS] features."""

    def __init__(self, *, name: str, weight: float, view: str, embed_dim: int, temperature: float,
                 learnable_temperature: bool, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view = view
        self.image_proj = nn.Linear(context["image_width"], embed_dim)
        self.text_proj = nn.Linear(context["text_width"], embed_dim)
        log_scale = torch.tensor([math.log(1 / temperature)])  # 1-D: DeepSpeed cannot broadcast 0-D params
        self.logit_scale = nn.Parameter(log_scale, requires_grad=learnable_temperature)

    def embed(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised image and text embeddings [B,E] of this objective's view."""
        encoded = ctx.view(self.view)
        image = F.normalize(self.image_proj(encoded.image.cls).float(), dim=-1)
        text = F.normalize(self.text_proj(encoded.text.cls).float(), dim=-1)
        return image, text

    def forward(self, ctx: StepContext) -> LossOutput:
        image, text = self.embed(ctx)  # [B,E] each
        all_image, all_text = gather_with_grad(image), gather_with_grad(text)  # [G,E]
        scale = self.logit_scale.clamp(max=math.log(100)).exp()[0]  # CLIP clamps at 100
        logits_i2t = scale * image @ all_text.t()  # [B,G]
        logits_t2i = scale * text @ all_image.t()  # [B,G]
        rank = dist.get_rank() if dist.is_initialized() else 0
        labels = torch.arange(image.shape[0], device=image.device) + rank * image.shape[0]
        loss = (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2
        ctx.shared["itc"] = {"logits_i2t": logits_i2t.detach(), "logits_t2i": logits_t2i.detach(),
                             "image": image, "text": text}
        accuracy = (logits_i2t.argmax(-1) == labels).float().mean()
        return LossOutput(loss, {"accuracy": accuracy.detach(), "temperature": (1 / scale).detach()})


COMPONENTS = [ComponentSpec("objective", "itc", ImageTextContrastive, objective_schema({
    "view": {"type": "string", "x-framework-ref": "views", "description": "Usually the unmasked view."},
    "embed_dim": {"type": "integer", "minimum": 1, "default": 256, "description": "Shared embedding width."},
    "temperature": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.07, "description": "Initial softmax temperature."},
    "learnable_temperature": {"type": "boolean", "default": True, "description": "Learn the temperature (clamped at 0.01)."},
}, required=("view",)), "Image-text contrastive loss with global negatives across ranks.")]
