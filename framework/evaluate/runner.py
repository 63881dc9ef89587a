"""Running evaluation tasks: from `framework eval` and periodically during training.

An evaluator is a registered component of kind ``evaluator``; its factory returns a
callable ``evaluator(model: EvalModel, out_dir: Path) -> dict[str, float]`` (it may write
pictures under ``out_dir``). A task is a recipe entry ``{"type": ..., "name": ..., ...}``
(``name`` defaults to the type and keys the results). Every finished task is reported
through the ``framework_on_eval_results`` hook.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Mapping, Optional, Sequence

import torch

from framework.distributed import is_main_process
from framework.evaluate.model import EvalModel

NAME_PROPERTY: dict[str, Any] = {
    "type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]*$",
    "description": "Name of this task in results and metrics (defaults to its type).",
}

DATASET_SLOT: dict[str, Any] = {
    "x-framework-kind": "dataset",
    "description": "Held-out source to evaluate on (absent: the recipe's data.eval split).",
}
"""An optional dataset param; absent means the recipe's own split. A component slot cannot
default to null, so evaluator factories give this one keyword a ``None`` default."""


def evaluator_schema(properties: dict[str, Any], required: Sequence[str] = ()) -> dict[str, Any]:
    """An evaluator params schema: ``properties`` plus the common optional ``name``."""
    return {"type": "object", "additionalProperties": False, "required": list(required),
            "properties": {"name": NAME_PROPERTY, **properties}}


def task_name(task: Mapping[str, Any]) -> str:
    return task.get("name", task["type"])


def run_tasks(model: EvalModel, tasks: Sequence[Mapping[str, Any]], out_dir: Path, *,
              report: bool = True) -> dict[str, dict[str, float]]:
    """Run ``tasks`` in order on ``model`` (in eval mode, without gradients); results by task
    name. ``report``: call the ``framework_on_eval_results`` hook for each task."""
    names = [task_name(t) for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"several evaluation tasks are named {duplicates}; give each a distinct \"name\"")
    results: dict[str, dict[str, float]] = {}
    was_training = model.model.training
    model.model.eval()
    try:
        for name, task in zip(names, tasks):
            evaluator = model.registry.build("evaluator", {k: v for k, v in task.items() if k != "name"})
            with torch.no_grad():
                results[name] = {k: float(v) for k, v in evaluator(model, Path(out_dir) / name).items()}
            if report:
                model.registry.hook().framework_on_eval_results(task=name, results=results[name],
                                                                run_dir=str(model.run_dir or out_dir))
    finally:
        model.model.train(was_training)
    return results


def markdown_table(results: Mapping[str, Mapping[str, float]]) -> str:
    """One row per task and metric: ``| task | metric | value |``."""
    lines = ["| task | metric | value |", "|---|---|---:|"]
    for task, values in results.items():
        lines += [f"| {task} | {metric} | {value:.2f} |" for metric, value in values.items()]
    return "\n".join(lines) + "\n"


def write_results(results: Mapping[str, Mapping[str, float]], out_dir: Path, info: Mapping[str, Any]) -> Path:
    """``results.json`` (``info`` + results) and ``results.md`` under ``out_dir``; returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "results.json"
    path.write_text(json.dumps({**info, "results": results}, indent=2) + "\n")
    (out_dir / "results.md").write_text(markdown_table(results))
    return path


def flat_metrics(results: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """``{"eval/<task>/<metric>": value}``: how results enter ``metrics.jsonl``."""
    return {f"eval/{task}/{metric}": value for task, values in results.items() for metric, value in values.items()}


def run_periodic_eval(trainer: Any) -> Optional[dict[str, dict[str, float]]]:
    """Evaluate a training run when ``eval.every`` divides its step; ``None`` otherwise.

    Call after each optimiser step (``trainer.step`` already counts it). Every rank runs
    the tasks on its identical copy of the model, so collectives inside encoders and
    maskers stay matched; rank 0 writes ``eval/<task>/<metric>`` to ``metrics.jsonl``,
    pictures under ``<run>/eval/step_<step>/`` and calls the hook. Training mode is
    restored afterwards.
    """
    cfg = trainer.recipe.get("eval") or {}
    every, tasks = cfg.get("every", 0), cfg.get("tasks") or []
    if not every or not tasks or trainer.step % every:
        return None
    model = EvalModel.from_module(trainer.recipe, trainer.registry, trainer.engine.module, trainer.tokenizer,
                                  device=trainer.device, run_dir=trainer.run_dir, step=trainer.step)
    if not is_main_process():
        with tempfile.TemporaryDirectory() as scratch:  # pictures of other ranks are discarded
            return run_tasks(model, tasks, Path(scratch), report=False)
    results = run_tasks(model, tasks, Path(trainer.run_dir) / "eval" / f"step_{trainer.step:08d}")
    trainer.metrics.write({"step": trainer.step, **flat_metrics(results)})
    return results
