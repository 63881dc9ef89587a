"""Start a model from another run's weights (``model.init``): the pretrain-then-fine-tune step.

``model.init`` names a run directory (its latest checkpoint's ``model.safetensors``), a
checkpoint directory, or a model file, and which components to take from it::

    "init": {"path": "runs/albef-pretrain", "components": ["image_encoder", "text_encoder", "fusion"],
             "rename": {"objectives.itm_pretrain.": "objectives.itm."}, "allow_missing": ["objectives.cls.*"]}

Each component is a prefix of the student's state dict (``heads`` are the objectives' own
modules: projections, ITM / MLM / task heads; ``teacher`` the teacher's copies where the
file holds them). Source keys are renamed first (prefix renames, first match wins).
Loading is strict by default: every student tensor under a taken component must come from
the source and every source tensor under it must be used, unless an ``allow_missing`` /
``allow_unexpected`` pattern (``fnmatch``) matches it. Shapes must agree, except

* absolute position embeddings (``*pos_embed``, [1, P+N, D]) when the patch grid differs
  (fine-tuning at 384 px from 256 px pretraining): resampled bicubically over the grid, the
  P prefix tokens kept, as timm's ``resample_abs_pos_embed`` does (it is called here);
* text position tables (``*position_embeddings.weight``, [L, D]): truncated, or extended
  with the new rows the student was initialised with.

A momentum teacher (ALBEF's distillation) then starts as a copy of the initialised student.
:func:`initialise` returns a :class:`LoadReport` (loaded, missing, unexpected, resized) that
the run saves as :data:`INIT_REPORT`.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Mapping, Optional

import torch
from safetensors import SafetensorError, safe_open
from torch import nn

from framework.checkpoint import CheckpointError, latest_checkpoint, verify_saved_file
from framework.rundir import MODEL_FILE, RunDir

INIT_REPORT = "init_report.json"
"""Where a run keeps the report of what it was initialised from (in the run directory)."""

COMPONENT_PREFIXES: dict[str, str] = {
    "image_encoder": "image_encoder.",
    "text_encoder": "text_encoder.",
    "fusion": "fusion.",
    "decoders": "decoders.",
    "heads": "objectives.",
    "teacher": "teacher.",
}
"""What each name in ``model.init.components`` takes: a state-dict prefix."""

DEFAULT_COMPONENTS = ("image_encoder", "text_encoder", "fusion")


class InitError(ValueError):
    """``model.init`` cannot be honoured; the message names the key, the path or the tensors."""


@dataclass
class LoadReport:
    """What :func:`initialise` did. ``resized`` entries are ``{key, from, to, how}``."""

    source: str
    step: Optional[int]
    components: list[str]
    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    resized: list[dict[str, Any]] = field(default_factory=list)
    teacher: str = "none"

    def summary(self) -> str:
        """One line for the console."""
        return (f"initialised {', '.join(self.components)} from {self.source}"
                f"{'' if self.step is None else f' (step {self.step})'}: {len(self.loaded)} tensors loaded, "
                f"{len(self.resized)} resized, {len(self.missing)} missing, {len(self.unexpected)} unused; "
                f"teacher: {self.teacher}")

    def save(self, run_dir: str | Path) -> Path:
        path = Path(run_dir) / INIT_REPORT
        path.write_text(json.dumps(asdict(self), indent=2) + "\n")
        return path


# --- finding and reading the source ----------------------------------------------------------

def resolve_model_file(path: str) -> Path:
    """The model file ``model.init.path`` names: the file itself, a checkpoint directory's,
    or a run directory's latest checkpoint's."""
    where = f"model.init.path: '{path}'"
    given = Path(path).expanduser()
    if given.is_file():
        return given
    if not given.exists():
        raise InitError(f"{where} does not exist; name a run directory or a {MODEL_FILE} file")
    if (given / MODEL_FILE).is_file():
        return given / MODEL_FILE
    if not RunDir(given).is_run():
        raise InitError(f"{where} is not a run directory (no recipe.json) nor holds a {MODEL_FILE}")
    try:
        checkpoint = latest_checkpoint(RunDir(given).checkpoints)
    except CheckpointError as exc:
        raise InitError(f"{where}: {exc}") from exc
    if checkpoint is None:
        raise InitError(f"{where} has no checkpoint yet (no checkpoints/latest); train it first")
    if not (checkpoint / MODEL_FILE).is_file():
        raise InitError(f"{where}: its latest checkpoint {checkpoint.name} has no {MODEL_FILE}")
    return checkpoint / MODEL_FILE


def read_weights(file: Path) -> tuple[dict[str, torch.Tensor], Optional[int]]:
    """Tensors of a safetensors model file (tied aliases restored) and its training step;
    a file inside a checkpoint is checked against its SHA256SUMS first."""
    try:
        verify_saved_file(file)
        with safe_open(str(file), framework="pt") as handle:
            metadata = handle.metadata() or {}
            state = {key: handle.get_tensor(key) for key in handle.keys()}
    except CheckpointError as exc:
        raise InitError(f"model.init.path: {exc}") from exc
    except (SafetensorError, OSError) as exc:
        raise InitError(f"model.init.path: '{file}' is not a readable safetensors file: {exc}") from exc
    for alias, kept in json.loads(metadata.get("aliases", "{}")).items():
        state[alias] = state[kept]
    step = metadata.get("step")
    return state, int(step) if step is not None and step.isdigit() else None


def renamed(state: Mapping[str, torch.Tensor], rename: Mapping[str, str]) -> dict[str, torch.Tensor]:
    """``state`` with each key's first matching prefix in ``rename`` replaced."""
    out: dict[str, torch.Tensor] = {}
    for key, tensor in state.items():
        for old, new in rename.items():
            if key.startswith(old):
                key = new + key[len(old):]
                break
        out[key] = tensor
    return out


