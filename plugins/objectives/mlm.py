"""Masked language modeling: cross-entropy on masked caption tokens (Devlin et al. 2019).

Logits are computed only at the view's ``ids_masked``: a fixed number of positions per
row that covers its masked tokens (for BERT-style masking, the most a caption of the
padded length can have), so the vocabulary projection costs about ``ratio x length x
vocab`` per caption rather than ``length x vocab``, with no data-dependent shapes. Samples without text
(``has_text`` False) are not scored; text-only samples form M3AE's unpaired group, whose
mean loss is scaled by ``unpaired_weight`` (see :mod:`framework_plugins.objectives.unpaired`).
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F

from framework.api import (
    DECODER_REF,
    VIEW_REF,
    BuildContext,
    ComponentSpec,
    LossOutput,
    Objective,
    StepContext,
    at_positions,
    objective_schema,
)

from ..decoders.heads import HEAD_SLOT
from ..masking.mlm import IGNORE_INDEX
from ._features import SOURCE, source_width, view_tokens
from ._unpaired import UNPAIRED_WEIGHT, paired_unpaired_mean, presence


class MaskedLanguageModeling(Objective):
    """Predict the original ids of a view's masked tokens from fused (or decoded) text."""

    def __init__(self, *, name: str, weight: float, view: str, decoder: Optional[str], source: str, head: dict,
                 unpaired_weight: float, context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.decoder, self.source = view, decoder, source
        self.unpaired_weight = unpaired_weight
        in_dim = source_width(context, "text", decoder, source)
        self.head = context.build("head", head, in_dim=in_dim, out_dim=context["vocab_size"])

    def forward(self, ctx: StepContext) -> LossOutput:
        mask = ctx.view(self.view).text_mask
        if mask is None:
            raise RuntimeError(f"objective '{self.objective_name}' needs view '{self.view}' to mask text; add a text "
                               "masker to it")
        tokens = view_tokens(ctx, self.view, "text", self.decoder, self.source)  # [B,T,D]
        if tokens.shape[1] != mask.labels.shape[1]:
            raise RuntimeError(f"view '{self.view}' drops text tokens; read them through a decoder with with_text=true")
        tokens, labels = at_positions(tokens, mask.ids_masked), at_positions(mask.labels, mask.ids_masked)  # [B,K,...]
        scored = labels != IGNORE_INDEX  # [B,K]
        has_text = presence(ctx.batch, "text")
        if has_text is not None:
            scored = scored & has_text[:, None]
        logits = self.head(tokens)  # [B,K,V]: only candidate positions pay for the vocabulary projection
        per_token = F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), reduction="none").view_as(labels)
        loss, metrics = paired_unpaired_mean(per_token, scored.float(), presence(ctx.batch, "image"),
                                             self.unpaired_weight)
        accuracy = ((logits.argmax(-1) == labels) & scored).sum() / scored.sum().clamp(min=1)
        return LossOutput(loss, {"accuracy": accuracy.detach(), **metrics})


COMPONENTS = [ComponentSpec("objective", "mlm", MaskedLanguageModeling, objective_schema({
    "view": VIEW_REF,
    "decoder": DECODER_REF,
    "source": SOURCE,
    "head": {**HEAD_SLOT, "default": {"type": "mlp", "layernorm": True}},
    "unpaired_weight": UNPAIRED_WEIGHT,
}, required=("view",)), "Masked language modeling (cross-entropy on masked tokens).")]
