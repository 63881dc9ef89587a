"""``model.safetensors``: the student's consolidated weights, the one file every tool reads.

Every checkpoint directory holds one (see :mod:`framework.rundir`). It is written from the
DeepSpeed engine whatever the ZeRO stage: under ZeRO-3 the partitioned parameters are
gathered (``engine._zero3_consolidated_16bit_state_dict``, a collective every rank must
enter; despite its name it returns the parameters in their own dtype, fp32 here); under
stages 0-2 every rank holds the full module already. Rank 0 writes. The teacher is not in
it: it stays in DeepSpeed's client state, for resuming.

The file's metadata (strings, as safetensors requires) says what it is:

- ``format``: :data:`FORMAT`; ``step``: the training step of the weights;
  ``recipe_hash``: the resolved recipe's hash (:func:`framework.provenance.recipe_hash`);
- ``aliases``: JSON ``{key: kept_key}`` for tied tensors, which safetensors stores once;
- ``pretrained_configs``: JSON of what components read from pretrained files at build
  time besides weights (a BERT ``config.json``, an image tokenizer's component config), so
  that ``assemble(..., load_pretrained=False, pretrained_configs=...)`` rebuilds the model
  without those files. Components record and look them up with :func:`record_config`
  and :func:`stored_config`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from framework.rundir import MODEL_FILE

FORMAT = "framework-model/1"
CONFIGS_KEY = "pretrained_configs"
"""Build-context key: a dict ``{source: JSON config}`` shared by every component of one build."""


class ModelFileError(Exception):
    """A model file is missing, unreadable or not one :func:`write_model_file` wrote."""


@dataclass
class ModelFile:
    """What :func:`read_model_file` returns."""

    state: dict[str, torch.Tensor]
    step: int
    recipe_hash: str | None
    pretrained_configs: dict[str, Any] = field(default_factory=dict)


# --- build-time records of pretrained files ------------------------------------------------

def record_config(context: Any, source: str, config: Any) -> None:
    """Remember ``config`` (JSON) that a component read from pretrained file ``source``."""
    configs = context.get(CONFIGS_KEY)
    if configs is not None:
        configs[source] = json.loads(json.dumps(config))


def stored_config(context: Any, source: str) -> Any | None:
    """The config recorded for ``source`` by the build that wrote the model file, or ``None``."""
    return (context.get(CONFIGS_KEY) or {}).get(source)


# --- gathering and writing -------------------------------------------------------------------

def gather_state_dict(engine: Any) -> dict[str, torch.Tensor] | None:
    """The student's full state dict on the main process (``None`` elsewhere).

    Under ZeRO-3 this is a collective: call it on every rank."""
    if engine.zero_optimization_partition_weights():
        return engine._zero3_consolidated_16bit_state_dict()
    if torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
        return None
    return {k: v.detach().cpu() for k, v in engine.module.state_dict().items()}


def _dedupe(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors safetensors can store (contiguous, no shared storage) plus ``{alias: kept}``
    for tensors that are the same view of the same storage as an earlier one."""
    kept: dict[str, torch.Tensor] = {}
    aliases: dict[str, str] = {}
    views: dict[tuple[int, tuple[int, ...], tuple[int, ...], int, torch.dtype], str] = {}
    storages: set[int] = set()
    for key, tensor in state.items():
        tensor = tensor.detach().cpu()
        if tensor.numel() == 0:
            kept[key] = tensor.contiguous()
            continue
        ptr = tensor.untyped_storage().data_ptr()
        view = (ptr, tuple(tensor.shape), tuple(tensor.stride()), tensor.storage_offset(), tensor.dtype)
        if view in views:  # a tied parameter: store once
            aliases[key] = views[view]
            continue
        views[view] = key
        # another view of storage already stored (or a non-contiguous view): a private copy
        kept[key] = tensor.clone().contiguous() if ptr in storages or not tensor.is_contiguous() else tensor
        storages.add(ptr)
    return kept, aliases