# --- shape adaptation ------------------------------------------------------------------------

def adapt(key: str, source: torch.Tensor, target: torch.Tensor, grid: Optional[tuple[int, int]]
          ) -> Optional[tuple[torch.Tensor, str]]:
    """``source`` reshaped to ``target``'s shape when ``key`` is a position table that allows
    it (with how), else ``None``."""
    if key.endswith("pos_embed") and source.dim() == 3 and target.dim() == 3 and grid is not None \
            and source.shape[0] == target.shape[0] and source.shape[2] == target.shape[2]:
        prefix = target.shape[1] - grid[0] * grid[1]  # [CLS] (and other prefix tokens) kept as they are
        side = math.isqrt(max(source.shape[1] - prefix, 0))
        if prefix < 0 or side * side != source.shape[1] - prefix:
            return None
        from timm.layers import resample_abs_pos_embed

        resampled = resample_abs_pos_embed(source.float(), new_size=list(grid), old_size=[side, side],
                                           num_prefix_tokens=prefix, interpolation="bicubic", antialias=True)
        return resampled.to(target.dtype), f"bicubic {side}x{side} -> {grid[0]}x{grid[1]} patch grid"
    if key.endswith("position_embeddings.weight") and source.dim() == 2 and target.dim() == 2 \
            and source.shape[1] == target.shape[1]:
        n, m = source.shape[0], target.shape[0]
        if n >= m:
            return source[:m].to(target.dtype), f"truncated {n} -> {m} positions"
        return (torch.cat([source.to(target.dtype), target[n:]]),
                f"extended {n} -> {m} positions (new rows as initialised)")
    return None


# --- loading ---------------------------------------------------------------------------------

def _matches(key: str, patterns: list[str]) -> bool:
    return any(fnmatchcase(key, p) for p in patterns)


