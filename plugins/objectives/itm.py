"""Image-text matching with hard negatives mined from ITC similarities (ALBEF §3.2).

For each image a negative caption is drawn from the rest of the local batch with
probability ∝ softmax(sim_i2t) of that image's row, and for each caption a negative
image ∝ softmax(sim_t2i) of that caption's row (ALBEF's ``weights_i2t`` /
``weights_t2i``), so negatives are the pairs the contrastive model finds most
confusable. The similarities are those the objective named by ``similarities_from`` (an
earlier ITC) left for this step as a :class:`framework.types.Similarities`; under
momentum distillation they are student-vs-teacher logits, which are not symmetric, so
the caption-to-image row is not a column of the image-to-text matrix. The fusion encodes 1 positive and 2 negative
pairs per sample and a linear head classifies match / no match. Sampling uses the
Gumbel-max trick with noise from the step's generator: reproducible, no host sync.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from framework.api import (
    OBJECTIVE_REF_SECTION,
    BuildContext,
    ComponentSpec,
    LossOutput,
    Objective,
    Similarities,
    StepContext,
    objective_schema,
)


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

    def __init__(self, *, name: str, weight: float, view: str, negatives: str, similarities_from: Optional[str],
                 context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.hard = view, negatives == "hard"
        if self.hard and similarities_from is None:
            raise ValueError(f"objective '{name}': hard negatives are drawn by an ITC objective's similarities; "
                             "name it in similarities_from, or use negatives \"random\"")
        self.similarities_from = similarities_from if self.hard else None
        self.head = nn.Linear(context["fusion_width"], 2)

    def _similarities(self, ctx: StepContext) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's [B,B] blocks of the image-to-text and caption-to-image similarities."""
        found = ctx.shared.get(self.similarities_from)
        if not isinstance(found, Similarities):
            raise RuntimeError(f"objective '{self.objective_name}' reads similarities from objective "
                               f"'{self.similarities_from}', which left none this step; name an ITC objective "
                               "listed before it")
        return found.local()

    def draw_negatives(self, ctx: StepContext, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """``(neg_text, neg_image)`` [B] each: a caption for each image ∝ softmax(sim_i2t) and
        an image for each caption ∝ softmax(sim_t2i), or uniform ones for random negatives."""
        if self.hard:
            i2t, t2i = self._similarities(ctx)  # [B,B] each
        else:
            i2t = t2i = torch.zeros(ctx.batch_size, ctx.batch_size, device=device)
        neg_text = sample_negatives(i2t, ctx.generator, self.hard)  # [B]: a caption for each image
        neg_image = sample_negatives(t2i, ctx.generator, self.hard)  # [B]: an image for each caption
        return neg_text, neg_image

    def forward(self, ctx: StepContext) -> LossOutput:
        view = ctx.view(self.view)
        b = ctx.batch_size
        neg_text, neg_image = self.draw_negatives(ctx, view.image.tokens.device)
        image, text = view.image, view.text
        pair_image = image._replace(tokens=torch.cat([image.tokens, image.tokens, image.tokens[neg_image]]))
        pair_text = text._replace(tokens=torch.cat([text.tokens, text.tokens[neg_text], text.tokens]),
                            attention_mask=torch.cat([text.attention_mask, text.attention_mask[neg_text],
                                                      text.attention_mask]))
        pooled = ctx.student.fusion(pair_image, pair_text).pooled  # [3B,D]
        scores = self.head(pooled).float()  # [3B,2]
        labels = torch.cat([torch.ones(b), torch.zeros(2 * b)]).long().to(scores.device)
        loss = F.cross_entropy(scores, labels)
        accuracy = (scores.argmax(-1) == labels).float().mean()
        return LossOutput(loss, {"accuracy": accuracy.detach()})


COMPONENTS = [ComponentSpec("objective", "itm", ImageTextMatching, objective_schema({
    "view": {"type": "string", "x-framework-ref": "views", "description": "Usually the unmasked view."},
    "negatives": {"enum": ["hard", "random"], "default": "hard",
                  "description": "hard: sampled by ITC similarity (from similarities_from); random: uniform."},
    "similarities_from": {"type": ["string", "null"], "x-framework-ref": OBJECTIVE_REF_SECTION, "default": "itc",
                          "description": "Name of an earlier ITC objective whose similarities draw the hard "
                                         "negatives; null with random negatives."},
}, required=("view",)), "Image-text matching with hard negatives from ITC similarities.")]
