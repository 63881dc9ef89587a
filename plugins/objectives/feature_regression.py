"""Feature regression to the momentum teacher (VLMAE's Image Feature Reconstruction, IFR).

VLMAE Eq. 2: ``L_ifr = f_r(g_hat(I) | g(I_vis))`` — the image encoder's [CLS] computed
from the visible patches only regresses the momentum encoder's [CLS] of the complete
image, with an L1 loss (He et al. 2022 §3.5). In general: the student's tokens of
``modality`` on ``view`` (optionally through a head) regress the teacher's tokens on
``teacher_view``; ``token: cls`` compares the [CLS] token, ``token: patches`` each patch
token the student encodes with the teacher's token at the same grid position (for a
visible-only student, the teacher's tokens at the kept positions).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn

from framework.api import (
    VIEW_REF,
    BuildContext,
    ComponentSpec,
    EncodedView,
    LossOutput,
    Objective,
    StepContext,
    gather_tokens,
    objective_schema,
)

from .mim import REGRESSION

WIDTH_KEYS = {"image": "image_width", "text": "text_width"}


def encoder_tokens(view: EncodedView, modality: str, token: str) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """The [CLS] [B,D] or patch tokens [B,N',D] of a view's encoder, and the kept ids
    [B,N'] when the patches are visible-only (``None`` when they keep the full grid)."""
    encoding = view.image if modality == "image" else view.text
    if token == "cls":
        return encoding.cls, None
    if modality == "text":
        return encoding.tokens[:, 1:], None
    kept = view.image_mask.ids_keep if view.image.layout == "visible" else None
    return encoding.patches, kept


class FeatureRegression(Objective):
    """Regress a teacher view's encoder features from a (masked) student view's."""

    requires_teacher = True

    def __init__(self, *, name: str, weight: float, view: str, teacher_view: str, modality: str, token: str,
                 loss: str, head: Optional[dict], context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.view, self.teacher_view = view, teacher_view
        self.modality, self.token, self.loss = modality, token, loss
        width = context[WIDTH_KEYS[modality]]
        self.head: nn.Module = (nn.Identity() if head is None
                                else context.build("head", head, in_dim=width, out_dim=width))

    def forward(self, ctx: StepContext) -> LossOutput:
        student, kept = encoder_tokens(ctx.view(self.view), self.modality, self.token)  # [B,D] or [B,N',D]
        teacher_view = ctx.teacher_view(self.teacher_view)
        if self.token == "patches" and self.modality == "image" and teacher_view.image.layout != "full":
            raise RuntimeError(f"objective '{self.objective_name}' regresses patch tokens, so teacher view "
                               f"'{self.teacher_view}' must keep every patch; use an unmasked view")
        target, _ = encoder_tokens(teacher_view, self.modality, self.token)
        if kept is not None:
            target = gather_tokens(target, kept)  # [B,N',D]: the teacher's tokens at the student's positions
        if target.shape != student.shape:
            raise RuntimeError(f"objective '{self.objective_name}': student tokens {tuple(student.shape)} and teacher "
                               f"tokens {tuple(target.shape)} differ; regress 'cls', or use views whose "
                               f"{self.modality} token layouts match")
        pred = self.head(student).float()
        loss = REGRESSION[self.loss](pred, target.detach().float())
        cosine = F.cosine_similarity(pred.detach(), target.float(), dim=-1).mean()
        return LossOutput(loss, {"cosine": cosine})


COMPONENTS = [ComponentSpec("objective", "feature_regression", FeatureRegression, objective_schema({
    "view": VIEW_REF,
    "teacher_view": {"type": "string", "x-framework-ref": "views", "default": "full",
                     "description": "View the teacher encodes (VLMAE: the complete image)."},
    "modality": {"enum": list(WIDTH_KEYS), "default": "image", "description": "Encoder whose features are regressed."},
    "token": {"enum": ["cls", "patches"], "default": "cls",
              "description": "Regress the [CLS] token (VLMAE IFR) or every token the student encodes."},
    "loss": {"enum": list(REGRESSION), "default": "l1", "description": "Regression loss (VLMAE: L1)."},
    "head": {"x-framework-kind": "head", "default": None,
             "description": "Predictor on the student's features before the loss (a `head` component); null = none "
                            "(VLMAE)."},
}, required=("view",)), "Regress the teacher's encoder features (VLMAE IFR: masked-view [CLS] -> full-image [CLS]).")]
