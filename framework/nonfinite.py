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

A finite loss can still give a non-finite update. The weights are checked where the flags
are read (:func:`parameters_finite` at each settle, so before every log line and every
checkpoint), not after every step: non-finite weights stay non-finite (NaN and Inf
propagate through every later AdamW update, and a skipped update leaves them as they are),
so one check at the settle covers each update since the last one, at no per-step cost.
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
    value = loss.detach()
    flag = (value - value == 0).float()  # isfinite in two ops: NaN - NaN and Inf - Inf are NaN
    if dist.is_initialized() and dist.get_world_size() > 1:
        flag = flag.reshape(1)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return flag[0]
    return flag


def parameters_finite(module: torch.nn.Module) -> torch.Tensor:
    """1.0 when every parameter (this rank's ZeRO-3 partition of it) is finite on every rank:
    a finite loss can still give an infinite update. A device scalar; the host does not read
    it. A collective with several processes: every rank calls it at the same settle."""
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

    def record(self, step: int, ok: torch.Tensor, losses: Mapping[str, torch.Tensor]) -> None:
        """Remember optimiser step ``step``'s flags: losses finite on every rank (``ok``) and
        which of this rank's ``losses`` were finite."""
        values = torch.stack([v.detach().float() for v in losses.values()]) if losses else ok.new_zeros(0)
        flags = torch.cat([ok.reshape(1), (values - values == 0).float()])  # finite: x - x is 0
        self._pending.append((step, list(losses), flags))

    def settle(self, last_good_checkpoint: Callable[[], Any],
               parameters_ok: Optional[torch.Tensor] = None) -> set[int]:
        """Read every pending flag in one host sync: report skipped steps, update the counts,
        and raise :class:`NonFiniteLossError` once ``max_bad_steps`` ran in a row, or first
        when ``parameters_ok`` (:func:`parameters_finite` now, after the last pending step)
        is 0: some update since the last settle made the weights NaN/Inf. Returns the
        skipped steps among those pending."""
        if not self._pending:
            return set()
        pending, self._pending = self._pending, []
        weights_ok = torch.ones((), device=pending[0][2].device) if parameters_ok is None else parameters_ok
        # the one host read
        read = torch.cat([weights_ok.reshape(1).float(), *(flags for _, _, flags in pending)]).tolist()
        params_ok, offset, values = read[0], 1, []
        for _, names, _ in pending:
            values.append(read[offset: offset + 1 + len(names)])
            offset += 1 + len(names)
        if not params_ok:
            first, last = pending[0][0], pending[-1][0]
            steps = f"of step {last}" if first == last else f"among steps {first}-{last}"
            bad = [str(step) for (step, _, _), (ok, *_) in zip(pending, values) if not ok]
            losses = f"non-finite losses at steps {', '.join(bad)}" if bad else "the losses were finite"
            raise NonFiniteLossError(
                f"an update {steps} made parameters NaN/Inf ({losses}); stopping without saving them. The last "
                f"good checkpoint is {last_good_checkpoint() or 'none (no checkpoint was written)'}. Lower "
                "optim.lr or train.grad_clip, then continue with --resume")
        skipped: set[int] = set()
        for (step, names, _), (ok, *finite) in zip(pending, values):
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