def _take(module: nn.Module, source: Mapping[str, torch.Tensor], prefixes: list[str], cfg: Mapping[str, Any],
          grid: Optional[tuple[int, int]], report: LoadReport, strip: str = "") -> None:
    """Load into ``module`` every source tensor under ``prefixes``; collect problems, raise them all."""
    own = {strip + k: v for k, v in module.state_dict().items()}
    wanted = {k: v for k, v in own.items() if k.startswith(tuple(prefixes))}
    offered = {k: v for k, v in source.items() if k.startswith(tuple(prefixes))}
    allow_missing, allow_unexpected = list(cfg.get("allow_missing", [])), list(cfg.get("allow_unexpected", []))
    new_state: dict[str, torch.Tensor] = {}
    mismatched: list[str] = []
    for key, target in wanted.items():
        if key not in offered:
            report.missing.append(key)
            continue
        tensor = offered[key]
        if tensor.shape != target.shape:
            adapted = adapt(key, tensor, target, grid) if cfg.get("resize_positions", True) else None
            if adapted is None:
                if _matches(key, allow_missing):  # a new head of another size: keep its initialisation
                    report.missing.append(key)
                else:
                    mismatched.append(f"{key}: source {tuple(tensor.shape)} vs model {tuple(target.shape)}")
                continue
            tensor, how = adapted
            report.resized.append({"key": key, "from": list(offered[key].shape), "to": list(target.shape), "how": how})
        new_state[key[len(strip):]] = tensor.to(target.dtype)
        report.loaded.append(key)
    report.unexpected += sorted(k for k in offered if k not in wanted)
    problems = [f"shape mismatch {m}" for m in mismatched]
    problems += [f"missing from the source: {k}" for k in report.missing if not _matches(k, allow_missing)]
    problems += [f"not in the model: {k}" for k in report.unexpected if not _matches(k, allow_unexpected)]
    if problems:
        shown = "\n  ".join(problems[:20]) + (f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else "")
        raise InitError(f"model.init from {report.source}: {len(problems)} tensor(s) do not fit (strict loading; "
                        f"allow them with model.init.allow_missing / allow_unexpected patterns, or rename "
                        f"prefixes with model.init.rename):\n  {shown}")
    with torch.no_grad():
        result = module.load_state_dict(new_state, strict=False)
    assert not result.unexpected_keys, f"unexpected keys after filtering: {result.unexpected_keys[:5]}"


def copy_teacher(student: nn.Module, teacher: Any) -> list[str]:
    """Set each teacher copy (``teacher.paths``) to its student module's current weights."""
    paths = list(getattr(teacher, "paths", []))
    with torch.no_grad():
        for path in paths:
            teacher.module(path).load_state_dict(student.get_submodule(path).state_dict())
    return paths


def _model_has(student: nn.Module, teacher: Any, component: str) -> bool:
    if component == "teacher":
        return teacher is not None
    if component == "heads":
        return True  # objectives may hold no parameters; strict loading reports what is unused
    module = getattr(student, component, None)
    return module is not None and (component != "decoders" or len(module) > 0)


def initialise(student: nn.Module, teacher: Any, init_cfg: Mapping[str, Any]) -> LoadReport:
    """Load the components ``init_cfg`` (a defaults-filled ``model.init``) names into
    ``student`` (and ``teacher``), then copy the initialised student into the teacher."""
    components = list(init_cfg.get("components", DEFAULT_COMPONENTS))
    unknown = [c for c in components if c not in COMPONENT_PREFIXES]
    if unknown:
        raise InitError(f"model.init.components: unknown {unknown}; choose from {sorted(COMPONENT_PREFIXES)}")
    file = resolve_model_file(str(init_cfg["path"]))
    raw, step = read_weights(file)
    source = renamed(raw, init_cfg.get("rename", {}))
    has = sorted(c for c, p in COMPONENT_PREFIXES.items() if any(k.startswith(p) for k in source))
    absent = [c for c in components if c not in has]
    if absent:
        raise InitError(f"model.init.components: {file} has no {absent}; it has {has}")
    lacking = [c for c in components if not _model_has(student, teacher, c)]
    if lacking:
        raise InitError(f"model.init.components: this recipe's model has no {lacking} to initialise")
    report = LoadReport(source=str(file), step=step, components=components)
    encoder = getattr(student, "image_encoder", None)
    grid = tuple(encoder.grid) if encoder is not None and hasattr(encoder, "grid") else None
    prefixes = [COMPONENT_PREFIXES[c] for c in components if c != "teacher"]
    if prefixes:
        _take(student, source, prefixes, init_cfg, grid, report)
    if "teacher" in components:
        _take(teacher, source, [COMPONENT_PREFIXES["teacher"]], init_cfg, grid, report, strip="teacher.")
        report.teacher = "loaded from the source"
    elif teacher is not None:
        report.teacher = "copied from the initialised student: " + ", ".join(copy_teacher(student, teacher))
    return report
