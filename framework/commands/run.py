"""`framework run RECIPE`: train a recipe (the tiny synthetic one by default)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from framework.checkpoint import CheckpointError
from framework.commands.common import (
    DEFAULT_RECIPE_NAME,
    USER_ERRORS,
    add_recipe_argument,
    fail,
    load_validated,
)
from framework.distributed import is_main_process
from framework.registry import ComponentBuildError
from framework.rundir import RunDir, RunDirUnwritableError, check_writable
from framework.validation import RecipeValidationError, ValidationIssue


def default_output(recipe_path: str) -> Path:
    return Path("runs") / Path(recipe_path).stem


def recipe_argument(args: argparse.Namespace) -> str:
    """The recipe to run: as given; for ``--resume --output DIR`` without one, the run's
    own resolved recipe; otherwise the built-in default."""
    if args.recipe is not None:
        return args.recipe
    if args.resume and args.output:
        return str(RunDir(args.output).recipe)
    return DEFAULT_RECIPE_NAME


def run(args: argparse.Namespace) -> int:
    from framework.data import BadDataError
    from framework.train import RunDirectoryError, Trainer

    try:
        recipe_path = recipe_argument(args)
        recipe, registry = load_validated(recipe_path, args.overrides)
        output = Path(args.output) if args.output else default_output(recipe_path)
        check_writable(output)  # before anything is written: not after training, at the first save
        trainer = Trainer(recipe, output, registry, resume=args.resume, overwrite=args.overwrite,
                          progress=not args.quiet)
        last = trainer.run()
    except ComponentBuildError as exc:  # data or weights named by the recipe are missing or unusable
        return fail(RecipeValidationError([ValidationIssue(exc.path, exc.message)], recipe_path))
    except (*USER_ERRORS, RunDirectoryError, RunDirUnwritableError, CheckpointError, BadDataError, ValueError,
            OSError) as exc:  # OSError: disk full, read-only filesystem, ... during the run
        return fail(exc)
    if is_main_process():
        print(json.dumps(last))
        print(f"run written to {output} (metrics.jsonl, checkpoints/, recipe.json)")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("run", help="train a recipe")
    add_recipe_argument(p, optional=True)
    p.add_argument("--output", help="run directory (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --output from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace a run already in --output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=run)
