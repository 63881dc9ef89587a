"""Teacher-feature targets: the momentum teacher's patch features of the unmasked view.

MAMO's MIM regresses the target network's image-encoder features at masked positions
(Zhao et al. 2023, Eq. 2); ``source: fused`` reads the teacher's fused image tokens.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from framework.api import BuildContext, ComponentSpec, EncodedView, StepContext

WIDTHS = {"image_encoder": "image_width", "fused": "fused_image_width"}


class TeacherFeatureTarget(nn.Module):
    """Patch tokens [B,N,D] of the teacher on ``teacher_view`` (which must keep every patch)."""

    loss_kind = "regression"
    requires_teacher = True

    def __init__(self, *, source: str, teacher_view: str, layernorm: bool, context: BuildContext) -> None:
        super().__init__()
        self.source, self.teacher_view, self.layernorm = source, teacher_view, layernorm
        self.dim = context[WIDTHS[source]]

    def forward(self, ctx: StepContext, view: EncodedView) -> torch.Tensor:
        teacher = ctx.teacher_view(self.teacher_view)
        if teacher.image.layout != "full":
            raise RuntimeError(f"teacher_features needs teacher view '{self.teacher_view}' to keep every patch; use an "
                               "unmasked view")
        tokens = teacher.image.tokens if self.source == "image_encoder" else teacher.fused.image
        patches = tokens[:, 1:].float()  # [B,N,D]
        return F.layer_norm(patches, patches.shape[-1:]) if self.layernorm else patches


COMPONENTS = [ComponentSpec("target", "teacher_features", TeacherFeatureTarget, {
    "type": "object", "additionalProperties": False,
    "properties": {
        "source": {"enum": list(WIDTHS), "default": "image_encoder",
                   "description": "Teacher image-encoder tokens or fused image tokens."},
        "teacher_view": {"type": "string", "x-framework-ref": "views", "default": "full",
                         "description": "Unmasked view the teacher encodes."},
        "layernorm": {"type": "boolean", "default": False,
                      "description": "LayerNorm the targets without affine (stabilises feature regression)."},
    },
}, "Momentum-teacher patch features of the unmasked view.")]
