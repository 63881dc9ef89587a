"""The layout of a run directory: the one place its file names are spelled.

::

    RUN/recipe.json          the resolved recipe (defaults filled in)
    RUN/provenance.json      recipe hash, versions, which distribution provided each component
    RUN/tokenizer/           the text tokenizer (``save_pretrained``)
    RUN/metrics.jsonl        one JSON line per logged step
    RUN/eval/                evaluation results and pictures
    RUN/checkpoints/latest   names the newest complete checkpoint
    RUN/checkpoints/step_N/  DeepSpeed state, our client state, recipe.json, provenance.json
                             and model.safetensors: the consolidated weights every tool reads
    RUN/checkpoints/step_N/SHA256SUMS  the sha256 of every other file there, checked before reading
"""

from __future__ import annotations

import errno
import os
from dataclasses import dataclass
from pathlib import Path

RECIPE_FILE = "recipe.json"
PROVENANCE_FILE = "provenance.json"
TOKENIZER_DIR = "tokenizer"
METRICS_FILE = "metrics.jsonl"
EVAL_DIR = "eval"
CHECKPOINTS_DIR = "checkpoints"
MODEL_FILE = "model.safetensors"
MANIFEST_FILE = "SHA256SUMS"


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def recipe(self) -> Path:
        return self.root / RECIPE_FILE

    @property
    def provenance(self) -> Path:
        return self.root / PROVENANCE_FILE

    @property
    def tokenizer(self) -> Path:
        return self.root / TOKENIZER_DIR

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_FILE

    @property
    def eval(self) -> Path:
        return self.root / EVAL_DIR

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS_DIR

    def is_run(self) -> bool:
        return self.recipe.is_file()

    def outputs(self) -> tuple[Path, ...]:
        """What a run writes besides its recipe and provenance (removed by ``--overwrite``)."""
        return (self.metrics, self.checkpoints, self.tokenizer, self.eval)


class RunDirUnwritableError(Exception):
    """A run could not write its outputs where it was asked to."""


def _exists(path: Path) -> bool:
    try:
        return path.exists()
    except OSError as exc:  # e.g. a name too long for the filesystem
        raise RunDirUnwritableError(f"{str(path)[:200]}: {exc.strerror}") from exc


def check_writable(run_dir: str | Path) -> None:
    """Raise :class:`RunDirUnwritableError` (one line naming the path) if a run could not
    write ``run_dir`` and its outputs: the directory or a parent is a file, or is not
    writable (permissions, a read-only filesystem), or ``checkpoints``/``tokenizer``/
    ``eval`` is a file, or ``metrics.jsonl``/``recipe.json`` a directory. Writes nothing."""
    layout = RunDir(run_dir)
    probe = layout.root.absolute()
    while not _exists(probe) and probe != probe.parent:
        probe = probe.parent  # the nearest existing ancestor is where the run directory gets created
    if not probe.is_dir():
        raise RunDirUnwritableError(f"{layout.root}: cannot create the run directory, {probe} is a file")
    targets = [probe]
    if probe == layout.root.absolute():
        for path in (layout.checkpoints, layout.tokenizer, layout.eval):
            if _exists(path) and not path.is_dir():
                raise RunDirUnwritableError(f"{path}: a run writes a directory here but this is a file; move it away")
            if path.is_dir():
                targets.append(path)
        for path in (layout.metrics, layout.recipe, layout.provenance):
            if path.is_dir():
                raise RunDirUnwritableError(f"{path}: a run writes a file here but this is a directory; move it away")
            if path.is_file():
                targets.append(path)
    for path in targets:
        if not os.access(path, os.W_OK | (os.X_OK if path.is_dir() else 0)):
            reason = "read-only filesystem" if _read_only_fs(path) else "no write permission"
            raise RunDirUnwritableError(f"{path}: not writable ({reason}); choose another --output")


def _read_only_fs(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError as exc:
        return exc.errno == errno.EROFS
