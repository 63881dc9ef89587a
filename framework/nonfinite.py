"""Skipping optimiser steps whose loss is NaN or infinite, under DeepSpeed ZeRO 0-2.

A non-finite loss must not reach the weights, and its backward pass would turn every
gradient it touches into NaN (``0 * NaN`` is NaN, so scaling the loss by zero does not
help). The loop therefore checks each micro-batch's loss on every rank *before*
backward (:func:`all_finite`). Once a micro-batch is bad, the rest of the step keeps
DeepSpeed's bookkeeping in lock-step (micro-step counter, ZeRO gradient-reduction hooks,
accumulation boundary) by back-propagating :func:`zero_loss` — exactly-zero gradients
that never touch the bad activations — and the boundary ``engine.step()`` runs inside
:func:`skip_optimizer_update`, which turns the wrapped torch optimizer's ``step`` into a
no-op. Weights and optimizer moments are then bit-for-bit unchanged; DeepSpeed still
clears the gradients accumulated from the step's good micro-batches, and the
learning-rate schedule advances (the schedule counts steps, skipped or not).
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator

import torch
import torch.distributed as dist
from torch import nn


class NonFiniteLossError(ValueError):
    """Too many consecutive optimiser steps had a NaN/Inf loss."""


def all_finite(loss: torch.Tensor) -> bool:
    """Whether ``loss`` is finite on every rank (all ranks get the same answer)."""
    flag = torch.isfinite(loss.detach()).all().float().reshape(1)
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def zero_loss(module: nn.Module) -> torch.Tensor:
    """A scalar 0 whose gradient w.r.t. every trainable parameter is exactly 0."""
    params = [p for p in module.parameters() if p.requires_grad]
    return torch.stack([p.sum() for p in params]).sum() * 0.0


@contextmanager
def skip_optimizer_update(engine: Any, skip: bool) -> Iterator[None]:
    """Within the block, the torch optimizer under DeepSpeed (``engine.basic_optimizer``,
    which ZeRO 1-2 also delegate to) does nothing when ``skip`` is true."""
    if not skip:
        yield
        return
    optimizer = engine.basic_optimizer
    had_own = "step" in vars(optimizer)  # lr schedulers wrap ``step`` on the instance
    original = optimizer.step
    optimizer.step = lambda *args, **kwargs: None
    try:
        yield
    finally:
        if had_own:
            optimizer.step = original
        else:
            del optimizer.step
