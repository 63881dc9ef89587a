"""Base class and shared schema pieces for objectives (losses).

An objective reads the views it names through a :class:`framework.context.StepContext`
and returns a :class:`framework.types.LossOutput`. The RecipeModel multiplies the loss by
the objective's ``weight`` and sums; the objective itself never sees other losses.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from torch import nn

from framework.context import StepContext
from framework.types import ImageEncoding, LossOutput, TextEncoding

COMMON_PROPERTIES: dict[str, Any] = {
    "name": {
        "type": "string",
        "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
        "description": "Unique name of this objective (metrics key and module path); defaults to its type.",
    },
    "weight": {"type": "number", "minimum": 0, "default": 1.0, "description": "Multiplier of this loss in the total."},
}

OBJECTIVE_REF_SECTION = "objectives"
"""``x-framework-ref`` value of a parameter naming an *earlier* objective of the recipe
(by :func:`objective_name`), e.g. ITM's ``similarities_from``."""


def objective_name(cfg: Mapping[str, Any]) -> str:
    """The name of a recipe's objective entry: its ``name``, else its ``type``.

    Metrics keys, module paths (``objectives.<name>``), checkpoints and references
    between objectives all use this one rule.
    """
    return cfg.get("name", cfg["type"])


VIEW_REF: dict[str, Any] = {"type": "string", "x-framework-ref": "views",
                            "description": "Name of the view this objective reads."}
DECODER_REF: dict[str, Any] = {
    "type": ["string", "null"],
    "x-framework-ref": "model.decoders",
    "default": None,
    "description": "Name of a decoder in model.decoders to read (null: read encoder/fusion features directly).",
}


def objective_schema(properties: dict[str, Any], required: tuple[str, ...] = ()) -> dict[str, Any]:
    """An objective params schema: ``properties`` plus ``name`` and ``weight``."""
    return {
        "type": "object",
        "additionalProperties": False,
        "required": list(required),
        "properties": {**COMMON_PROPERTIES, **properties},
    }


@runtime_checkable
class ContrastiveEmbedder(Protocol):
    """An objective that embeds encodings into a shared image-text space (ITC's projections).

    Evaluation (retrieval, zero-shot) embeds with the first objective of a recipe that has
    this capability, or the one it names. Both methods return L2-normalised ``[B,E]``.
    """

    def embed_image(self, image: ImageEncoding) -> torch.Tensor: ...

    def embed_text(self, text: TextEncoding) -> torch.Tensor: ...


class Objective(nn.Module):
    """A loss over one or more views.

    Subclasses set ``requires_teacher`` when they read teacher outputs and ``needs`` to the
    objective *types* that must run before them in the same step (e.g. ITM needs the ITC
    similarities for hard negatives); the assembler checks both against the recipe.
    """

    requires_teacher: bool = False
    needs: tuple[str, ...] = ()

    def __init__(self, *, name: str = "", weight: float = 1.0) -> None:
        super().__init__()
        self.objective_name = name
        self.weight = weight

    def teacher_modules(self) -> list[str]:
        """Paths of this objective's own modules whose teacher copies it reads (through
        ``ctx.teacher_module``); the assembler checks ``model.teacher.modules`` has them."""
        return []

    def forward(self, ctx: StepContext) -> LossOutput:  # pragma: no cover - abstract
        raise NotImplementedError
