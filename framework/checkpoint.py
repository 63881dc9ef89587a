"""Checkpoints: DeepSpeed state plus ours (teacher, RNG, data position), made atomically
and loaded without running code from the file.

Saving: every rank writes into ``.tmp-step_N``, and the ranks gather the student's weights
into ``model.safetensors`` (:mod:`framework.model_file`); after a barrier the main process
adds the recipe and provenance, fsyncs every file and directory, renames the directory to
``step_N``, fsyncs the parent, and only then replaces ``latest`` (a one-line file, itself
written to a temporary file, fsynced and renamed). A process killed at any moment leaves
``latest`` naming a complete checkpoint. The ``keep`` most recent checkpoints up to the
new one are kept; leftover temporary directories and checkpoints newer than the new one
(written by a run that died before moving ``latest``) are removed.

Loading: every file DeepSpeed reads goes through ``torch.load(weights_only=True)``, which
rebuilds tensors, containers and numbers only, plus the few DeepSpeed classes its
optimizer states hold (:data:`SAFE_GLOBALS`); anything else in the file is refused with
a :class:`CheckpointError`. Our own state (RNG, data position) is stored as tensors,
numbers and strings so it needs no allow-listing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import numpy as np
import torch

from framework.distributed import barrier, is_main_process
from framework.model_file import write_model_file
from framework.rundir import MANIFEST_FILE, PROVENANCE_FILE

LATEST = "latest"
TMP_PREFIX = ".tmp-"
TAG_PATTERN = re.compile(r"step_\d{8}")


class CheckpointError(Exception):
    """A checkpoint is missing, incomplete, unreadable or holds objects we refuse to load."""


def checkpoint_tag(step: int) -> str:
    return f"step_{step:08d}"


# --- RNG state as plain data ------------------------------------------------------------

def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) generator states as tensors, ints and strings."""
    version, words, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state: dict[str, Any] = {
        "python": {"version": version, "words": torch.tensor(words, dtype=torch.int64), "gauss": gauss},
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    python, numpy_state = state["python"], state["numpy"]
    random.setstate((python["version"], tuple(python["words"].tolist()), python["gauss"]))
    np.random.set_state((numpy_state["kind"], numpy_state["keys"].numpy().astype(np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# --- durable writes -----------------------------------------------------------------------

def _fsync_path(path: Path) -> None:
    """Flush a file's or directory's data and metadata to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(root: Path) -> None:
    """fsync every file under ``root``, then every directory bottom-up (so new entries
    are recorded), ``root`` last."""
    for path in sorted(root.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        _fsync_path(path)
    _fsync_path(root)


def write_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` so that readers see the old or the new content, never a mix."""
    tmp = path.with_name(f"{TMP_PREFIX}{path.name}")
    with open(tmp, "w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_path(path.parent)


def _publish(tmp: Path, final: Path) -> None:
    """Move a complete, fsynced checkpoint directory into place."""
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_path(final.parent)


def save_checkpoint(engine: Any, root: Path, step: int, client_state: dict[str, Any], keep: int,
                    metadata: dict[str, Any]) -> Path:
    """Write checkpoint ``step_<step>`` under ``root`` and point ``latest`` at it.

    ``metadata`` maps file names to JSON values written next to DeepSpeed's files.
    """
    tag = checkpoint_tag(step)
    final, tmp = root / tag, root / f"{TMP_PREFIX}{tag}"
    if is_main_process():
        root.mkdir(parents=True, exist_ok=True)
        if tmp.exists():
            shutil.rmtree(tmp)
    barrier()
    try:
        engine.save_checkpoint(str(root), tag=tmp.name, client_state=client_state, save_latest=False)
    except (OSError, RuntimeError) as exc:  # torch.save reports a failed write (disk full) as a RuntimeError
        raise CheckpointError(f"{tmp}: cannot write the checkpoint: {describe(exc)}{_space_left(root)}; the "
                              f"previous checkpoint is intact") from exc
    # The consolidated student weights every tool reads (a collective under ZeRO-3: every
    # rank gathers, rank 0 writes), in the directory before it is fsynced and published.
    write_model_file(engine, tmp, step=step, recipe_hash=metadata.get(PROVENANCE_FILE, {}).get("recipe_hash"))
    barrier()
    if is_main_process():
        for name, value in metadata.items():
            (tmp / name).write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")
        write_manifest(tmp)  # every file now in the directory; verified before anything reads it
        _fsync_tree(tmp)
        _publish(tmp, final)
        write_atomic(root / LATEST, tag + "\n")
        _prune(root, keep, tag)
    barrier()
    return final


def _space_left(root: Path) -> str:
    """`` (N MiB free)`` on ``root``'s filesystem, for write failures."""
    try:
        return f" ({shutil.disk_usage(root).free >> 20} MiB free on that filesystem)"
    except OSError:
        return ""


def _prune(root: Path, keep: int, current: str) -> None:
    """Keep the ``keep`` newest checkpoints up to ``current``; drop newer ones and temporaries."""
    tags = sorted(p.name for p in root.iterdir() if p.is_dir() and TAG_PATTERN.fullmatch(p.name))
    older = [t for t in tags if t <= current]
    doomed = older[:-keep] + [t for t in tags if t > current]
    doomed += [p.name for p in root.iterdir() if p.name.startswith(TMP_PREFIX)]
    for name in doomed:
        path = root / name
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def latest_checkpoint(root: Path) -> Optional[Path]:
    """The checkpoint ``latest`` points at, or ``None`` when there is none."""
    pointer = root / LATEST
    if not pointer.exists():
        return None
    try:
        tag = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{pointer} is unreadable ({exc}); delete it to start over") from exc
    if not TAG_PATTERN.fullmatch(tag):
        raise CheckpointError(f"{pointer} should name a checkpoint like step_00000100, found {tag[:40]!r}; "
                              f"fix or delete {pointer}")
    path = root / tag
    if not path.is_dir():
        raise CheckpointError(f"{pointer} names {tag}, which does not exist; delete {pointer} to start over")
    return path


# --- checksums ----------------------------------------------------------------------------

def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files(directory: Path) -> list[str]:
    """Every file under ``directory`` but the manifest, as sorted POSIX relative paths."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*")
                  if p.is_file() and p.name != MANIFEST_FILE)


def write_manifest(directory: Path) -> Path:
    """Write ``directory/SHA256SUMS``: the sha256 of every file in it, in ``sha256sum``'s
    format (so ``sha256sum -c SHA256SUMS`` checks a checkpoint by hand too)."""
    lines = [f"{_sha256(directory / name)}  {name}\n" for name in _files(directory)]
    path = directory / MANIFEST_FILE
    path.write_text("".join(lines))
    return path


_MANIFEST_LINE = re.compile(r"([0-9a-f]{64})  ([^\n]+)")


def verify_checkpoint(path: str | Path, names: Optional[Iterable[str]] = None) -> None:
    """Check the files of checkpoint directory ``path`` against its ``SHA256SUMS``.

    With ``names`` (paths relative to ``path``), only those files are hashed (each must be
    listed); otherwise every listed file is, and a file the manifest does not list is
    refused too. Raises a one-line :class:`CheckpointError` naming the first bad file.
    """
    path = Path(path)
    manifest = path / MANIFEST_FILE
    try:
        text = manifest.read_bytes().decode("ascii")
    except FileNotFoundError:
        raise CheckpointError(f"{manifest}: missing, so {path} cannot be verified (it was not written by a complete "
                              "save of this framework); resume from a checkpoint that has one") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CheckpointError(f"{manifest}: unreadable ({describe(exc)})") from exc
    listed: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        match = _MANIFEST_LINE.fullmatch(line)
        if match is None or match[2].startswith("/") or ".." in match[2].split("/"):
            raise CheckpointError(f"{manifest}:{number}: not a '<sha256>  <file>' line inside the checkpoint")
        listed[match[2]] = match[1]
    wanted = list(listed) if names is None else list(names)
    if names is None:
        extra = sorted(set(_files(path)) - set(listed))
        if extra:
            raise CheckpointError(f"{path / extra[0]}: not listed in {MANIFEST_FILE} (added after the checkpoint was "
                                  "saved); remove it")
    for name in wanted:
        file = path / name
        if name not in listed:
            raise CheckpointError(f"{file}: not listed in {MANIFEST_FILE} (added after the checkpoint was saved)")
        if not file.is_file():
            raise CheckpointError(f"{file}: missing (listed in {MANIFEST_FILE}); the checkpoint is incomplete")
        try:
            actual = _sha256(file)
        except OSError as exc:
            raise CheckpointError(f"{file}: unreadable ({describe(exc)})") from exc
        if actual != listed[name]:
            raise CheckpointError(f"{file}: sha256 does not match {MANIFEST_FILE} (the file changed after it was "
                                  "saved: corrupted or edited); restore it or use an older checkpoint")


def verify_saved_file(file: str | Path) -> None:
    """Check one file against the ``SHA256SUMS`` of the checkpoint directory holding it; a
    no-op for a file outside a checkpoint (no manifest and no DeepSpeed files next to it)."""
    file = Path(file)
    if (file.parent / MANIFEST_FILE).exists() or (file.parent / "mp_rank_00_model_states.pt").exists():
        verify_checkpoint(file.parent, [file.name])


# --- safe loading ---------------------------------------------------------------------------

def _deepspeed_safe_globals() -> list[Any]:
    """DeepSpeed classes its ZeRO optimizer states pickle: loss scalers, the ZeRO stage
    enum and tensor-fragment addresses. Rebuilding them sets attributes only."""
    from deepspeed.runtime.fp16.loss_scaler import DynamicLossScaler, LossScaler
    from deepspeed.runtime.zero.config import ZeroStageEnum
    from deepspeed.utils.tensor_fragment import fragment_address

    return [LossScaler, DynamicLossScaler, ZeroStageEnum, fragment_address]


_TORCH_LOAD = torch.load  # the real one, whatever :func:`_only_safe_torch_loads` does to ``torch.load``


def describe(exc: BaseException) -> str:
    """One line about ``exc``: its message's first line, or its type when it has none."""
    lines = [line for line in str(exc).splitlines() if line.strip()]
    return lines[0].strip()[:300] if lines else type(exc).__name__


def _refusal(exc: BaseException) -> str:
    """Why ``weights_only`` loading refused a file, without torch's advice to load it unsafely."""
    text = str(exc)
    found = re.search(r"unsupported GLOBAL ([\w.]+)", text, re.IGNORECASE)
    if found:
        return f"it holds a pickled reference to {found[1]}, which could run code; refused"
    if isinstance(exc, EOFError) or "EOF" in text:
        return "it ends early (empty or truncated)"
    if "Weights only load failed" in text:  # keep the reason, drop the advice to load it unsafely
        reasons = [line.strip() for line in text.splitlines() if line.strip() and "weights_only" not in line
                   and not line.startswith("Weights only load failed") and "pytorch.org" not in line]
        return "refused by the weights-only unpickler: " + (reasons[0][:200] if reasons else "not plain data")
    return describe(exc)


def safe_torch_load(path: str | Path, map_location: Any = None, extra_globals: Iterable[Any] = ()) -> Any:
    """``torch.load`` restricted to tensors, containers, numbers, :func:`_deepspeed_safe_globals`
    and ``extra_globals``; anything else is a one-line :class:`CheckpointError`."""
    try:
        with torch.serialization.safe_globals([*_deepspeed_safe_globals(), *extra_globals]):
            return _TORCH_LOAD(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a loadable checkpoint file (only tensors, numbers, strings and "
                              f"containers are accepted): {_refusal(exc)}") from exc


class _SafeLoads:
    """Wraps DeepSpeed's checkpoint engine so that its reads use :func:`safe_torch_load`."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def load(self, path: str, map_location: Any = None) -> Any:
        return safe_torch_load(path, map_location)


@contextmanager
def _only_safe_torch_loads() -> Iterator[None]:
    """Make every ``torch.load`` in the block :func:`safe_torch_load`: DeepSpeed calls
    ``torch.load(..., weights_only=False)`` itself on some paths (universal checkpoints,
    ZeRO-3 and optimizer-state helpers) besides its checkpoint engine."""

    def load(f: Any, map_location: Any = None, *_: Any, **__: Any) -> Any:
        return safe_torch_load(f, map_location)

    torch.load = load
    try:
        yield
    finally:
        torch.load = _TORCH_LOAD


def load_checkpoint(engine: Any, path: Path) -> dict[str, Any]:
    """Verify ``path`` against its manifest, then restore engine state from it with every
    read weights-only; returns our client state."""
    verify_checkpoint(path)
    original = engine.checkpoint_engine
    engine.checkpoint_engine = _SafeLoads(original)
    try:
        with _only_safe_torch_loads():
            loaded, client_state = engine.load_checkpoint(str(path.parent), tag=path.name)
    except CheckpointError:
        raise
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot load checkpoint: {type(exc).__name__}: {describe(exc)}") from exc
    finally:
        engine.checkpoint_engine = original
    if loaded is None:
        raise CheckpointError(f"{path}: DeepSpeed found no checkpoint there (missing model state files)")
    return client_state
