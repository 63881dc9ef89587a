"""Skipping optimiser steps whose loss is NaN or infinite, with no host sync per step.

A non-finite loss must not reach the weights. Each micro-batch's loss is checked on the
device (:func:`finite_everywhere`: one MIN all-reduce across ranks, nothing read by the
host); a step's flags are multiplied, and the boundary ``engine.step()`` runs inside
:func:`guard_update`, which hands the torch optimizer under DeepSpeed
(``engine.basic_optimizer``, which ZeRO 1-2 also delegate to; a fused AdamW) the
``found_inf`` flag torch's GradScaler uses: its fused kernel then leaves weights, moments
and step counts bit-for-bit unchanged. Backward still runs on a bad loss (its non-finite
gradients are dropped with the step's), so DeepSpeed's bookkeeping (micro-step counter,
ZeRO gradient hooks, accumulation boundary) stays in lock-step on every rank, and the
learning-rate schedule advances (it counts steps, skipped or not).

The host learns which steps were skipped only where it reads values anyway (log steps,
checkpoints, the end of a run): :class:`NonFiniteLedger` keeps each step's flags on the
device until then, then reports skipped steps and stops a run past ``max_bad_steps``.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, Optional

import torch
import torch.distributed as dist

from framework.distributed import is_main_process


class NonFiniteLossError(ValueError):
    """Too many consecutive optimiser steps had a NaN/Inf loss, or an update made the
    parameters non-finite."""


def finite_everywhere(loss: torch.Tensor) -> torch.Tensor:
    """1.0 when ``loss`` is finite on every rank, else 0.0: a device scalar the host does not read."""
    flag = torch.isfinite(loss.detach()).all().float().reshape(1)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return flag[0]


def parameters_finite(module: torch.nn.Module) -> torch.Tensor:
    """1.0 when every parameter (this rank's ZeRO-3 partition of it) is finite on every rank:
    a finite loss can still give an infinite update. A device scalar; the host does not read it."""
    tensors = [t for t in (getattr(p, "ds_tensor", p).detach() for p in module.parameters()) if t.numel()]
    largest = torch._foreach_norm(tensors, float("inf")) if tensors else []  # max |value|: inf/nan propagate
    flag = (torch.isfinite(torch.stack(largest)).all() if largest else torch.ones((), dtype=torch.bool))
    flag = flag.float().reshape(1)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return flag[0]


@contextmanager
def guard_update(engine: Any, ok: torch.Tensor) -> Iterator[None]:
    """Within the block the torch optimizer under ``engine`` updates nothing unless the
    device scalar ``ok`` is 1 (a fused kernel reads the flag; no host sync)."""
    optimizer = engine.basic_optimizer
    optimizer.found_inf = 1.0 - ok
    try:
        yield
    finally:
        del optimizer.found_inf


class NonFiniteLedger:
    """Per-step flags (all finite? which losses?) kept on the device until :meth:`settle`."""

    def __init__(self, max_bad_steps: int, skipped: int = 0, streak: int = 0) -> None:
        self.max_bad_steps = max_bad_steps
        self.skipped, self.streak = skipped, streak  # skipped steps in all, and in a row up to now
        self._pending: list[tuple[int, list[str], torch.Tensor]] = []

    def record(self, step: int, ok: torch.Tensor, losses: Mapping[str, torch.Tensor],
               params_ok: Optional[torch.Tensor] = None) -> None:
        """Remember optimiser step ``step``'s flags: losses finite on every rank (``ok``),
        parameters finite after it (``params_ok``), and which of this rank's ``losses`` were finite."""
        params_ok = torch.ones_like(ok) if params_ok is None else params_ok
        flags = torch.stack([ok, params_ok, *(torch.isfinite(v.detach()).all().float() for v in losses.values())])
        self._pending.append((step, list(losses), flags))

    def settle(self, last_good_checkpoint: Callable[[], Any]) -> set[int]:
        """Read every pending flag in one host sync: report skipped steps, update the counts,
        and raise :class:`NonFiniteLossError` once ``max_bad_steps`` ran in a row. Returns
        the skipped steps among those pending."""
        if not self._pending:
            return set()
        pending, self._pending = self._pending, []
        values = torch.stack([flags for _, _, flags in pending]).tolist()  # the one host read
        skipped: set[int] = set()
        for (step, names, _), (ok, params_ok, *finite) in zip(pending, values):
            if not params_ok:
                raise NonFiniteLossError(
                    f"the update of step {step} made parameters NaN/Inf (the loss was "
                    f"{'finite' if ok else 'not finite'}); stopping without saving them. The last good checkpoint "
                    f"is {last_good_checkpoint() or 'none (no checkpoint was written)'}. Lower optim.lr or "
                    "train.grad_clip, then continue with --resume")
            if ok:
                self.streak = 0
                continue
            skipped.add(step)
            self.skipped, self.streak = self.skipped + 1, self.streak + 1
            if is_main_process():
                bad = [n for n, f in zip(names, finite) if not f]
                print(f"step {step}: non-finite loss ({', '.join(bad) or 'on another rank'}); update skipped",
                      file=sys.stderr, flush=True)
            if self.streak >= self.max_bad_steps:
                raise NonFiniteLossError(
                    f"{self.max_bad_steps} optimiser steps in a row (up to step {step}) had a NaN/Inf loss; stopping. "
                    f"The last good checkpoint is {last_good_checkpoint() or 'none (no checkpoint was written)'}. "
                    "Lower optim.lr or train.grad_clip, or check the data, then continue with --resume (or raise "
                    "train.max_bad_steps)")
        return skipped
