"""Hook specifications: the whole plugin API of the framework, grouped by lifecycle.

A plugin is a module (or object) exposed through the ``framework.plugins`` entry-point
group of its distribution. It implements any of these hooks with ``@framework.hookimpl``.
Built-in components under ``plugins/`` use exactly this path.

Example plugin package (``pyproject.toml``)::

    [project.entry-points."framework.plugins"]
    my_masking = "my_package.masking"

and ``my_package/masking.py``::

    from framework import ComponentSpec, hookimpl

    @hookimpl
    def framework_components():
        yield ComponentSpec(kind="image_masking", name="every_other", factory=EveryOther,
                            schema={"type": "object", "properties": {}}, doc="Mask odd patches.")
"""

from __future__ import annotations

from typing import Any, Iterable

import pluggy

PROJECT = "framework"
ENTRY_POINT_GROUP = f"{PROJECT}.plugins"
API_VERSION = 1
"""Bumped on incompatible changes to these hooks, to ``ComponentSpec``, to the records in
``framework.types`` or to the call protocols of ``docs/components.md``. A plugin module
sets ``FRAMEWORK_API_VERSION`` to the version it was written for; on a mismatch the
registry refuses it, naming its distribution (see ``docs/plugins.md``)."""

hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)


# --- registration -------------------------------------------------------------------


@hookspec
def framework_components() -> Iterable[Any]:
    """Register components.

    Called once per plugin, when the registry loads it; takes no arguments.

    Must return (or yield) :class:`framework.registry.ComponentSpec` records:
    ``kind`` (one of ``framework.registry.KINDS``), ``name`` (unique within the kind),
    ``factory`` (called with the validated params as keyword arguments, plus
    ``context=BuildContext`` if it accepts a ``context`` argument), ``schema`` (JSON
    Schema of the params, Draft 2020-12, without the ``type`` key) and ``doc``.

    Example::

        @hookimpl
        def framework_components():
            yield ComponentSpec("target", "hog", HogTarget, {"type": "object"}, "HOG features.")
    """


# --- training lifecycle ----------------------------------------------------------------


@hookspec
def framework_on_step_end(step: int, metrics: dict[str, float], run_dir: str) -> None:
    """Observe a finished optimiser step.

    Called on every rank after each optimiser step (after the teacher update), before
    the checkpoint of that step is written. Must return nothing.

    Args:
        step: optimiser steps done so far (1 after the first step).
        metrics: the last record written to ``metrics.jsonl`` (``step``, ``loss``, each
            objective's loss and metrics, ``lr``, ``samples_per_s``, ...), averaged over
            ranks. Records are written every ``train.log_every`` steps, so between them
            this is an older record: ``metrics.get("step") == step`` when it is fresh. It
            is empty before the first record.
        run_dir: the run directory (holds ``recipe.json``, ``provenance.json``,
            ``metrics.jsonl``, ``checkpoints/``).

    Example::

        @hookimpl
        def framework_on_step_end(step, metrics, run_dir):
            if step % 100 == 0:
                print(step, metrics["loss"])
    """


@hookspec
def framework_on_checkpoint(step: int, path: str) -> None:
    """Observe a checkpoint that was written and made current.

    Called on rank 0 after the checkpoint at ``path`` is complete and ``latest`` points
    at it. Must return nothing.

    Args:
        step: the optimiser step the checkpoint holds.
        path: the checkpoint directory, ``<run_dir>/checkpoints/step_<8-digit step>``.

    Example::

        @hookimpl
        def framework_on_checkpoint(step, path):
            upload(path)
    """


@hookspec
def framework_on_eval_results(task: str, results: dict[str, float], run_dir: str) -> None:
    """Observe evaluation results.

    Called on rank 0 after an evaluation task finishes, in ``framework eval`` and in
    periodic evaluation during training. Must return nothing.

    Args:
        task: the task's name (its ``name`` in ``eval.tasks``, else its evaluator type).
        results: metric name -> value, as written to ``results.json``.
        run_dir: the run directory evaluated, or the output directory when an untrained
            recipe is evaluated.

    Example::

        @hookimpl
        def framework_on_eval_results(task, results, run_dir):
            print(task, results)
    """
