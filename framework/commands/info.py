"""`framework info RECIPE`: parameters per component and FLOPs per sample."""

from __future__ import annotations

import argparse
import json

from framework.commands.common import (
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)


def info(args: argparse.Namespace) -> int:
    from framework.inspect_model import inspect_recipe

    try:
        recipe, registry = load_validated(args.recipe, args.overrides)
    except USER_ERRORS as exc:
        return fail(exc)
    counts, flops = inspect_recipe(recipe, registry, batch_size=args.batch)
    if args.json:
        print(json.dumps({"params": counts, "forward_flops_per_sample": flops.forward,
                          "train_flops_per_sample": flops.train}, indent=2))
        return 0
    width = max(len(k) for k in counts)
    print(f"{'component':<{width}}  {'parameters':>14}")
    for name, count in counts.items():
        print(f"{name:<{width}}  {count:>14,}  ({count / 1e6:.1f}M)")
    print("\nFLOPs per sample (multiply-adds x2, every pass of a training step incl. teacher):")
    print(f"  forward          {flops.forward / 1e9:10.2f} GFLOPs  ({flops.forward_gmacs:.2f} GMACs)")
    print(f"  forward+backward {flops.train / 1e9:10.2f} GFLOPs")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("info", help="parameter counts per component and FLOPs per sample")
    add_recipe_argument(p)
    p.add_argument("--batch", type=int, default=2, help="samples in the measured batch (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=info)
