"""Metrics sinks: ``metrics.jsonl`` (one JSON object per logged step), optional TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from framework.rundir import RunDir


class MetricsWriter:
    """Appends records to ``run_dir/metrics.jsonl``; only the main process writes."""

    def __init__(self, run_dir: Path, *, enabled: bool, tensorboard: bool = False) -> None:
        self.enabled = enabled
        self.path = RunDir(run_dir).metrics
        self._handle = open(self.path, "a") if enabled else None
        self._board = None
        if enabled and tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as exc:
                raise RuntimeError("train.tensorboard needs the tensorboard package: "
                                   "install the tensorboard extra (pip install -e .[tensorboard])") from exc
            self._board = SummaryWriter(str(Path(run_dir) / "tensorboard"))

    def write(self, record: dict[str, Any]) -> None:
        if self._handle is None:
            return
        try:
            self._handle.write(json.dumps(record) + "\n")
            self._handle.flush()
        except OSError as exc:  # name the file: a failed write's own error has no file name (disk full)
            handle, self._handle = self._handle, None
            try:
                handle.close()  # flushes the same unwritable buffer again
            except OSError:
                pass
            raise OSError(exc.errno, exc.strerror, str(self.path)) from exc
        if self._board is not None:
            for key, value in record.items():
                if key != "step" and isinstance(value, (int, float)):
                    self._board.add_scalar(key, value, record["step"])

    def close(self) -> None:
        if self._handle is not None:
            self._handle.close()
        if self._board is not None:
            self._board.close()


def truncate_metrics(run_dir: Path, step: int) -> int:
    """Drop the records of steps after ``step`` from ``run_dir/metrics.jsonl`` (the step of
    the checkpoint a resumed run continues from), so that replayed steps are not logged
    twice; an unreadable line (a write cut by a kill) goes too. Atomic: readers see the old
    or the new file. Returns the number of lines dropped."""
    path = RunDir(run_dir).metrics
    if not path.is_file():
        return 0
    lines = path.read_bytes().splitlines(keepends=True)
    kept: list[bytes] = []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # half a line written when the process died
        later = isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] > step
        if not later:
            kept.append(line if line.endswith(b"\n") else line + b"\n")
    dropped = len(lines) - len(kept)
    if dropped:
        from framework.checkpoint import write_atomic  # which imports heavy modules

        write_atomic(path, b"".join(kept).decode("utf-8"))
    return dropped


def read_metrics(run_dir: Path) -> list[dict[str, Any]]:
    """All records of a run's ``metrics.jsonl``."""
    path = RunDir(run_dir).metrics
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
