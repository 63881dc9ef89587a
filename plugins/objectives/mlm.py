"""Masked language modeling: cross-entropy on masked caption tokens (Devlin et al. 2019).

Logits are computed only at masked positions, so the vocabulary projection costs
``masked tokens x vocab`` rather than ``all tokens x vocab``.
"""

from __future__ import annotations

from typing import Optional

import torch.nn.functional as F

from framework.context import StepContext
from framework.objective import DECODER_REF, VIEW_REF, Objective, objective_schema
from framework.registry import BuildContext, ComponentSpec
from framework.types import LossOutput
from plugins.decoders.heads import HEAD_SLOT
from plugins.objectives.features import SOURCE, source_width, view_tokens


class MaskedLanguageModeling(Objective):
    """Predict the original ids of a view's masked tokens from fused (or decoded) text."""

    def __init__(self, *, name: str, weight: float, view: str, decoder: Optional[str], source: str, head: dict,
                 context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.decoder, self.source = view, decoder, source
        in_dim = source_width(context, "text", decoder, source)
        self.head = context.build("head", head, in_dim=in_dim, out_dim=context["vocab_size"])

    def forward(self, ctx: StepContext) -> LossOutput:
        mask = ctx.view(self.view).text_mask
        if mask is None:
            raise RuntimeError(f"objective '{self.objective_name}' needs view '{self.view}' to mask text; add a text masker to it")
        tokens = view_tokens(ctx, self.view, "text", self.decoder, self.source)  # [B,T,D]
        if tokens.shape[1] != mask.labels.shape[1]:
            raise RuntimeError(f"view '{self.view}' drops text tokens; read them through a decoder with with_text=true")
        selected = mask.labels != -100  # [B,T]
        logits = self.head(tokens[selected])  # [M,V]
        labels = mask.labels[selected]
        loss = F.cross_entropy(logits.float(), labels) if labels.numel() else tokens.sum() * 0
        accuracy = (logits.argmax(-1) == labels).float().mean() if labels.numel() else loss.detach()
        return LossOutput(loss, {"accuracy": accuracy.detach()})


COMPONENTS = [ComponentSpec("objective", "mlm", MaskedLanguageModeling, objective_schema({
    "view": VIEW_REF,
    "decoder": DECODER_REF,
    "source": SOURCE,
    "head": {**HEAD_SLOT, "default": {"type": "mlp", "layernorm": True}},
}, required=("view",)), "Masked language modeling (cross-entropy on masked tokens).")]
