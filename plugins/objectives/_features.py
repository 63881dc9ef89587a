"""Where an objective reads its features: a named decoder, the fusion, or an encoder."""

from __future__ import annotations

from typing import Any, Optional

import torch

from framework.api import StepContext

SOURCE: dict[str, Any] = {
    "enum": ["fused", "encoder"],
    "default": "fused",
    "description": "Without a decoder: read the fusion's tokens or the unimodal encoder's.",
}


def source_width(context: Any, modality: str, decoder: Optional[str], source: str) -> int:
    """Width of the features :func:`view_tokens` returns, from the build context."""
    if decoder is not None:
        if modality not in context["decoder_streams"][decoder]:
            raise ValueError(f"decoder '{decoder}' produces no {modality} tokens for this objective to read; "
                             "enable them in its params (e.g. with_text: true) or read another source")
        return context["decoder_widths"][decoder]
    if source == "fused":
        return context[f"fused_{modality}_width"]
    return context[f"{modality}_width"]


def view_tokens(ctx: StepContext, view: str, modality: str, decoder: Optional[str], source: str) -> torch.Tensor:
    """Tokens of ``modality`` for view ``view``: image [B,1+N',D] or text [B,T',D]."""
    if decoder is not None:
        tokens = getattr(ctx.decoded(decoder, view), modality)
        if tokens is None:
            raise RuntimeError(f"decoder '{decoder}' produces no {modality} tokens; enable them in its params (e.g. "
                               "with_text)")
        return tokens
    encoded = ctx.view(view)
    if source == "fused":
        tokens = getattr(encoded.fused, modality)
        if tokens is None:
            raise RuntimeError(f"the fusion produces no {modality} stream; read source 'encoder' or use a decoder")
        return tokens
    return encoded.image.tokens if modality == "image" else encoded.text.tokens
