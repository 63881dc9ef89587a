"""Work on recipes without training: `framework recipes` lists the built-ins, `framework cp`
copies one to edit, `framework validate`, `framework schema` and `framework diff`."""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
from pathlib import Path

from framework.commands.common import (
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)
from framework.recipe import diff, load_recipe
from framework.registry import default_registry
from framework.resources import builtin_recipes, recipe_description, schema_path
from framework.schema_gen import PROJECT_DISTRIBUTION, combined_schema
from framework.validation import missing_paths

COMBINED_SCHEMA_PATH = schema_path("framework.schema.json")


ABBREVIATIONS = re.compile(r"(?:\bal|\be\.g|\bi\.e|\bEq|\bSec|\bFig|\bTab|\bvs)$")
"""Words a full stop follows without ending the sentence (``Li et al. (2021)``, ``Eq. 3``)."""


def first_sentence(text: str) -> str:
    """``text`` up to the first full stop that ends a sentence."""
    for match in re.finditer(r"\.(?:\s|$)", text):
        if not ABBREVIATIONS.search(text[:match.start()]):
            return text[:match.start()]
    return text


def one_line(text: str, width: int) -> str:
    """``text`` cut at a word boundary to at most ``width`` characters (an ellipsis marks the cut)."""
    if len(text) <= width:
        return text
    return text[:max(width - 1, 1)].rsplit(" ", 1)[0].rstrip(",;:(") + "\u2026"


def list_recipes(args: argparse.Namespace) -> int:
    """Every built-in recipe by name with the first sentence of its description."""
    recipes = builtin_recipes()
    width = max(map(len, recipes), default=0)
    columns = shutil.get_terminal_size((120, 24)).columns
    for name, path in recipes.items():
        description = first_sentence(recipe_text(path)) or recipe_description(path)
        summary = description if args.full else one_line(description, max(columns - width - 3, 40))
        print(f"{name.ljust(width)}  {summary}".rstrip())
    return 0


def recipe_text(path: Path) -> str:
    """A recipe file's own ``description`` (empty when it has none or cannot be read)."""
    try:
        text = json.loads(path.read_text()).get("description", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return text if isinstance(text, str) else ""


def copy_recipe(args: argparse.Namespace) -> int:
    """Copy a built-in recipe to ``dest`` (a file, or a folder to copy ``NAME.json`` into).

    The copy is the file as shipped: its relative ``extends`` names a recipe that is not
    next to it, so loading falls back to the built-in of that name (framework.recipe)."""
    name = args.name.removesuffix(".json")
    recipes = builtin_recipes()
    if name not in recipes:
        from difflib import get_close_matches

        close = get_close_matches(name, recipes, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        return fail(ValueError(f"no built-in recipe named '{name}'{hint} (`framework recipes` lists them)"))
    dest = Path(args.dest)
    if dest.is_dir() or args.dest.endswith(("/", "\\")):
        dest = dest / f"{name}.json"
    if dest.exists() and not args.force:
        return fail(FileExistsError(f"{dest} exists; pass --force to replace it"))
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(recipes[name], dest)
    print(f"copied {name} to {dest}")
    return 0


def validate(args: argparse.Namespace) -> int:
    try:
        recipe, registry = load_validated(args.recipe, args.overrides)
    except USER_ERRORS as exc:
        return fail(exc)
    print(f"{args.recipe}: valid ({len(recipe['objectives'])} objectives, views: {', '.join(recipe['views'])})")
    missing = missing_paths(recipe, registry)
    for issue in missing:
        print(f"note: {issue.format(args.recipe)}", file=sys.stderr)
    if missing:
        print(f"note: {len(missing)} file(s) the recipe names are missing here: it builds, shows and counts "
              "(info, masks, bench --data synthetic) but `framework run` would stop; see `framework data check`",
              file=sys.stderr)
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
    p = subparsers.add_parser("recipes", help="list the built-in recipes with a one-line description")
    p.add_argument("--full", action="store_true", help="print each description's whole first sentence")
    p.set_defaults(func=list_recipes)
    p = subparsers.add_parser("cp", help="copy a built-in recipe to edit it")
    p.add_argument("name", help="built-in recipe name (see `framework recipes`)")
    p.add_argument("dest", help="file to write, or an existing folder to copy NAME.json into")
    p.add_argument("--force", action="store_true", help="replace DEST if it exists")
    p.set_defaults(func=copy_recipe)
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
