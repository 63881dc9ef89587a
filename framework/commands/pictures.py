"""`framework plot RUN`: training curves as a PNG; `framework masks RECIPE`: what each view hides.

Both draw with PIL (no plotting dependency). ``plot`` reads ``metrics.jsonl`` (losses,
accuracies, learning rate, periodic ``eval/...`` results); ``masks`` masks a few
unaugmented training samples with every view of the recipe, as training would.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch

from framework.commands.common import (
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)
from framework.rundir import RunDir


def plot(args: argparse.Namespace) -> int:
    from framework.evaluate.pictures import curve_series, draw_curves
    from framework.metrics import read_metrics

    run = Path(args.run)
    if not RunDir(run).metrics.is_file():
        return fail(FileNotFoundError(f"{run} has no metrics.jsonl; pass a run directory written by `framework run`"))
    keys = [k.strip() for k in args.keys.split(",")] if args.keys else None
    try:
        series = curve_series(read_metrics(run), keys, skip=("step", "samples_seen", "samples_per_s"))
        picture = draw_curves(series, panel=(args.width, args.height), columns=args.columns)
    except ValueError as exc:
        return fail(exc)
    out = Path(args.out) if args.out else run / "curves.png"
    out.parent.mkdir(parents=True, exist_ok=True)
    picture.save(out)
    print(f"wrote {out} ({picture.width}x{picture.height}, {len(series)} metrics)")
    return 0


def masks(args: argparse.Namespace) -> int:
    from framework import data as data_lib
    from framework.assemble import assemble
    from framework.context import mask_view
    from framework.evaluate.pictures import denormalize
    from framework.pictures.masks import draw_mask_grid, text_mask_captions

    try:
        recipe, registry = load_validated(args.recipe, args.overrides)
        dataset = data_lib.build_dataset(recipe, registry, split="train")
        tokenizer = data_lib.build_tokenizer(recipe, registry, dataset)
        model, _ = assemble(recipe, registry, tokenizer)
    except (*USER_ERRORS, ValueError) as exc:
        return fail(exc)
    loader = data_lib.build_eval_loader(recipe, dataset, tokenizer, batch_size=min(args.samples, len(dataset)))
    batch = {k: v for k, v in next(iter(loader)).items() if torch.is_tensor(v)}
    generator = torch.Generator().manual_seed(args.seed)
    encoder = model.image_encoder
    image_masks, captions = [], []
    for spec in model.views.values():
        image_mask, text_mask = mask_view(spec, batch, generator, encoder.patch_size, tuple(encoder.grid), full=batch)
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
    p.add_argument("--keys", help="comma-separated metrics to plot (default: all)")
    p.add_argument("--width", type=int, default=320, help="panel width in pixels (default 320)")
    p.add_argument("--height", type=int, default=180, help="panel height in pixels (default 180)")
    p.add_argument("--columns", type=int, default=3, help="panels per row (default 3)")
    p.set_defaults(func=plot)
    p = subparsers.add_parser("masks", help="picture what every view of a recipe masks")
    add_recipe_argument(p)
    p.add_argument("--out", default="masks.png", help="PNG path (default masks.png)")
    p.add_argument("--samples", type=int, default=4, help="training samples to show (default 4)")
    p.add_argument("--seed", type=int, default=0, help="seed of the masks (default 0)")
    p.set_defaults(func=masks)
