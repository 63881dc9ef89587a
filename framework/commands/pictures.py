"""`framework plot RUN`: training curves as a PNG; `framework masks RECIPE`: what each view hides.

Both draw with PIL (no plotting dependency). ``plot`` reads ``metrics.jsonl`` (losses,
accuracies, learning rate, periodic ``eval/...`` results) and the run's recipe and world
size for the chance lines (framework.pictures.curves); ``masks`` masks a few
unaugmented training samples with every view of the recipe, exactly as training step
``--step`` does (:func:`framework.step.training_masks`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import torch

from framework.commands.common import (
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)
from framework.rundir import RunDir


def plot(args: argparse.Namespace) -> int:
    import json

    from framework.metrics import read_metrics
    from framework.pictures.curves import curve_series, draw_panels, plan_panels

    run = RunDir(args.run)
    if not run.metrics.is_file():
        return fail(FileNotFoundError(f"{run.root} has no metrics.jsonl; "
                                      "pass a run directory written by `framework run`"))
    keys = [k.strip() for k in args.keys.split(",") if k.strip()] if args.keys else None
    recipe = json.loads(run.recipe.read_text()) if run.recipe.is_file() else None  # objectives: losses, chance lines
    world_size = json.loads(run.provenance.read_text()).get("world_size", 1) if run.provenance.is_file() else 1
    try:
        series = curve_series(read_metrics(run.root), keys)
        panels, skipped = plan_panels(series, recipe=recipe, world_size=world_size, keep=keys or (),
                                      overlay=not args.no_overlay)
        picture = draw_panels(panels, panel=(args.width, args.height), columns=args.columns)
    except ValueError as exc:
        return fail(exc)
    out = Path(args.out) if args.out else run.root / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    print(f"wrote {out} ({picture.width}x{picture.height}, {len(panels)} panels)")
    if skipped:
        print("constant, not plotted: " + ", ".join(f"{k}={v:.4g}" for k, v in skipped.items()))
    return 0


STAND_IN_DATA = {"train": {"type": "synthetic_shapes", "samples": 64},
                 "tokenizer": {"type": "wordpiece_from_data", "vocab_size": 1000}}
"""What a mask picture is drawn on where a recipe's own data are not on this machine."""


def build_for_pictures(recipe: dict[str, Any], registry: Any) -> tuple[dict[str, Any], Any]:
    """The recipe's model without pretrained weights (masks do not depend on them), on its own
    data, or, where those are not on this machine, on synthetic shapes at its image size:
    masks depend on the image and caption shapes, not on what they show."""
    from framework.build import build_run
    from framework.registry import ComponentBuildError

    recipe = {**recipe, "data": {**recipe["data"], "num_workers": 0}}  # a few samples: no worker processes
    try:
        return recipe, build_run(recipe, registry, load_pretrained=False)
    except ComponentBuildError as exc:
        if not exc.path.startswith("$.data"):
            raise
        print(f"note: {exc.path}: {exc.message.split(': ', 1)[-1]}\nnote: drawing the masks on synthetic shapes at "
              f"{recipe['data']['image_size']} px instead", file=sys.stderr)
        stand_in = {**recipe, "data": {**recipe["data"], **STAND_IN_DATA}}
        return stand_in, build_run(stand_in, registry, load_pretrained=False)


def masks(args: argparse.Namespace) -> int:
    from framework import data as data_lib
    from framework.evaluate.pictures import denormalize
    from framework.pictures.masks import draw_mask_grid, text_mask_captions
    from framework.step import training_masks

    try:
        recipe, registry = load_validated(args.recipe, args.overrides)
        recipe, built = build_for_pictures(recipe, registry)
    except (*USER_ERRORS, ValueError) as exc:
        return fail(exc)
    model, tokenizer, dataset = built.model, built.tokenizer, built.dataset
    loader = data_lib.build_eval_loader(recipe, dataset, tokenizer, batch_size=min(args.samples, len(dataset)))
    batch = {k: v for k, v in next(iter(loader)).items() if torch.is_tensor(v)}
    seed = recipe["train"]["seed"] if args.seed is None else args.seed
    encoder = model.image_encoder
    image_masks, captions = [], []
    for image_mask, text_mask in training_masks(model, batch, seed, args.step).values():
        image_masks.append(image_mask)
        captions.append(None if text_mask is None else text_mask_captions(
            tokenizer, text_mask, batch["attention_mask"], batch["special_tokens_mask"]))
    cfg = data_lib.data_config(recipe)
    originals = tokenizer.batch_decode(batch["input_ids"], skip_special_tokens=True)
    path = draw_mask_grid(denormalize(batch["image"], cfg["mean"], cfg["std"]), image_masks, encoder.patch_size,
                          captions=originals, masked_captions=captions, path=args.out, view_names=list(model.views))
    print(f"wrote {path} ({len(originals)} samples x {len(image_masks)} views)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("plot", help="training curves of a run as a PNG")
    p.add_argument("run", help="run directory (reads metrics.jsonl)")
    p.add_argument("--out", help="PNG path (default: RUN/curves.png)")
    p.add_argument("--keys", help="comma-separated metrics to plot, in this order, constant ones included "
                                  "(default: every metric that changes)")
    p.add_argument("--no-overlay", action="store_true", help="no first panel overlaying the losses")
    p.add_argument("--width", type=int, default=320, help="panel width in pixels (default 320)")
    p.add_argument("--height", type=int, default=180, help="panel height in pixels (default 180)")
    p.add_argument("--columns", type=int, default=3, help="panels per row (default 3)")
    p.set_defaults(func=plot)
    p = subparsers.add_parser("masks", help="picture what every view of a recipe masks")
    add_recipe_argument(p)
    p.add_argument("--out", default="masks.png", help="PNG path (default masks.png)")
    p.add_argument("--samples", type=int, default=4, help="training samples to show (default 4)")
    p.add_argument("--seed", type=int, default=None, help="seed of the masks (default: the recipe's train.seed)")
    p.add_argument("--step", type=int, default=0, help="draw the masks of this training step (default 0)")
    p.set_defaults(func=masks)
