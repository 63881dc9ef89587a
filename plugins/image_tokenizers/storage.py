"""Finding a trained image tokenizer on disk, and exporting it to one standalone file.

A tokenizer trained by a ``tokenizer_training`` recipe lives inside that run's checkpoints
(``checkpoints/<tag>/model.safetensors``, the consolidated model file of
:mod:`framework.model_file`, parameter names ``objectives.<objective>.tokenizer.*``), next
to the run's ``recipe.json`` that says how to rebuild it. :func:`read_tokenizer` accepts

- a run directory (its ``checkpoints/latest`` checkpoint),
- one checkpoint directory (``<run>/checkpoints/step_00000100``),
- a ``.safetensors`` file written by :func:`export_tokenizer` (weights plus the component
  config and the data normalisation in its metadata; no pickle at all).

Nothing here unpickles: both kinds of file are safetensors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from framework.api import (
    CHECKPOINTS_DIR,
    MODEL_FILE,
    RECIPE_FILE,
    CheckpointError,
    ModelFileError,
    objective_name,
    read_model_file,
)

OBJECTIVE_TYPE = "tokenizer_training"
EXPORT_FORMAT = "framework-image-tokenizer/1"


class TokenizerSourceError(ValueError):
    """A path does not hold a trained image tokenizer."""


@dataclass
class StoredTokenizer:
    """A trained tokenizer's component config (``{"type": ..., params}``), weights and the
    normalisation its training images had."""

    config: dict[str, Any]
    state: dict[str, torch.Tensor]
    mean: list[float]
    std: list[float]


def _checkpoint_dir(path: Path) -> Path:
    if (path / MODEL_FILE).exists():
        return path
    latest = path / CHECKPOINTS_DIR / "latest"
    if latest.exists():
        return path / CHECKPOINTS_DIR / latest.read_text().strip()
    raise TokenizerSourceError(f"'{path}' is neither a run directory (with checkpoints/latest) nor a checkpoint "
                               f"directory (with {MODEL_FILE}); train the tokenizer recipe into it first, e.g. "
                               f"`framework run recipes/tokenizer-vq-tiny.json --output {path}`")


def _pick_objective(recipe: dict[str, Any], objective: Optional[str], where: Path) -> dict[str, Any]:
    found = {objective_name(cfg): cfg for cfg in recipe.get("objectives", []) if cfg["type"] == OBJECTIVE_TYPE}
    if not found:
        raise TokenizerSourceError(f"the recipe of '{where}' has no '{OBJECTIVE_TYPE}' objective, so it trained no "
                                   "tokenizer")
    if objective is None:
        if len(found) > 1:
            raise TokenizerSourceError(f"'{where}' trained several tokenizers {sorted(found)}; name one with "
                                       "\"objective\"")
        objective = next(iter(found))
    if objective not in found:
        raise TokenizerSourceError(f"'{where}' has no tokenizer objective named '{objective}'; it has {sorted(found)}")
    return {"name": objective, **found[objective]}


def _read_checkpoint(path: Path, objective: Optional[str]) -> StoredTokenizer:
    ckpt = _checkpoint_dir(path)
    recipe = json.loads((ckpt / RECIPE_FILE).read_text())
    cfg = _pick_objective(recipe, objective, path)
    try:
        module = read_model_file(ckpt).state
    except (ModelFileError, CheckpointError) as exc:  # CheckpointError: it fails its checkpoint's checksum
        raise TokenizerSourceError(f"'{path}': {exc}") from exc
    prefix = f"objectives.{cfg['name']}.tokenizer."
    state = {k[len(prefix):]: v for k, v in module.items() if k.startswith(prefix)}
    data = recipe.get("data", {})
    return StoredTokenizer(cfg["tokenizer"], state, data.get("mean", [0.485, 0.456, 0.406]),
                           data.get("std", [0.229, 0.224, 0.225]))


def _read_export(path: Path) -> StoredTokenizer:
    try:
        handle = safe_open(str(path), framework="pt")
    except Exception as exc:  # safetensors raises its own error types for unreadable headers
        raise TokenizerSourceError(f"'{path}' is not a readable .safetensors file ({exc}); pass a run directory, "
                                   "a checkpoint directory or a file written by export_tokenizer") from exc
    with handle:
        meta = handle.metadata() or {}
        if meta.get("format") != EXPORT_FORMAT:
            raise TokenizerSourceError(f"'{path}' is not an exported image tokenizer (metadata format "
                                       f"{meta.get('format')!r}, expected {EXPORT_FORMAT!r}); write one with "
                                       "export_tokenizer")
        state = {k: handle.get_tensor(k) for k in handle.keys()}
    return StoredTokenizer(json.loads(meta["config"]), state, json.loads(meta["mean"]), json.loads(meta["std"]))


def read_tokenizer(path: str | Path, objective: Optional[str] = None) -> StoredTokenizer:
    """The tokenizer stored at ``path`` (run dir, checkpoint dir or exported file).

    ``objective`` names the ``tokenizer_training`` objective of the run when it has several.
    """
    path = Path(path)
    if path.is_file():
        return _read_export(path)
    if not path.exists():
        raise TokenizerSourceError(f"image tokenizer source '{path}' does not exist; train a tokenizer recipe "
                                   f"(e.g. recipes/tokenizer-vq-tiny.json) with --output {path}")
    return _read_checkpoint(path, objective)


def export_tokenizer(path: str | Path, out: str | Path, objective: Optional[str] = None) -> Path:
    """Write the tokenizer at ``path`` (a run or checkpoint directory) to ``out`` (.safetensors).

    The file holds the weights and, in its metadata, the component config and data
    normalisation, so ``discrete_tokens`` can load it without the run directory.
    """
    stored = read_tokenizer(path, objective)
    out = Path(out)
    if out.suffix != ".safetensors":
        raise TokenizerSourceError(f"export path '{out}' must end in .safetensors")
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {"format": EXPORT_FORMAT, "config": json.dumps(stored.config),
            "mean": json.dumps(stored.mean), "std": json.dumps(stored.std)}
    save_file({k: v.contiguous() for k, v in stored.state.items()}, str(out), metadata=meta)
    return out
