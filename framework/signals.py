"""Graceful stop on SIGTERM / SIGINT: finish the current step, checkpoint, exit cleanly.

Schedulers (Slurm, Kubernetes) send SIGTERM before killing a job; Ctrl-C sends SIGINT.
The first signal only sets a flag the training loop polls after each optimiser step; the
loop then checkpoints and returns. A second signal gets the default behaviour (immediate
termination / ``KeyboardInterrupt``), so a stuck run can still be stopped.
"""

from __future__ import annotations

import signal
import sys
import threading
from types import FrameType, TracebackType
from typing import Any, Optional

import torch
import torch.distributed as dist

from framework.distributed import host_group

SIGNALS = (signal.SIGTERM, signal.SIGINT)


class GracefulStop:
    """Context manager that turns SIGTERM/SIGINT into a stop request.

    Handlers can only be installed from the main thread; elsewhere (e.g. a notebook
    worker thread) this does nothing and :meth:`requested` stays ``False``.
    """

    def __init__(self) -> None:
        self.signal_name: Optional[str] = None
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> "GracefulStop":
        if threading.current_thread() is threading.main_thread():
            for sig in SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, kind: Optional[type], value: Optional[BaseException], tb: Optional[TracebackType]) -> None:
        self._restore()

    def _restore(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: Optional[FrameType]) -> None:
        self.signal_name = signal.Signals(signum).name
        self._restore()  # a second signal acts at once
        print(f"\n{self.signal_name} received: finishing this step, then saving a checkpoint "
              "(send it again to stop immediately)", file=sys.stderr, flush=True)

    def requested(self) -> bool:
        """Whether any rank received a signal; every rank gets the same answer, so all
        stop after the same step (a launcher may deliver signals at different times). The
        ranks agree over a host-side gloo group, so the check never waits on a GPU."""
        if not (dist.is_initialized() and dist.get_world_size() > 1):
            return self.signal_name is not None
        flag = torch.tensor([float(self.signal_name is not None)])
        dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=host_group())
        return bool(flag.item())
