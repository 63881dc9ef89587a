"""Image-text contrastive loss (CLIP; ALBEF's ITC) with optional momentum distillation.

Plain mode: embeddings of all ranks are gathered *with* gradient
(``torch.distributed.nn.functional.all_gather``), so the loss and gradients of N ranks
equal those of one process holding the whole global batch.

Momentum mode (ALBEF, Li et al. 2021 §3.3-3.4; VLMAE Eq. 3-4), on when ``distill_alpha``
or ``queue_size`` is positive: the keys each student embedding is contrasted with are
the momentum teacher's embeddings of the global batch (its encoders on ``teacher_view``,
its copies of this objective's projections ``objectives.<name>.image_proj`` /
``text_proj``), followed by a queue of teacher embeddings from earlier steps. Targets
are ``(1 - alpha) * one_hot + alpha * softmax(teacher similarities)``. The queue is a
ring buffer of this objective that starts, as ALBEF's, from random unit vectors (seeded,
so identical on every rank; the number of keys never changes) and is filled with every
rank's teacher embeddings, so it stays identical on all ranks; it is saved with the model.

The local similarity rows of both directions (student image vs every text key, student
caption vs every image key) are left as a :class:`framework.types.Similarities` in
``ctx.shared[<this objective's name>]``, for ITM's hard negatives (its
``similarities_from``); the positives of this rank's samples are the columns
``rank * B ... rank * B + B - 1``.
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from framework.api import (
    BuildContext,
    ComponentSpec,
    ImageEncoding,
    LossOutput,
    Objective,
    Similarities,
    StepContext,
    TextEncoding,
    objective_schema,
    one_hot,
)


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [B,D] from all ranks in rank order; gradients flow back to each rank."""
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean over rows of ``-sum(targets * log_softmax(logits))`` (targets are distributions)."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(dim=-1).mean()


def pool_image(image: ImageEncoding, pooling: str) -> torch.Tensor:
    """[B,D]: the [CLS] token, or the mean of the (visible) patch tokens."""
    return image.cls if pooling == "cls" else image.patches.mean(dim=1)


def pool_text(text: TextEncoding, pooling: str) -> torch.Tensor:
    """[B,D]: the [CLS] token, or the mean of the real (non-padding) tokens."""
    if pooling == "cls":
        return text.cls
    valid = text.attention_mask[..., None].to(text.tokens.dtype)  # [B,T,1]
    return (text.tokens * valid).sum(dim=1) / valid.sum(dim=1).clamp(min=1)


class FeatureQueue(nn.Module):
    """A ring buffer of ``size`` paired image/text embeddings (ALBEF/MoCo queue).

    It starts from random unit vectors drawn with a fixed seed (ALBEF), so every rank
    holds the same queue. ``push`` writes rows at the pointer and advances it. Everything
    stays on the device (no host sync) and lives in buffers, so the queue is checkpointed
    with the model.
    """

    def __init__(self, size: int, dim: int) -> None:
        super().__init__()
        self.size = size
        g = torch.Generator().manual_seed(0)
        self.register_buffer("image", F.normalize(torch.randn(size, dim, generator=g), dim=-1))
        self.register_buffer("text", F.normalize(torch.randn(size, dim, generator=g), dim=-1))
        self.register_buffer("ptr", torch.zeros(1, dtype=torch.long))  # 1-D: DeepSpeed broadcasts buffers

    @torch.no_grad()
    def push(self, image: torch.Tensor, text: torch.Tensor) -> None:
        """Enqueue rows ``image`` / ``text`` [G,E]; with G > size only the last ``size`` stay."""
        image, text = image[-self.size:], text[-self.size:]
        g = image.shape[0]
        slots = (self.ptr + torch.arange(g, device=self.ptr.device)) % self.size  # [G]
        self.image.index_copy_(0, slots, image.to(self.image.dtype))
        self.text.index_copy_(0, slots, text.to(self.text.dtype))
        self.ptr.copy_((self.ptr + g) % self.size)


