"""The training step: the one sequence of phases the trainer runs and the benchmark times.

Per optimiser step, each of ``accumulation`` micro-batches runs masking -> encoders ->
objectives (the engine's forward) -> the non-finite guard -> backward -> the engine step
(an update only at the accumulation boundary, skipped on the device when a loss was not
finite); then the teacher follows the student. A :class:`PhaseClock` (the benchmark's
timer) may mark the end of each phase; the trainer passes none.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Optional, Protocol

import torch

from framework.nonfinite import finite_everywhere, guard_update
from framework.types import Batch


class PhaseClock(Protocol):
    """Marks phase ends: data, forward (with the guard), backward, optimizer (with the teacher)."""

    def start_step(self) -> None: ...

    def mark(self) -> None: ...


def mask_generator(seed: int, step: int, micro: int, device: torch.device | str = "cpu") -> torch.Generator:
    """Masks of (step, micro-batch) come from their own seed, so resuming needs no
    generator state. Every rank holds the same generator: masks are drawn for the global
    batch and each rank keeps its rows (see ``framework.context``). The generator lives on
    the batch's device, so masks are drawn there with no host-to-device copy; a given seed
    gives the same masks on every device of one type."""
    return torch.Generator(device=device).manual_seed(hash((seed, step, micro)) & (2**63 - 1))


@dataclass
class StepResult:
    """What one optimiser step leaves on the device (the host reads it only when it logs).

    ``finite``: 1.0 if every micro-batch's loss was finite on every rank, else 0.0 and the
    update was skipped. ``values``: losses and metrics averaged over the micro-batches.
    (Whether the weights stayed finite is checked where the host reads these, see
    :mod:`framework.nonfinite`.)"""

    finite: torch.Tensor
    values: dict[str, torch.Tensor]


def training_masks(model: Any, batch: Batch, seed: int, step: int = 0,
                   micro: int = 0) -> dict[str, tuple[Any, Any]]:
    """The (image, text) masks of every view that training step ``step`` draws for the
    micro-batch ``batch`` (``model`` is the RecipeModel): what `framework masks` pictures."""
    ctx = model.context(batch, mask_generator(seed, step, micro, batch["image"].device))
    return {name: ctx.masks(name) for name in model.views}


class TrainStep:
    """One optimiser step of ``engine`` (a DeepSpeed engine around the RecipeModel) over
    ``accumulation`` micro-batches, with the teacher update."""

    def __init__(self, engine: Any, teacher: Optional[Any], *, seed: int, device: torch.device,
                 accumulation: int = 1) -> None:
        self.engine, self.teacher = engine, teacher
        self.seed, self.device, self.accumulation = seed, device, accumulation

    def forward(self, batch: Batch, step: int, micro: int) -> Any:
        """The engine's forward on ``batch`` with the masks of (step, micro)."""
        return self.engine(batch, generator=mask_generator(self.seed, step, micro, self.device), teacher=self.teacher)

    def update_teacher(self, step: int) -> None:
        if self.teacher is not None:
            self.teacher.update(self.engine.module, step)  # a skipped step left the student as it was

    def __call__(self, batches: Iterator[Batch], step: int, clock: Optional[PhaseClock] = None) -> StepResult:
        """Run optimiser step ``step`` (0-based) on the next micro-batches of ``batches``."""
        names: list[str] = []
        sums: Optional[torch.Tensor] = None  # [len(names)]: one stacked add per micro-batch
        ok: Optional[torch.Tensor] = None
        for micro in range(self.accumulation):
            if clock is not None:
                clock.start_step()
            batch = next(batches)
            _mark(clock)
            out = self.forward(batch, step, micro)
            finite = finite_everywhere(out.loss)
            ok = finite if ok is None else ok * finite
            _mark(clock)
            self.engine.backward(out.loss)
            _mark(clock)
            with guard_update(self.engine, ok):
                self.engine.step()
            logged = {"loss": out.loss, **out.losses, **out.metrics}
            names = list(logged)
            with torch.no_grad():  # one stack, outside autograd; / 1 would change nothing
                values = torch.stack([v if v.dtype == torch.float32 else v.float() for v in logged.values()])
                values = values / self.accumulation if self.accumulation > 1 else values
                sums = values if sums is None else sums + values
            if micro == self.accumulation - 1:
                self.update_teacher(step)
            _mark(clock)
        assert ok is not None and sums is not None  # accumulation >= 1
        return StepResult(ok, dict(zip(names, sums.unbind())))


def _mark(clock: Optional[PhaseClock]) -> None:
    if clock is not None:
        clock.mark()
