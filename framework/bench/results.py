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
RESULTS_DIR = Path("benchmarks") / "results"


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


def record(recipe_path: str, recipe: Mapping[str, Any], options: Mapping[str, Any], measured: Mapping[str, Any]) -> dict[str, Any]:
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


def default_path(recipe_path: str, device: str, batch: int) -> Path:
    """``benchmarks/results/bench-<recipe>-<device>-b<batch>.json`` (device name lower-cased, spaces to dashes)."""
    tag = device.lower().replace(" ", "-")
    return RESULTS_DIR / f"bench-{Path(recipe_path).stem}-{tag}-b{batch}.json"


def write(path: Path, data: Mapping[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path
