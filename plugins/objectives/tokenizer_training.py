"""``tokenizer_training``: train an image tokenizer (VQ-VAE, dVAE) on the batch images.

The objective owns the tokenizer (module path ``objectives.<name>.tokenizer``), so a
recipe with ``"model": {}`` and this one objective trains a tokenizer through the normal
loop and checkpoints; the ``discrete_tokens`` target later loads it frozen. It reads
``ctx.batch["image"]`` and no view, so the recipe needs no encoders. Samples without an
image (``has_image`` False, from text-only sources) are skipped; a batch without any image
gives a zero loss with the usual metric keys (every rank logs the same names).

The loss is the sum of the tokenizer's (already weighted) terms; metrics are each term,
the number of distinct codes in the batch and the codebook perplexity (see
:func:`plugins.image_tokenizers.codes.codebook_usage`).
"""

from __future__ import annotations

import torch

from framework.context import StepContext
from framework.objective import Objective, objective_schema
from framework.registry import BuildContext, ComponentSpec
from framework.types import LossOutput
from plugins.image_tokenizers.codes import codebook_usage


class TokenizerTraining(Objective):
    """Reconstruction + codebook losses of an ``image_tokenizer`` component."""

    def __init__(self, *, name: str, weight: float, tokenizer: dict, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.tokenizer = context.build("image_tokenizer", tokenizer)

    def forward(self, ctx: StepContext) -> LossOutput:
        images = ctx.batch["image"]  # [B,3,H,W]
        if "has_image" in ctx.batch:
            images = images[ctx.batch["has_image"]]
        if images.shape[0] == 0:
            return self._empty(ctx.batch["image"][:1])
        out = self.tokenizer(images, generator=ctx.generator)
        loss = sum(out.losses.values())
        used, perplexity = codebook_usage(out.codes, self.tokenizer.num_codes)
        metrics = {**{k: v.detach() for k, v in out.losses.items()}, "codes_used": used.float(), "perplexity": perplexity}
        return LossOutput(loss, metrics)

    def _empty(self, placeholder: torch.Tensor) -> LossOutput:
        """Zero loss over the tokenizer's graph (so every parameter gets a gradient) and zero
        metrics, from one placeholder image run in eval mode (no codebook or anneal update)."""
        mode = self.tokenizer.training
        self.tokenizer.eval()
        out = self.tokenizer(placeholder)
        self.tokenizer.train(mode)
        zero = sum(out.losses.values()) * 0 + sum(p.sum() for p in self.tokenizer.parameters()) * 0
        metrics = {k: torch.zeros((), device=placeholder.device) for k in [*out.losses, "codes_used", "perplexity"]}
        return LossOutput(zero, metrics)


COMPONENTS = [ComponentSpec("objective", "tokenizer_training", TokenizerTraining, objective_schema({
    "tokenizer": {"x-framework-kind": "image_tokenizer", "description": "The image tokenizer to train (`vq` or `dvae`)."},
}, required=("tokenizer",)), "Train an image tokenizer: reconstruction + codebook losses, codebook usage metrics.")]
