"""Find host synchronisations in a training step, on any device.

On a GPU an op whose result size or value the host must know (a boolean-mask index, a
``nonzero``, ``.item()``, ``bool(tensor)``) stalls the CPU until the device catches up,
so the host can no longer queue kernels ahead. :class:`HostSyncRecorder` sees every aten
op through a ``TorchDispatchMode`` and records those, with the Python frame that called
them, so a CPU test can prove a step is sync-free before it ever reaches a GPU. It cannot
see copies to the host (``.cpu()``, ``.tolist()``): on a CPU run they are no-ops.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten

SYNCING = {
    aten._local_scalar_dense: ".item() / bool() / int() of a tensor",
    aten.is_nonzero: "bool() of a tensor",
    aten.nonzero: "nonzero (data-dependent size)",
    aten.masked_select: "masked_select (data-dependent size)",
    aten.equal: "torch.equal",
    aten.unique_dim: "unique (data-dependent size)",
    aten._unique2: "unique (data-dependent size)",
    aten.bincount: "bincount (its size is the largest value)",
    aten.argwhere: "argwhere (data-dependent size)",
}
"""Ops that always make the host wait for the device, and why."""

INDEXING = {aten.index, aten.index_put, aten.index_put_, aten._index_put_impl_}
"""Ops that wait only when indexed by a boolean mask (the kernel calls ``nonzero``)."""


def _has_bool_index(args: tuple[Any, ...]) -> bool:
    indices = args[1] if len(args) > 1 else ()
    return any(torch.is_tensor(i) and i.dtype == torch.bool for i in indices or ())


def _caller() -> str:
    """The innermost frame outside torch and this module: where the op was asked for."""
    for frame in reversed(traceback.extract_stack()[:-3]):
        if "/torch/" not in frame.filename and frame.filename != __file__:
            return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return "?"


@dataclass
class HostSync:
    """One syncing op: its aten name, why it syncs and the frame that called it."""

    op: str
    reason: str
    where: str


@dataclass
class HostSyncRecorder(TorchDispatchMode):
    """``with HostSyncRecorder() as rec: step()`` then ``rec.syncs`` lists every host sync."""

    syncs: list[HostSync] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def __torch_dispatch__(self, func: Any, types: Any, args: tuple[Any, ...] = (),
                           kwargs: Optional[dict[str, Any]] = None) -> Any:
        packet = func.overloadpacket
        reason = SYNCING.get(packet)
        if reason is None and packet in INDEXING and _has_bool_index(args):
            reason = "indexing by a boolean mask (data-dependent size)"
        if packet is aten.repeat_interleave and (kwargs or {}).get("output_size") is None:
            reason = "repeat_interleave without output_size (data-dependent size)"
        if reason is not None:
            self.syncs.append(HostSync(str(func), reason, _caller()))
        return func(*args, **(kwargs or {}))

    def summary(self) -> list[str]:
        return [f"{s.op} at {s.where}: {s.reason}" for s in self.syncs]
