"""`framework eval RECIPE_OR_RUN --task T ...`: run evaluators, merge results into JSON and a table.

A run directory is evaluated with its latest checkpoint; a recipe file with the untrained
model (the baseline), written under ``runs/<recipe>/eval`` unless ``--out`` says where.
Each invocation merges into ``results.json``, keyed by task and step. Tasks come from
``--task`` (a name, or a JSON object with params) or else from the recipe's ``eval.tasks``;
a ``--task`` name the recipe also lists keeps the recipe's params.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from framework.checkpoint import CheckpointError
from framework.commands.common import USER_ERRORS, fail
from framework.recipe import load_recipe
from framework.registry import default_registry
from framework.resources import resolve_recipe
from framework.validation import validate_recipe


def parse_tasks(values: Sequence[str], recipe: Mapping[str, Any]) -> list[dict[str, Any]]:
    """``--task`` values as task configs; with none, the recipe's ``eval.tasks``."""
    listed = {t.get("name", t["type"]): dict(t) for t in (recipe.get("eval") or {}).get("tasks", [])}
    tasks = []
    for value in values:
        if value.lstrip().startswith("{"):
            try:
                tasks.append(json.loads(value))
            except json.JSONDecodeError as exc:
                raise ValueError(f"--task {value!r} is not valid JSON: {exc}") from exc
        else:
            tasks.append(listed.get(value, {"type": value}))
    if not tasks and not listed:
        raise ValueError("no evaluation task: pass --task retrieval (or zero_shot, linear_probe, reconstruction), "
                         "or list tasks under eval.tasks in the recipe")
    return tasks or list(listed.values())


def default_out(target: Path) -> Path:
    """A run's ``RUN/eval``; for a recipe (the untrained baseline) ``runs/<recipe>/eval``,
    where ``framework run`` of that recipe writes its own evaluations, never the current
    folder (which may be a source tree)."""
    from framework.rundir import RunDir

    return RunDir(target).eval if target.is_dir() else RunDir(Path("runs") / target.stem).eval


def evaluate(args: argparse.Namespace) -> int:
    from framework.evaluate import EvalModel, run_tasks, write_results
    from framework.evaluate.model import EvalModelError
    from framework.evaluate.runner import RESULTS_FILE, markdown_table, read_results
    from framework.rundir import RECIPE_FILE

    target = Path(args.target)
    try:
        registry = default_registry()
        source = target / RECIPE_FILE if target.is_dir() else resolve_recipe(args.target)  # a path or a built-in name
        if target.is_dir() and not source.exists():
            raise EvalModelError(f"{target} is not a run directory (no {RECIPE_FILE}); pass a run directory written by "
                                 "`framework run` or a recipe file")
        recipe = load_recipe(source, args.overrides)
        recipe = {**recipe, "eval": {**recipe.get("eval", {}), "tasks": parse_tasks(args.tasks, recipe)}}
        recipe = validate_recipe(recipe, registry, source=str(source))  # checks the tasks' params too
        if target.is_dir():
            model = EvalModel.from_run(target, registry, device=args.device)
            model.recipe = recipe
        else:
            model = EvalModel.from_recipe(recipe, registry, device=args.device)
        out = Path(args.out) if args.out else default_out(target)
        read_results(out / RESULTS_FILE)  # an unusable results file is reported before the tasks run
        results = run_tasks(model, recipe["eval"]["tasks"], out)
        path = write_results(results, out, target=str(target), step=model.step, tasks=recipe["eval"]["tasks"])
    except (*USER_ERRORS, EvalModelError, CheckpointError, ValueError, FileNotFoundError) as exc:
        return fail(exc)
    print(markdown_table(results), end="")
    print(f"results written to {path} and {path.with_suffix('.md')}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("eval", help="evaluate a run (or a recipe's untrained model)")
    p.add_argument("target", metavar="RECIPE_OR_RUN",
                   help="run directory (latest checkpoint), or a recipe JSON or built-in recipe name (untrained)")
    p.add_argument("--task", dest="tasks", action="append", default=[], metavar="TASK",
                   help="evaluator name or JSON params, e.g. '{\"type\": \"retrieval\", \"rerank_k\": 16}'; repeatable "
                        "(default: the recipe's eval.tasks)")
    p.add_argument("--out", "--output", dest="out",
                   help="output directory; results.json there accumulates results by task and step "
                        "(default: RUN/eval, or runs/<recipe name>/eval for a recipe's untrained baseline)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default cpu)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe key, "
                        "e.g. --set data.eval='{\"type\": \"synthetic_shapes\", \"max_shapes\": 1}'")
    p.set_defaults(func=evaluate)
