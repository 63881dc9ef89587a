"""Benchmark records: the machine, library versions and recipe hash next to the figures."""

from __future__ import annotations

import json
import os
import platform
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Mapping

import torch

from framework.recipe import recipe_hash

LIBRARIES = ("framework", "torch", "deepspeed", "timm", "transformers")
RESULTS_DIR = Path("runs") / "bench"
"""Where ``framework bench`` writes without ``--output``: beside the runs, out of the source
tree; the committed records under ``benchmarks/results/`` are only written when named."""


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    """Host, CPU count and accelerator of this process."""
    info: dict[str, Any] = {"host": platform.node(), "platform": platform.platform(),
                            "processor": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
                            "python": platform.python_version()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                    cuda=torch.version.cuda, gpus=torch.cuda.device_count())
    return info


def record(recipe_path: str, recipe: Mapping[str, Any], options: Mapping[str, Any],
           measured: Mapping[str, Any]) -> dict[str, Any]:
    """One benchmark's JSON record."""
    return {
        "recipe": recipe_path,
        "recipe_hash": recipe_hash(recipe),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": machine(),
        "libraries": {name: _version(name) for name in LIBRARIES},
        "options": dict(options),
        "precision": "bf16-autocast" if recipe["train"]["precision"] == "bf16" else "fp32",
        "zero_stage": recipe["deepspeed"]["zero_stage"],
        **measured,
    }


def default_path(recipe_path: str, device: str, batch: int, *, data: str = "recipe",
                 now: datetime | None = None, root: Path = RESULTS_DIR) -> Path:
    """A file that does not exist yet: ``runs/bench/bench-<recipe>-<device>-b<batch>[-synthetic]-<UTC time>.json``
    (device name lower-cased, spaces to dashes; ``-2``, ``-3``... when that name is taken), so
    each benchmark adds a record and none replaces another."""
    tag = device.lower().replace(" ", "-")
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%dT%H%M%SZ")
    stem = f"bench-{Path(recipe_path).stem}-{tag}-b{batch}{'-synthetic' if data == 'synthetic' else ''}-{stamp}"
    path, n = root / f"{stem}.json", 1
    while path.exists():
        n += 1
        path = root / f"{stem}-{n}.json"
    return path


def write(path: Path, data: Mapping[str, Any], *, exclusive: bool = False) -> Path:
    """Write ``data`` as JSON to ``path``; ``exclusive``: fail rather than replace a file
    (a default name another process took meanwhile)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "x" if exclusive else "w") as handle:
        handle.write(json.dumps(data, indent=2) + "\n")
    return path
