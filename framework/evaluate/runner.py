"""Running evaluation tasks: from `framework eval` and periodically during training.

An evaluator is a registered component of kind ``evaluator``; its factory returns a
callable ``evaluator(model: EvalModel, out_dir: Path) -> dict[str, float]`` (it may write
pictures under ``out_dir``). A task is a recipe entry ``{"type": ..., "name": ..., ...}``
(``name`` defaults to the type and keys the results). Every finished task is reported
through the ``framework_on_eval_results`` hook.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import datetime, timezone
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


RESULTS_FILE = "results.json"
RESULTS_TABLE = "results.md"


def step_key(step: Optional[int]) -> str:
    """How a training step keys results: its number as a string, ``"0"`` for an untrained model."""
    return str(int(step or 0))


def markdown_table(results: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per task, step and metric: ``| task | step | metric | value |``.

    ``results`` is either one evaluation (task -> metric -> value, no step column) or the
    accumulated ``results.json`` form (task -> step -> metric -> value), steps in order."""
    nested = any(isinstance(v, Mapping) for values in results.values() for v in values.values())
    if not nested:
        lines = ["| task | metric | value |", "|---|---|---:|"]
        for task, values in results.items():
            lines += [f"| {task} | {metric} | {value:.2f} |" for metric, value in values.items()]
        return "\n".join(lines) + "\n"
    lines = ["| task | step | metric | value |", "|---|---:|---|---:|"]
    for task, by_step in results.items():
        for step in sorted(by_step, key=int):
            lines += [f"| {task} | {step} | {metric} | {value:.2f} |" for metric, value in by_step[step].items()]
    return "\n".join(lines) + "\n"


def read_results(path: Path) -> dict[str, Any]:
    """An existing ``results.json`` in the accumulated form (``{"results": {task: {step:
    {metric: value}}}, "evaluations": [...]}``); an empty one when there is none. A file of
    the older one-evaluation form (``{"step": N, "results": {task: {metric: value}}}``) is
    converted."""
    if not path.is_file():
        return {"results": {}, "evaluations": []}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); move it away so results can be written") from exc
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        raise ValueError(f"{path} is not an evaluation results file; move it away or pass another --out")
    if "evaluations" in data:
        return data
    step = step_key(data.get("step"))  # the older form: one evaluation, flat metrics per task
    return {"results": {task: {step: values} for task, values in data["results"].items()},
            "evaluations": [{key: data[key] for key in ("target", "step", "tasks") if key in data}]}


def write_results(results: Mapping[str, Mapping[str, float]], out_dir: Path, *, target: str,
                  step: Optional[int], tasks: Sequence[Mapping[str, Any]] = ()) -> Path:
    """Merge one evaluation into ``out_dir/results.json`` and rewrite ``results.md``.

    Results accumulate keyed by task and step: ``results[task][step]`` is that task's
    metrics at that training step (``"0"``: untrained), replaced only by a later evaluation
    of the same task at the same step; ``evaluations`` lists every invocation (target,
    step, task params, time). Returns the JSON path."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / RESULTS_FILE
    data = read_results(path)
    key = step_key(step)
    for task, values in results.items():
        data["results"].setdefault(task, {})[key] = dict(values)
    data["evaluations"].append({"target": target, "step": int(step or 0), "tasks": [dict(t) for t in tasks],
                                "evaluated": datetime.now(timezone.utc).isoformat(timespec="seconds")})
    scratch = path.with_name(f".{path.name}.{os.getpid()}.tmp")  # replaced whole: never half-written
    scratch.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(scratch, path)
    (out_dir / RESULTS_TABLE).write_text(markdown_table(data["results"]))
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
