"""``tokenizer_training``: train an image tokenizer (VQ-VAE, dVAE) on the batch images.

The objective owns the tokenizer (module path ``objectives.<name>.tokenizer``), so a
recipe with ``"model": {}`` and this one objective trains a tokenizer through the normal
loop and checkpoints; the ``discrete_tokens`` target later loads it frozen. It reads
``ctx.batch["image"]`` and no view, so the recipe needs no encoders. Samples without an
image (``has_image`` False, from text-only sources) carry a placeholder image that runs
through the tokenizer with weight 0; a batch without any image gives a zero loss with the
usual metric keys (every rank logs the same names).

The loss is the sum of the tokenizer's (already weighted) terms; metrics are each term,
the number of distinct codes in the batch and the codebook perplexity (see
:func:`plugins.image_tokenizers.codes.codebook_usage`).
"""

from __future__ import annotations

from framework.api import BuildContext, ComponentSpec, LossOutput, Objective, StepContext, objective_schema

from ..image_tokenizers._codes import codebook_usage


class TokenizerTraining(Objective):
    """Reconstruction + codebook losses of an ``image_tokenizer`` component."""

    def __init__(self, *, name: str, weight: float, tokenizer: dict, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.tokenizer = context.build("image_tokenizer", tokenizer)

    def forward(self, ctx: StepContext) -> LossOutput:
        """Every row of the batch goes through the tokenizer; samples without an image (a
        placeholder) weigh 0, so no step depends on how many images a batch holds."""
        weights = ctx.batch["has_image"].float() if "has_image" in ctx.batch else None  # [B]
        out = self.tokenizer(ctx.batch["image"], generator=ctx.generator, weights=weights)
        loss = sum(out.losses.values())
        used, perplexity = codebook_usage(out.codes, self.tokenizer.num_codes, weights)
        metrics = {**{k: v.detach() for k, v in out.losses.items()}, "codes_used": used.float(),
                   "perplexity": perplexity}
        return LossOutput(loss, metrics)


COMPONENTS = [ComponentSpec("objective", "tokenizer_training", TokenizerTraining, objective_schema({
    "tokenizer": {"x-framework-kind": "image_tokenizer",
                  "description": "The image tokenizer to train (`vq` or `dvae`)."},
}, required=("tokenizer",)), "Train an image tokenizer: reconstruction + codebook losses, codebook usage metrics.")]
