"""Checkpoints: DeepSpeed state plus ours (teacher, RNG, data position), made atomically.

A checkpoint is written under a temporary name, completed on every rank, then renamed
into place; ``latest`` (a one-line file) is replaced last. A crash at any moment leaves
the previous checkpoint and pointer intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch

from framework.distributed import barrier, is_main_process

LATEST = "latest"


class CheckpointError(Exception):
    """A checkpoint is missing, incomplete or unreadable."""


def rng_state() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_tree(root: Path) -> None:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())


def save_checkpoint(engine: Any, root: Path, step: int, client_state: dict[str, Any], keep: int,
                    metadata: dict[str, Any]) -> Path:
    """Write checkpoint ``step_<step>`` under ``root`` and point ``latest`` at it."""
    tag = f"step_{step:08d}"
    tmp_tag = f".tmp-{tag}"
    final, tmp = root / tag, root / tmp_tag
    if is_main_process() and tmp.exists():
        shutil.rmtree(tmp)
    barrier()
    engine.save_checkpoint(str(root), tag=tmp_tag, client_state=client_state, save_latest=False)
    barrier()
    if is_main_process():
        for name, value in metadata.items():
            (tmp / name).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
        _fsync_tree(tmp)
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        _write_atomic(root / LATEST, tag + "\n")
        _prune(root, keep)
    barrier()
    return final


def _prune(root: Path, keep: int) -> None:
    tags = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in tags[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(root: Path) -> Optional[Path]:
    """The checkpoint ``latest`` points at, or ``None`` when there is none."""
    pointer = root / LATEST
    if not pointer.exists():
        return None
    path = root / pointer.read_text().strip()
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {path.name}, which does not exist; delete {pointer} to start over")
    return path


def load_checkpoint(engine: Any, path: Path) -> dict[str, Any]:
    """Restore engine state from ``path``; returns our client state."""
    try:
        loaded, client_state = engine.load_checkpoint(str(path.parent), tag=path.name)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot load checkpoint: {exc}") from exc
    if loaded is None:
        raise CheckpointError(f"{path}: DeepSpeed found no checkpoint there")
    return client_state
