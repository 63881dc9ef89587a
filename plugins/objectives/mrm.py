"""Masked representation modeling (MRM): MAMO's implicit target (Zhao et al. 2023, Sec. 3.2, Eq. 1).

At every masked position of a masked view — the image patches of (Î, T) and the text tokens
of (I, T̂) — the online network's fused representation x passes through the projector g and
the predictor h and regresses, with mean squared error, the target network's projected fused
representation of the *unmasked* pair at the same position::

    l_mrm = || h(g(f_θ(masked view))) - sg(g_θ̄(f_θ̄(I, T))) ||²   (averaged over positions and dims)

summed over the image and the text view. g and h are one-hidden-layer MLPs (``head``
components). The target network is the EMA teacher: it must keep a copy of this objective's
projector (``objectives.<name>.projector`` in ``model.teacher.modules``) besides the
encoders and the fusion. The paper's ablations are parameters: ``modalities`` (Table 7:
image only, text only, both), ``with_predictor: false`` (Table 8, "w/o predictor") and
``target: "online"`` (Table 8, "w/o EMA update": the student's own unmasked view and
projector under stop-gradient).
"""

from __future__ import annotations

from typing import Any, Optional

import torch
from torch import nn

from framework.api import (
    BuildContext,
    ComponentSpec,
    EncodedView,
    LossOutput,
    Objective,
    StepContext,
    at_positions,
    global_denominator,
    objective_schema,
)

from ..decoders.heads import HEAD_SLOT


