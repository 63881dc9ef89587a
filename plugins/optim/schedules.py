"""Learning-rate schedules: linear warm-up from 0, then cosine (SGDR, Loshchilov & Hutter
2017; ALBEF, VLMAE, MaskVLM, M3AE), linear (MAMO) or no decay, to ``min_lr`` at the last step."""

from __future__ import annotations

import math

from framework.api import ComponentSpec, WarmupSchedule, schedule_schema

SCHEMA = schedule_schema()


class Cosine(WarmupSchedule):
    """Half a cosine from 1 to the floor."""

    def decay(self, progress: float) -> float:
        return 0.5 * (1 + math.cos(math.pi * progress))


class Linear(WarmupSchedule):
    """A straight line from 1 to the floor."""

    def decay(self, progress: float) -> float:
        return 1 - progress


class Constant(WarmupSchedule):
    """The peak lr after warm-up; ``min_lr`` is not used."""

    def decay(self, progress: float) -> float:
        return 1.0

    def __call__(self, step: int, *, total_steps: int, peak_lr: float) -> float:
        return super().__call__(step, total_steps=total_steps, peak_lr=peak_lr) if step < self.warmup_steps else 1.0


COMPONENTS = [
    ComponentSpec("schedule", "cosine", Cosine, SCHEMA, "Linear warm-up, then cosine decay to min_lr."),
    ComponentSpec("schedule", "linear", Linear, SCHEMA, "Linear warm-up, then linear decay to min_lr."),
    ComponentSpec("schedule", "constant", Constant, SCHEMA, "Linear warm-up, then the peak lr."),
]
