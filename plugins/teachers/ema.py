"""Momentum (EMA) teacher: gradient-free copies of chosen student modules.

ALBEF/VLMAE keep momentum copies of the encoders (and ITC projections); MAMO keeps a full
EMA network including its MRM projector. The copies live outside the DeepSpeed engine as
replicated modules, so ZeRO never partitions them. Each step they move towards the
student, whose parameters are gathered read-only first under ZeRO-3 (where a partitioned
parameter is an empty tensor outside its forward pass).
"""

from __future__ import annotations

import contextlib
import copy
import math
from typing import Iterator, Optional

import torch
from torch import nn

from framework.api import Backbone, BuildContext, ComponentSpec


def _key(path: str) -> str:
    return path.replace(".", "__")  # ModuleDict keys cannot contain dots


@contextlib.contextmanager
def gathered(params: list[nn.Parameter]) -> Iterator[None]:
    """Make ZeRO-3-partitioned ``params`` whole for reading (a no-op otherwise)."""
    if not any(hasattr(p, "ds_id") for p in params):
        yield
        return
    import deepspeed

    with deepspeed.zero.GatheredParameters(params, modifier_rank=None):
        yield


def momentum_at(step: int, *, start: float, final: Optional[float], ramp_steps: int) -> float:
    """EMA momentum after optimiser step ``step`` (0-based): ``start`` throughout when
    ``final`` is None, else BYOL's cosine ramp (Grill et al. 2020 §3.2)
    ``final - (final - start) * (1 + cos(pi * k / K)) / 2`` with ``k = min(step, K)``."""
    if final is None:
        return start
    progress = min(step, ramp_steps) / max(ramp_steps, 1)
    return final - (final - start) * (1 + math.cos(math.pi * progress)) / 2


class EmaTeacher(nn.Module):
    """Copies of the student modules at ``modules`` (paths such as ``image_encoder`` or
    ``objectives.itc.image_proj``), updated as ``t <- m * t + (1 - m) * s``."""

    def __init__(self, *, momentum: float, final_momentum: Optional[float], ramp_steps: int, modules: list[str],
                 context: BuildContext) -> None:
        super().__init__()
        student: nn.Module = context["student"]
        self.momentum, self.final_momentum, self.ramp_steps = momentum, final_momentum, ramp_steps
        self.paths = list(modules)
        copies = {}
        for path in self.paths:
            try:
                source = student.get_submodule(path)
            except AttributeError:
                raise ValueError(f"teacher module '{path}' is not a module of the model; check "
                                 "model.teacher.modules") from None
            copies[_key(path)] = copy.deepcopy(source)
        self.copies = nn.ModuleDict(copies)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "EmaTeacher":
        return super().train(False)  # the teacher never uses dropout

    def module(self, path: str) -> nn.Module:
        if _key(path) not in self.copies:
            raise KeyError(f"the teacher keeps no copy of '{path}'; add it to model.teacher.modules")
        return self.copies[_key(path)]

    def backbone(self) -> Backbone:
        fusion = self.copies[_key("fusion")] if _key("fusion") in self.copies else None
        return Backbone(self.module("image_encoder"), self.module("text_encoder"), fusion)

    @torch.no_grad()
    def update(self, student: nn.Module, step: int) -> None:
        """Move every copy towards the student's current parameters; copy buffers."""
        momentum = momentum_at(step, start=self.momentum, final=self.final_momentum, ramp_steps=self.ramp_steps)
        for path in self.paths:
            source, target = student.get_submodule(path), self.copies[_key(path)]
            params = list(source.parameters())
            with gathered(params):
                for t, s in zip(target.parameters(), params):
                    t.lerp_(s.detach().to(t.dtype), 1 - momentum)
            for t, s in zip(target.buffers(), source.buffers()):
                t.copy_(s)


COMPONENTS = [ComponentSpec("teacher", "ema", EmaTeacher, {
    "type": "object", "additionalProperties": False,
    "properties": {
        "momentum": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.995,
                     "description": "EMA momentum m (ALBEF/VLMAE: 0.995); the start of the ramp when final_momentum is "
                                    "set."},
        "final_momentum": {"type": ["number", "null"], "minimum": 0, "maximum": 1, "default": None,
                           "description": "Momentum reached by a cosine ramp over ramp_steps (BYOL: 1.0); null = "
                                          "constant."},
        "ramp_steps": {"type": "integer", "minimum": 1, "default": 1000,
                       "description": "Optimiser steps of the cosine ramp from momentum to final_momentum."},
        "modules": {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1,
                    "default": ["image_encoder", "text_encoder", "fusion"],
                    "description": "Student module paths to copy (e.g. objectives.itc.image_proj)."},
    },
}, "Momentum (EMA) copy of student modules, outside the DeepSpeed engine.")]