class ImageTextContrastive(Objective):
    """Symmetric InfoNCE between projected, normalised image and text [CLS] features."""

    def __init__(self, *, name: str, weight: float, view: str, embed_dim: int, pooling: str, temperature: float,
                 learnable_temperature: bool, distill_alpha: float, queue_size: int, teacher_view: Optional[str],
                 context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.pooling = view, pooling
        self.image_proj = nn.Linear(context["image_width"], embed_dim)
        self.text_proj = nn.Linear(context["text_width"], embed_dim)
        log_scale = torch.tensor([math.log(1 / temperature)])  # 1-D: DeepSpeed cannot broadcast 0-D params
        self.logit_scale = nn.Parameter(log_scale, requires_grad=learnable_temperature)
        self.alpha = distill_alpha
        self.momentum = distill_alpha > 0 or queue_size > 0
        self.requires_teacher = self.momentum
        if teacher_view is not None and not self.momentum:
            raise ValueError(f"objective '{name}': teacher_view is set but neither distill_alpha nor queue_size is "
                             "positive, so no teacher is read; drop teacher_view or enable distillation")
        self.teacher_view = (teacher_view or view) if self.momentum else None
        self.queue = FeatureQueue(queue_size, embed_dim) if queue_size > 0 else None

    def embed(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised student image and text embeddings [B,E] of this objective's view."""
        encoded = ctx.view(self.view)
        return self.embed_image(encoded.image), self.embed_text(encoded.text)

    def teacher_modules(self) -> list[str]:
        if not self.momentum:
            return []
        return [f"objectives.{self.objective_name}.image_proj", f"objectives.{self.objective_name}.text_proj"]

    def embed_image(self, image: ImageEncoding, proj: Optional[nn.Module] = None) -> torch.Tensor:
        """Normalised embedding [B,E] of an image encoding (through ``proj``, default ours)."""
        return F.normalize((proj or self.image_proj)(pool_image(image, self.pooling)).float(), dim=-1)

    def embed_text(self, text: TextEncoding, proj: Optional[nn.Module] = None) -> torch.Tensor:
        """Normalised embedding [B,E] of a text encoding (through ``proj``, default ours)."""
        return F.normalize((proj or self.text_proj)(pool_text(text, self.pooling)).float(), dim=-1)

    @torch.no_grad()
    def teacher_embed(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised teacher image and text embeddings [B,E] of ``teacher_view``."""
        encoded = ctx.teacher_view(self.teacher_view)
        image_proj = ctx.teacher_module(f"objectives.{self.objective_name}.image_proj")
        text_proj = ctx.teacher_module(f"objectives.{self.objective_name}.text_proj")
        return self.embed_image(encoded.image, image_proj), self.embed_text(encoded.text, text_proj)

    def forward(self, ctx: StepContext) -> LossOutput:
        image, text = self.embed(ctx)  # [B,E] each
        b = image.shape[0]
        scale = self.logit_scale.clamp(max=math.log(100)).exp()[0]  # CLIP clamps at 100
        rank = dist.get_rank() if dist.is_initialized() else 0
        labels = torch.arange(b, device=image.device) + rank * b  # [B] columns of the positives
        if self.momentum:
            logits_i2t, logits_t2i, loss = self._momentum_loss(ctx, image, text, scale, labels)
        else:
            all_image, all_text = gather_with_grad(image), gather_with_grad(text)  # [G,E]
            logits_i2t = scale * image @ all_text.t()  # [B,G]
            logits_t2i = scale * text @ all_image.t()  # [B,G]
            loss = (F.cross_entropy(logits_i2t, labels) + F.cross_entropy(logits_t2i, labels)) / 2
        ctx.shared[self.objective_name] = Similarities(image_to_text=logits_i2t.detach(),
                                                       text_to_image=logits_t2i.detach(), offset=rank * b,
                                                       image=image, text=text)
        accuracy = (logits_i2t.argmax(-1) == labels).float().mean()
        return LossOutput(loss, {"accuracy": accuracy.detach(), "temperature": (1 / scale).detach()})

    def _momentum_loss(self, ctx: StepContext, image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor,
                       labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Student-vs-teacher-key logits [B,G+Q] both ways and the distilled loss."""
        t_image, t_text = self.teacher_embed(ctx)  # [B,E]
        with torch.no_grad():
            keys_image, keys_text = gather_with_grad(t_image), gather_with_grad(t_text)  # [G,E], no grad
        g = keys_image.shape[0]
        if self.queue is not None:
            keys_image = torch.cat([keys_image, self.queue.image.float()])  # [G+Q,E]
            keys_text = torch.cat([keys_text, self.queue.text.float()])
        hard = one_hot(labels, keys_image.shape[0])  # [B,G+Q]
        with torch.no_grad():
            scale_t = scale.detach()
            targets_i2t = self._targets(scale_t * t_image @ keys_text.t(), hard)
            targets_t2i = self._targets(scale_t * t_text @ keys_image.t(), hard)
        logits_i2t = scale * image @ keys_text.t()  # [B,G+Q]
        logits_t2i = scale * text @ keys_image.t()
        loss = (soft_cross_entropy(logits_i2t, targets_i2t) + soft_cross_entropy(logits_t2i, targets_t2i)) / 2
        if self.queue is not None:
            self.queue.push(keys_image[:g], keys_text[:g])
        return logits_i2t, logits_t2i, loss

    def _targets(self, teacher_logits: torch.Tensor, hard: torch.Tensor) -> torch.Tensor:
        """ALBEF's pseudo-targets: ``alpha * softmax(teacher) + (1 - alpha) * one_hot``."""
        return self.alpha * F.softmax(teacher_logits, dim=-1) + (1 - self.alpha) * hard


COMPONENTS = [ComponentSpec("objective", "itc", ImageTextContrastive, objective_schema({
    "view": {"type": "string", "x-framework-ref": "views",
             "description": "View the student encodes (usually unmasked; VLMAE: masked image)."},
    "embed_dim": {"type": "integer", "minimum": 1, "default": 256, "description": "Shared embedding width."},
    "pooling": {"enum": ["cls", "mean"], "default": "cls",
                "description": "Embed the [CLS] tokens (ALBEF, pretrained encoders) or the mean of real tokens "
                               "(learns faster from random init, where [CLS] outputs start nearly identical)."},
    "temperature": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "default": 0.07,
                    "description": "Initial softmax temperature."},
    "learnable_temperature": {"type": "boolean", "default": True,
                              "description": "Learn the temperature (clamped at 0.01)."},
    "distill_alpha": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.0,
                      "description": "Weight of the momentum teacher's soft targets (ALBEF: 0.4); 0 = plain ITC. "
                                     "Needs model.teacher with copies of objectives.<name>.image_proj and text_proj."},
    "queue_size": {"type": "integer", "minimum": 0, "default": 0,
                   "description": "Teacher embeddings kept from earlier steps as extra keys (ALBEF: 65536); "
                                  "0 = no queue."},
    "teacher_view": {"type": ["string", "null"], "x-framework-ref": "views", "default": None,
                     "description": "View the teacher encodes in momentum mode (VLMAE: the unmasked one); "
                                    "null = `view`."},
}, required=("view",)), "Image-text contrastive loss with global negatives, optional momentum distillation and queue.")]
