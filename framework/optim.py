"""Base classes and shared schema pieces of ``optimizer`` and ``schedule`` components.

The recipe's ``optim`` section is an ``optimizer`` component and ``schedule`` a
``schedule`` component (``"type"`` defaults to ``"adamw"`` / ``"cosine"``). The engine
(:func:`framework.engine.build_engine`) reads the keys every optimizer shares
(:data:`OPTIMIZER_PROPERTIES`) to build one param group per (lr multiplier, weight decay),
then calls the component with those groups; the schedule gives each group's multiplier
of its peak lr at every optimiser step. A new optimizer or schedule is a plugin::

    from framework.optim import OptimizerComponent, optimizer_schema

    class Lion(OptimizerComponent):
        def __init__(self, *, betas, **common):
            super().__init__(**common)
            self.betas = tuple(betas)

        def __call__(self, param_groups, *, lr):
            return MyLion(param_groups, lr=lr, betas=self.betas)

    SCHEMA = optimizer_schema({"betas": {...}})
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

OPTIMIZER_PROPERTIES: dict[str, Any] = {
    "lr": {"type": "number", "exclusiveMinimum": 0, "default": 1e-4, "description": "Peak learning rate."},
    "scale_lr_with_batch": {
        "type": "boolean", "default": False,
        "description": "Multiply lr by global_batch / 256 (the MAE/M3AE rule).",
    },
    "weight_decay": {
        "type": "number", "minimum": 0, "default": 0.05,
        "description": "Decoupled weight decay on matrices (none on norms, biases, embeddings and tokens).",
    },
    "lr_multipliers": {
        "type": "object",
        "additionalProperties": {"type": "number", "minimum": 0},
        "default": {},
        "description": "Module path prefix (e.g. `text_encoder`, `objectives.itc`) -> lr multiplier; the "
                       "longest matching prefix wins; 0 freezes.",
    },
}
"""Keys of every optimizer's params: the engine reads them to build the param groups."""

SCHEDULE_PROPERTIES: dict[str, Any] = {
    "warmup_steps": {"type": "integer", "minimum": 0, "default": 0,
                     "description": "Optimiser steps of linear warm-up from 0."},
    "min_lr": {"type": "number", "minimum": 0, "default": 0.0,
               "description": "Learning rate at the end of the decay (scaled by each group's multiplier)."},
}
"""Keys of every warm-up-then-decay schedule (:class:`WarmupSchedule`)."""


def _schema(common: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "properties": {**common, **properties}}


def optimizer_schema(properties: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer params schema: ``properties`` plus :data:`OPTIMIZER_PROPERTIES`."""
    return _schema(OPTIMIZER_PROPERTIES, properties)


def schedule_schema(properties: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """A warm-up schedule params schema: ``properties`` plus :data:`SCHEDULE_PROPERTIES`."""
    return _schema(SCHEDULE_PROPERTIES, properties or {})


class OptimizerComponent:
    """An ``optimizer`` component: holds the shared keys and makes the torch optimizer.

    Called as ``optimizer(param_groups, lr=peak_lr)``; each group carries its own ``lr``
    (peak lr times its multiplier), ``lr_scale`` and ``weight_decay``. The result must
    honour a ``found_inf`` attribute as torch's fused optimizers do (the non-finite guard
    sets it to skip an update on the device, see :mod:`framework.nonfinite`).
    """

    def __init__(self, *, lr: float, scale_lr_with_batch: bool, weight_decay: float,
                 lr_multipliers: Mapping[str, float]) -> None:
        self.lr, self.scale_lr_with_batch = lr, scale_lr_with_batch
        self.weight_decay, self.lr_multipliers = weight_decay, dict(lr_multipliers)

    def __call__(self, param_groups: list[dict[str, Any]], *, lr: float) -> torch.optim.Optimizer:
        raise NotImplementedError


class WarmupSchedule:
    """A ``schedule`` component: linear warm-up from 0 over ``warmup_steps``, then
    :meth:`decay` from 1 to the floor ``min_lr / peak_lr`` at ``total_steps``.

    Called as ``schedule(step, total_steps=T, peak_lr=lr)`` with the 0-based optimiser
    step; returns the multiplier of each group's peak lr.
    """

    def __init__(self, *, warmup_steps: int, min_lr: float) -> None:
        self.warmup_steps, self.min_lr = warmup_steps, min_lr

    def decay(self, progress: float) -> float:
        """The shape after warm-up: 1 at ``progress`` 0, 0 at 1."""
        raise NotImplementedError

    def __call__(self, step: int, *, total_steps: int, peak_lr: float) -> float:
        if step < self.warmup_steps:
            return (step + 1) / self.warmup_steps
        floor = self.min_lr / peak_lr
        progress = min(1.0, (step - self.warmup_steps) / max(1, total_steps - self.warmup_steps))
        return floor + (1 - floor) * self.decay(progress)
