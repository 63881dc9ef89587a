"""`framework validate`, `framework schema`, `framework diff`: work on recipes without training."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from framework.commands.common import (
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)
from framework.recipe import diff, load_recipe
from framework.registry import default_registry
from framework.resources import schema_path
from framework.schema_gen import PROJECT_DISTRIBUTION, combined_schema

COMBINED_SCHEMA_PATH = schema_path("framework.schema.json")


def validate(args: argparse.Namespace) -> int:
    try:
        recipe, _ = load_validated(args.recipe, args.overrides)
    except USER_ERRORS as exc:
        return fail(exc)
    print(f"{args.recipe}: valid ({len(recipe['objectives'])} objectives, views: {', '.join(recipe['views'])})")
    return 0


def schema(args: argparse.Namespace) -> int:
    """The committed schema covers this project's components only; any other output every
    installed plugin's, unless ``--only`` names the distributions to include."""
    committed = args.out != "-" and Path(args.out).resolve() == COMBINED_SCHEMA_PATH.resolve()
    only = args.only or ([PROJECT_DISTRIBUTION] if committed else None)
    text = json.dumps(combined_schema(default_registry(), only), indent=2) + "\n"
    if args.out == "-":
        print(text, end="")
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} (components of {', '.join(only) if only else 'every installed plugin'})")
    return 0


def diff_command(args: argparse.Namespace) -> int:
    try:
        a, b = load_recipe(args.a), load_recipe(args.b)
    except USER_ERRORS as exc:
        return fail(exc)
    lines = diff(a, b)
    print("\n".join(lines) if lines else "no differences")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("validate", help="check a recipe and report every problem")
    add_recipe_argument(p)
    p.set_defaults(func=validate)
    p = subparsers.add_parser("schema", help="write the combined recipe schema editors use")
    p.add_argument("--out", default=str(COMBINED_SCHEMA_PATH),
                   help="output file, or - for stdout (default: the committed schemas/framework.schema.json, "
                        "which holds this project's components only; any other output holds every installed plugin's)")
    p.add_argument("--only", action="append", metavar="DIST",
                   help="include only components of this distribution, e.g. framework-hog; repeatable")
    p.set_defaults(func=schema)
    p = subparsers.add_parser("diff", help="differences between two resolved recipes (how ablations read)")
    p.add_argument("a")
    p.add_argument("b")
    p.set_defaults(func=diff_command)