def save_model_file(path: str | Path, state: Mapping[str, torch.Tensor], *, step: int,
                    recipe_hash: str | None = None, pretrained_configs: Mapping[str, Any] | None = None) -> Path:
    """Write ``state`` to ``path`` (a ``.safetensors`` file), fsynced."""
    path = Path(path)
    tensors, aliases = _dedupe(state)
    metadata = {"format": FORMAT, "step": str(int(step)), "aliases": json.dumps(aliases, sort_keys=True),
                CONFIGS_KEY: json.dumps(dict(pretrained_configs or {}), sort_keys=True)}
    if recipe_hash is not None:
        metadata["recipe_hash"] = recipe_hash
    save_file(tensors, str(path), metadata=metadata)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return path


def write_model_file(engine: Any, directory: Path, *, step: int, recipe_hash: str | None = None) -> Path | None:
    """Gather the engine's module (every rank must call this) and write
    ``directory/model.safetensors`` on the main process; returns its path there, else ``None``."""
    state = gather_state_dict(engine)
    if state is None:
        return None
    configs = getattr(engine.module, CONFIGS_KEY, None)
    Path(directory).mkdir(parents=True, exist_ok=True)
    return save_model_file(Path(directory) / MODEL_FILE, state, step=step, recipe_hash=recipe_hash,
                           pretrained_configs=configs)


# --- reading ---------------------------------------------------------------------------------

def model_file_path(path: str | Path) -> Path:
    """``path`` itself when it is a file, else ``path/model.safetensors``."""
    path = Path(path)
    return path if path.is_file() else path / MODEL_FILE


def _verify_in_checkpoint(file: Path) -> None:
    """A model file saved in a checkpoint is checked against the checkpoint's SHA256SUMS first
    (a :class:`~framework.checkpoint.CheckpointError` naming it on a mismatch)."""
    from framework.checkpoint import (
        verify_saved_file,  # framework.checkpoint imports this module
    )

    verify_saved_file(file)


def read_metadata(path: str | Path) -> dict[str, str]:
    """The metadata of a model file (no tensors read)."""
    file = model_file_path(path)
    return _open(file, lambda handle: handle.metadata() or {})


def read_pretrained_configs(path: str | Path) -> dict[str, Any]:
    """What a model file records of the pretrained files its model was built from (their
    configs), so the model can be rebuilt without them."""
    return json.loads(read_metadata(path).get(CONFIGS_KEY, "{}"))


def _open(file: Path, read: Any) -> Any:
    if not file.is_file():
        raise ModelFileError(f"{file} does not exist; checkpoints written by `framework run` hold one "
                             f"({MODEL_FILE}) next to DeepSpeed's files")
    _verify_in_checkpoint(file)
    try:
        with safe_open(str(file), framework="pt") as handle:
            meta = handle.metadata() or {}
            if meta.get("format") != FORMAT:
                raise ModelFileError(f"{file} is not a framework model file (metadata format {meta.get('format')!r}, "
                                     f"expected {FORMAT!r})")
            return read(handle)
    except ModelFileError:
        raise
    except Exception as exc:  # safetensors raises its own error types for damaged files
        raise ModelFileError(f"{file} is not a readable .safetensors file: {str(exc)[:300]}") from exc


def read_model_file(path: str | Path) -> ModelFile:
    """The weights (tied tensors restored as one tensor) and metadata of a model file or of a
    checkpoint directory holding one."""
    file = model_file_path(path)

    def read(handle: Any) -> ModelFile:
        meta = handle.metadata() or {}
        state = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118 (a safe_open handle, not a dict)
        for alias, key in json.loads(meta.get("aliases", "{}")).items():
            state[alias] = state[key]
        return ModelFile(state, int(meta.get("step", 0)), meta.get("recipe_hash"),
                         json.loads(meta.get(CONFIGS_KEY, "{}")))

    return _open(file, read)
