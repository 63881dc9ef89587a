"""Per-phase step timing that adds no host synchronisation inside the timed steps.

On CUDA each phase boundary records an event on the current stream and the elapsed
times are read once, after the last step: a phase's time is the GPU time between its
boundaries (for the data phase: the host-to-device copy plus any wait for the host).
On a CPU the work is synchronous and boundaries are ``perf_counter`` readings.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

PHASES = ("data", "forward", "backward", "optimizer")


class PhaseTimer:
    """Collects ``len(PHASES) + 1`` boundaries per step; ``summary()`` gives ms per phase."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"
        self.steps: list[list[Any]] = []

    def start_step(self) -> None:
        self.steps.append([])
        self.mark()

    def mark(self) -> None:
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.steps[-1].append(event)
        else:
            self.steps[-1].append(time.perf_counter())

    def _durations_ms(self, marks: list[Any]) -> list[float]:
        if self.cuda:
            return [a.elapsed_time(b) for a, b in zip(marks, marks[1:])]
        return [(b - a) * 1e3 for a, b in zip(marks, marks[1:])]

    def summary(self) -> dict[str, float]:
        """Median milliseconds of each phase and of the whole step over the recorded steps."""
        if self.cuda:
            torch.cuda.synchronize()
        per_step = [self._durations_ms(marks) for marks in self.steps]
        if any(len(d) != len(PHASES) for d in per_step):
            raise RuntimeError(f"each step must mark {len(PHASES)} phase ends ({', '.join(PHASES)})")
        out = {f"{name}_ms": statistics.median(d[i] for d in per_step) for i, name in enumerate(PHASES)}
        out["step_ms"] = statistics.median(sum(d) for d in per_step)
        return out


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_gb(device: torch.device) -> dict[str, float]:
    """Peak CUDA memory allocated by tensors since the last reset; on a CPU the process's
    peak resident set (which includes everything the process ever held)."""
    if device.type == "cuda":
        return {"peak_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30}
    import resource

    return {"peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20}
