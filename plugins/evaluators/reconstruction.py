"""``reconstruction``: a picture of what a pixel MIM objective predicts (MAE Fig. 2-3).

The objective's view is masked and decoded through a :class:`framework.context.StepContext`
exactly as in training, its head predicts every patch, and the grid shows, per sample:
the original | the masked input | the reconstruction (predicted masked patches pasted
into the visible ones, MAE's convention). Targets normalised per patch (MAE's
``norm_pix_loss``) are mapped back with each original patch's mean and variance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from framework.api import (
    DATASET_SLOT,
    ComponentSpec,
    EvalModel,
    EvalModelError,
    build_eval_loader,
    data_config,
    denormalize,
    evaluator_schema,
    grey_out,
    image_grid,
    objective_name,
    patchify,
    unpatchify,
)

from ..objectives._features import view_tokens

PICTURE = "reconstruction.png"


def pixel_objective(model: EvalModel, name: Optional[str]) -> torch.nn.Module:
    """The named objective, or the recipe's first ``mim`` objective with a ``pixels`` target."""
    if name is not None:
        objective = model.objective("mim", name)
        if model.objective_config(objective).get("target", {}).get("type") != "pixels":
            raise EvalModelError(f"objective '{name}' does not predict pixels; name a mim objective with target pixels")
        return objective
    for cfg in model.recipe["objectives"]:
        if cfg["type"] == "mim" and cfg.get("target", {}).get("type") == "pixels":
            return model.model.objectives[objective_name(cfg)]
    raise EvalModelError("reconstruction needs a mim objective with a pixels target; this recipe has "
                         f"{[c['type'] for c in model.recipe['objectives']]}")


def predicted_patches(model: EvalModel, objective: torch.nn.Module, batch: dict[str, torch.Tensor],
                      generator: torch.Generator) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Predicted pixels [B,N,p*p*3] in the dataset's normalised space and the mask [B,N] (or None)."""
    ctx = model.model.context(batch, generator)
    tokens = view_tokens(ctx, objective.view, "image", objective.decoder, objective.source)[:, 1:]  # [B,N',D]
    if tokens.shape[1] != objective.grid[0] * objective.grid[1]:
        raise EvalModelError(f"objective '{objective.objective_name}' reads visible-only tokens; nothing to "
                             "reconstruct")
    pred = objective.head(tokens).float()  # [B,N,p*p*3]
    if objective.target.normalize_per_patch:
        patches = patchify(batch["image"].float(), objective.patch_size)  # [B,N,p*p*3]
        mean, var = patches.mean(dim=-1, keepdim=True), patches.var(dim=-1, keepdim=True)
        pred = pred * (var + 1e-6).sqrt() + mean
    image_mask = ctx.masks(objective.view)[0]
    return pred, None if image_mask is None else image_mask.mask


class Reconstruction:
    """Writes ``reconstruction.png`` and returns the masked-patch MSE in normalised pixels."""

    def __init__(self, *, objective: Optional[str], samples: int, cell: int, seed: int,
                 dataset: Optional[Mapping[str, Any]] = None) -> None:
        self.objective, self.samples, self.cell, self.seed, self.dataset = objective, samples, cell, seed, dataset

    def __call__(self, model: EvalModel, out_dir: Path) -> dict[str, float]:
        objective = pixel_objective(model, self.objective)
        source = model.dataset("eval", self.dataset)
        loader = build_eval_loader(model.recipe, source, model.tokenizer, batch_size=min(self.samples, len(source)))
        batch = {k: v.to(model.device) for k, v in next(iter(loader)).items() if torch.is_tensor(v)}  # as in training
        batch["image"] = batch["image"].to(model.dtype)
        pred, mask = predicted_patches(model, objective, batch, torch.Generator().manual_seed(self.seed))
        p, grid = objective.patch_size, objective.grid
        original = batch["image"].float()
        patches = patchify(original, p)  # [B,N,p*p*3]
        hidden = torch.zeros(patches.shape[:2], dtype=torch.bool, device=patches.device) if mask is None else mask
        pasted = torch.where(hidden[..., None], pred, patches)  # [B,N,p*p*3]
        cfg = data_config(model.recipe)
        shown = [denormalize(x, cfg["mean"], cfg["std"]) for x in (original, unpatchify(pasted, p, grid))]
        masked = grey_out(shown[0], hidden, p)
        out_dir.mkdir(parents=True, exist_ok=True)
        image_grid([shown[0], masked, shown[1]], ["original", "masked", "reconstruction"],
                   self.cell).save(out_dir / PICTURE)
        error = (pred - patches).square().mean(dim=-1)  # [B,N]
        scored = hidden if hidden.any() else torch.ones_like(hidden)
        return {"mse_masked": error[scored].mean().item(), "samples": float(original.shape[0])}


SCHEMA = evaluator_schema({
    "objective": {"type": ["string", "null"], "default": None,
                  "description": "Name of the pixel MIM objective to picture (null: the first mim with a pixels "
                                 "target)."},
    "samples": {"type": "integer", "minimum": 1, "default": 8,
                "description": "Rows of the picture (held-out samples)."},
    "cell": {"type": "integer", "minimum": 8, "default": 128,
             "description": "Side in pixels of each image in the picture."},
    "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Seed of the masks drawn for the picture."},
    "dataset": DATASET_SLOT,
})

COMPONENTS = [ComponentSpec("evaluator", "reconstruction", Reconstruction, SCHEMA,
                            "Picture original | masked | reconstruction of a pixel MIM objective; masked-patch MSE.")]