def weighted_spread(values: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Mean over dims of the (unbiased) std of ``values`` [B,K,D] over the positions
    weighted 1 in ``weights`` [B,K]; 0 with fewer than two such positions."""
    count = weights.sum()
    w = weights[..., None]
    mean = (values * w).sum((0, 1)) / count.clamp(min=1)  # [D]
    var = ((values - mean).pow(2) * w).sum((0, 1)) / (count - 1).clamp(min=1)  # [D]
    return torch.where(count > 1, var.sqrt().mean(), torch.zeros_like(count))


MODALITIES = {"image": ("image",), "text": ("text",), "both": ("image", "text")}


class MaskedRepresentationModeling(Objective):
    """MSE between ``h(g(online))`` and ``sg(g_target(target))`` at each view's masked positions."""

    def __init__(self, *, name: str, weight: float, modalities: str, image_view: str, text_view: str,
                 target_view: str, target: str, dim: int, projector: dict, predictor: dict, with_predictor: bool,
                 context: BuildContext) -> None:
        super().__init__(name=name, weight=weight)
        self.modalities = MODALITIES[modalities]
        self.masked_views = {"image": image_view, "text": text_view}
        self.target_view, self.target = target_view, target
        self.views = [self.masked_views[m] for m in self.modalities] + [target_view]
        self.requires_teacher = target == "teacher"
        if "image" in self.modalities and context.get("image_masked_layout") == "visible":
            raise ValueError("MRM on images needs a fused token at every masked patch, but the image encoder drops "
                             "masked patches; use an encoder that keeps them (vit mask_tokens 'input' or "
                             "'after_encoder') or set modalities to 'text'")
        widths = {m: context[f"fused_{m}_width"] for m in self.modalities}
        if len(set(widths.values())) > 1:
            raise ValueError(f"MRM shares one projector g between image and text, but the fusion's image stream is "
                             f"{widths['image']} wide and its text stream {widths['text']}; use a fusion with equal "
                             "stream widths or set modalities to 'image' or 'text'")
        in_dim = next(iter(widths.values()))
        self.projector = context.build("head", projector, in_dim=in_dim, out_dim=dim)
        self.predictor: Optional[nn.Module] = (
            context.build("head", predictor, in_dim=dim, out_dim=dim) if with_predictor else None)

    def _masked_positions(self, view: EncodedView, modality: str,
                          length: int) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """The masked positions of ``view``'s ``modality`` token stream: [B,length] bool and
        the [B,K] candidates to gather (``ids_masked`` in stream coordinates; None: all)."""
        if modality == "image":
            if view.image_mask is None:
                raise RuntimeError(f"objective '{self.objective_name}' predicts masked patches but view '{view.name}' "
                                   "masks no image; point image_view at a view with an image masker")
            mask, ids = view.image_mask.mask, view.image_mask.ids_masked  # [B,N], [B,K]
            if length != 1 + mask.shape[1]:
                raise RuntimeError(f"objective '{self.objective_name}' needs a fused token per patch but view "
                                   f"'{view.name}' has {length - 1} patch tokens for {mask.shape[1]} patches; use an "
                                   "image encoder that fills masked positions (vit mask_tokens 'after_encoder')")
            scored = torch.cat([torch.zeros_like(mask[:, :1]), mask], dim=1)  # [B,1+N]: [CLS] never masked
            return scored, None if ids is None else ids + 1
        if view.text_mask is None:
            raise RuntimeError(f"objective '{self.objective_name}' predicts masked tokens but view '{view.name}' "
                               "masks no text; point text_view at a view with a text masker")
        if view.text_mask.ids_keep is not None or length != view.text_mask.mask.shape[1]:
            raise RuntimeError(f"objective '{self.objective_name}' needs a fused token per text position but view "
                               f"'{view.name}' drops tokens; use a replacing text masker such as 'mlm'")
        return view.text_mask.mask, view.text_mask.ids_masked  # [B,T], [B,K]

    def _target_tokens(self, ctx: StepContext, modality: str) -> torch.Tensor:
        """Fused ``modality`` tokens [B,L,D] of the unmasked view, from the target network (no gradient)."""
        view = ctx.teacher_view(self.target_view) if self.target == "teacher" else ctx.view(self.target_view)
        if view.image_mask is not None or view.text_mask is not None:
            raise RuntimeError(f"objective '{self.objective_name}' regresses representations of the unmasked pair but "
                               f"target_view '{self.target_view}' is masked; use a view without maskers")
        return getattr(view.fused, modality).detach()

    def teacher_modules(self) -> list[str]:
        return [f"objectives.{self.objective_name}.projector"] if self.target == "teacher" else []

    def _target_projector(self, ctx: StepContext) -> nn.Module:
        if self.target == "online":
            return self.projector
        return ctx.teacher_module(f"objectives.{self.objective_name}.projector")

    def _modality_loss(self, ctx: StepContext, modality: str) -> tuple[torch.Tensor, torch.Tensor]:
        """MRM loss of one masked view and the std of its targets (a collapse monitor)."""
        view = ctx.view(self.masked_views[modality])
        online = getattr(view.fused, modality)  # [B,L,D]
        if online is None:
            raise RuntimeError(f"the fusion produces no {modality} stream, which MRM on {modality} needs; "
                               f"use a fusion that updates the {modality} tokens or drop '{modality}' from modalities")
        scored, ids = self._masked_positions(view, modality, online.shape[1])
        target_tokens = self._target_tokens(ctx, modality)  # [B,L,D]
        if target_tokens.shape[:2] != online.shape[:2]:
            raise RuntimeError(f"view '{view.name}' has {online.shape[1]} {modality} tokens but target_view "
                               f"'{self.target_view}' has {target_tokens.shape[1]}; both must keep every position")
        weights = at_positions(scored, ids).float()  # [B,K]
        with torch.no_grad():
            target = self._target_projector(ctx)(at_positions(target_tokens, ids)).float()  # [B,K,dim]
        pred = self.projector(at_positions(online, ids))  # [B,K,dim]: only candidate positions pay for g and h
        if self.predictor is not None:
            pred = self.predictor(pred)
        per_position = (pred.float() - target).pow(2).mean(-1)  # [B,K]
        loss = (per_position * weights).sum() / global_denominator(weights.sum())
        return loss, weighted_spread(target, weights)

    def forward(self, ctx: StepContext) -> LossOutput:
        losses, metrics = [], {}
        for modality in self.modalities:
            loss, spread = self._modality_loss(ctx, modality)
            losses.append(loss)
            metrics[f"{modality}_loss"] = loss.detach()
            metrics[f"{modality}_target_std"] = spread.detach()
        return LossOutput(torch.stack(losses).sum(), metrics)


def _schema() -> dict[str, Any]:
    return objective_schema({
        "modalities": {"enum": list(MODALITIES), "default": "both",
                       "description": "Masked positions regressed: image patches, text tokens or both (MAMO Table 7)."},
        "image_view": {"type": "string", "x-framework-ref": "views", "default": "masked_image",
                       "description": "View with masked image and full text, (Î, T); read when modalities has image."},
        "text_view": {"type": "string", "x-framework-ref": "views", "default": "masked_text",
                      "description": "View with full image and masked text, (I, T̂); read when modalities has text."},
        "target_view": {"type": "string", "x-framework-ref": "views", "default": "full",
                        "description": "Unmasked view (I, T) whose fused representations are the targets."},
        "target": {"enum": ["teacher", "online"], "default": "teacher",
                   "description": "Target network: the EMA teacher (needs objectives.<name>.projector in "
                                  "model.teacher.modules), or the online network under stop-gradient (Table 8)."},
        "dim": {"type": "integer", "minimum": 1, "default": 256,
                "description": "Output width of projector g and predictor h."},
        "projector": {**HEAD_SLOT, "default": {"type": "mlp"},
                      "description": "Projector g: fused width -> dim (one-hidden-layer MLP in the paper)."},
        "predictor": {**HEAD_SLOT, "default": {"type": "mlp"},
                      "description": "Predictor h: dim -> dim, online branch only (one-hidden-layer MLP in the "
                                     "paper)."},
        "with_predictor": {"type": "boolean", "default": True,
                           "description": "Apply the predictor h; false regresses g's output directly (Table 8 'w/o "
                                          "predictor')."},
    })


COMPONENTS = [ComponentSpec("objective", "mrm", MaskedRepresentationModeling, _schema(),
                            "Masked representation modeling: regress the EMA target's fused features at masked "
                            "positions (MAMO).")]
