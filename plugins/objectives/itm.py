"""Image-text matching with hard negatives mined from ITC similarities (ALBEF §3.2).

For each image a negative caption is drawn from the rest of the local batch with
probability ∝ softmax(similarity) (and vice versa), so negatives are the pairs the
contrastive model finds most confusable. The fusion encodes 1 positive and 2 negative
pairs per sample and a linear head classifies match / no match. Sampling uses the
Gumbel-max trick with noise from the step's generator: reproducible, no host sync.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from framework.context import StepContext
from framework.objective import Objective, objective_schema
from framework.registry import BuildContext, ComponentSpec
from framework.types import LossOutput


def sample_negatives(logits: torch.Tensor, generator: torch.Generator, hard: bool) -> torch.Tensor:
    """For each row of ``logits`` [B,B] an index != the row's own, ∝ softmax(row) if ``hard``
    else uniform; returns [B] long."""
    b = logits.shape[0]
    if b < 2:
        raise ValueError(f"ITM draws each negative from the other samples of the micro-batch but it holds {b}; "
                         "set train.micro_batch to 2 or more")
    scores = logits.float() if hard else torch.zeros_like(logits, dtype=torch.float)
    scores = scores.masked_fill(torch.eye(b, dtype=torch.bool, device=logits.device), float("-inf"))
    uniform = torch.rand(b, b, generator=generator, device=generator.device).to(logits.device)
    gumbel = -torch.log(-torch.log(uniform.clamp(1e-9, 1 - 1e-9)))
    return (scores + gumbel).argmax(dim=1)


class ImageTextMatching(Objective):
    """Binary match classification on the fused [CLS] of positive and mined negative pairs."""

    def __init__(self, *, name: str, weight: float, view: str, negatives: str, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.hard = view, negatives == "hard"
        self.needs = ("itc",) if self.hard else ()
        self.head = nn.Linear(context["fusion_width"], 2)

    def _local_logits(self, ctx: StepContext) -> torch.Tensor:
        """This rank's block [B,B] of the ITC image-to-text similarities."""
        logits = ctx.shared["itc"]["logits_i2t"]  # [B,G]
        b = logits.shape[0]
        rank = dist.get_rank() if dist.is_initialized() and logits.shape[1] > b else 0
        return logits[:, rank * b:(rank + 1) * b]

    def forward(self, ctx: StepContext) -> LossOutput:
        view = ctx.view(self.view)
        b = ctx.batch_size
        logits = self._local_logits(ctx) if self.hard else torch.zeros(b, b, device=view.image.tokens.device)
        neg_text = sample_negatives(logits, ctx.generator, self.hard)  # [B]: a caption for each image
        neg_image = sample_negatives(logits.t(), ctx.generator, self.hard)  # [B]: an image for each caption
        image, text = view.image, view.text
        pair_image = image._replace(tokens=torch.cat([image.tokens, image.tokens, image.tokens[neg_image]]))
        pair_text = text._replace(tokens=torch.cat([text.tokens, text.tokens[neg_text], text.tokens]),
                            attention_mask=torch.cat([text.attention_mask, text.attention_mask[neg_text], text.attention_mask]))
        pooled = ctx.student.fusion(pair_image, pair_text).pooled  # [3B,D]
        scores = self.head(pooled).float()  # [3B,2]
        labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(scores.device)
        loss = F.cross_entropy(scores, labels)
        accuracy = (scores.argmax(-1) == labels).float().mean()
        return LossOutput(loss, {"accuracy": accuracy.detach()})


COMPONENTS = [ComponentSpec("objective", "itm", ImageTextMatching, objective_schema({
    "view": {"type": "string", "x-framework-ref": "views", "description": "Usually the unmasked view."},
    "negatives": {"enum": ["hard", "random"], "default": "hard",
                  "description": "hard: sampled by ITC similarity (needs an earlier itc objective); random: uniform."},
}, required=("view",)), "Image-text matching with hard negatives from ITC similarities.")]
