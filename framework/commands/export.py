"""`framework export RUN --to timm|hf --out DIR`: a trained encoder as a timm or transformers model.

- ``--to timm``: the image encoder, through timm's own ``save_for_hf``: ``DIR/model.safetensors``
  (timm's key names) and ``DIR/config.json`` naming the architecture and the kwargs that
  rebuild it (``model_args``). Load it with ``timm.create_model("local-dir:DIR",
  pretrained=True)``, or ``timm.create_model(architecture, pretrained=True,
  pretrained_cfg_overlay=dict(file="DIR/model.safetensors"), **model_args)``, or
  ``timm.models.load_checkpoint(model, "DIR/model.safetensors")``.
- ``--to hf``: the text encoder, through ``save_pretrained`` (``config.json`` +
  ``model.safetensors``) plus the run's tokenizer files; ``transformers.AutoModel
  .from_pretrained(DIR)`` and ``AutoTokenizer.from_pretrained(DIR)`` load them.

The weights come from the run's latest ``model.safetensors``. An encoder is exportable when
its module offers ``timm_export()`` (image) or ``transformers_export()`` (text); any other
is refused with one line naming it and why. Outputs equal the framework's unmasked
encodings: timm's ``forward_features`` the image tokens, transformers' ``last_hidden_state``
the text tokens.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from framework.commands.common import USER_ERRORS, fail

TARGETS = {"timm": ("image_encoder", "timm_export"), "hf": ("text_encoder", "transformers_export")}
INFO_FILE = "framework_export.json"
"""Written next to the exported files: which run, step, recipe entry and target they came from."""


class ExportError(Exception):
    """A component of the run cannot be exported to the requested library."""


def _component(model: Any, to: str) -> tuple[str, Any, Any]:
    """The (slot, recipe entry, module) exported to ``to``, or an ExportError saying why not."""
    slot, method = TARGETS[to]
    entry = model.recipe["model"].get(slot)
    module = getattr(model.model, slot, None)
    if entry is None or module is None:
        raise ExportError(f"cannot export to {to}: the run's recipe has no model.{slot}")
    if not hasattr(module, method):
        library = "timm" if to == "timm" else "transformers"
        raise ExportError(f"cannot export model.{slot} ('{entry['type']}') to {to}: it is not a {library} model "
                          f"(it has no {method}(); the built-in {'vit' if to == 'timm' else 'bert'} {slot} is)")
    return slot, entry, module


def export_timm(module: Any, out: Path) -> dict[str, Any]:
    """Save ``module``'s timm VisionTransformer under ``out``; returns architecture and kwargs."""
    import timm
    from timm.models import save_for_hf

    try:
        architecture, kwargs, vit = module.timm_export()
    except ValueError as exc:
        raise ExportError(f"cannot export model.image_encoder to timm: {exc}") from exc
    model = timm.create_model(architecture, pretrained=False, **kwargs)
    model.load_state_dict(vit.state_dict(), strict=True)  # the same network: every key fits
    save_for_hf(model.eval(), str(out), model_args=kwargs, safe_serialization=True)
    return {"architecture": architecture, "model_args": kwargs}


def export_hf(module: Any, tokenizer: Any, out: Path) -> dict[str, Any]:
    """Save ``module``'s transformers model and the run's tokenizer under ``out``."""
    model = module.transformers_export()
    model.save_pretrained(str(out), safe_serialization=True)
    tokenizer.save_pretrained(str(out))
    return {"model_type": model.config.model_type, "architectures": [type(model).__name__]}


def export_run(run_dir: str | Path, to: str, out: str | Path, registry: Any = None) -> Path:
    """Export the encoder of ``run_dir`` that ``to`` names into ``out``; returns ``out``."""
    from framework.evaluate import EvalModel
    from framework.registry import default_registry

    if to not in TARGETS:
        raise ExportError(f"unknown export target '{to}'; choose one of {sorted(TARGETS)}")
    model = EvalModel.from_run(run_dir, registry or default_registry())
    slot, entry, module = _component(model, to)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    described = export_timm(module, out) if to == "timm" else export_hf(module, model.tokenizer, out)
    info = {"run": str(Path(run_dir).resolve()), "step": model.step, "to": to, "component": slot,
            "recipe_entry": entry, **described}
    (out / INFO_FILE).write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    return out


def export(args: argparse.Namespace) -> int:
    from framework.evaluate.model import EvalModelError
    from framework.model_file import ModelFileError

    try:
        out = export_run(args.run, args.to, args.out)
    except (ExportError, EvalModelError, ModelFileError, *USER_ERRORS) as exc:
        return fail(exc)
    slot = TARGETS[args.to][0]
    print(f"exported model.{slot} of {args.run} to {out} ({'timm' if args.to == 'timm' else 'transformers'})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("export", help="save a run's image encoder for timm or its text encoder for transformers")
    p.add_argument("run", help="run directory written by `framework run` (its latest checkpoint's model.safetensors)")
    p.add_argument("--to", required=True, choices=sorted(TARGETS),
                   help="timm: the image encoder; hf: the text encoder with the run's tokenizer")
    p.add_argument("--out", required=True, help="directory to write (created if missing)")
    p.set_defaults(func=export)
