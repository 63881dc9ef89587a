"""Find the plain-PyTorch reference step of a recipe in ``benchmarks/reference/``.

Each module there defines ``matches(recipe) -> bool`` and
``build(recipe, *, vocab_size, pad_id, mask_id, device)`` returning an object with
``loss(batch)``, ``step()`` and ``zero_grad()`` (``benchmarks.reference.common.PlainStep``).
References read a recipe whose components carry every default (:func:`with_defaults`),
so they need no registry of their own. The references live beside the benchmarks, outside the package, since they are
measurements rather than framework code; they are importable from a source checkout.
"""

from __future__ import annotations

import copy
import importlib
import sys
from pathlib import Path
from typing import Any, Callable, Mapping

from framework.registry import KINDS, Registry, fill_defaults

REPO_ROOT = Path(__file__).resolve().parent.parent.parent
REFERENCE_DIR = REPO_ROOT / "benchmarks" / "reference"


class NoReferenceError(LookupError):
    """No reference step matches the recipe, or the references are not present."""


def reference_names() -> list[str]:
    return sorted(p.stem for p in REFERENCE_DIR.glob("*.py") if p.stem != "common")


def find_reference(recipe: Mapping[str, Any]) -> tuple[str, Callable[..., Any]]:
    """The name and ``build`` function of the reference that matches ``recipe``."""
    if not REFERENCE_DIR.is_dir():
        raise NoReferenceError(f"{REFERENCE_DIR} is missing; "
                               "--compare-reference needs a source checkout of the repository")
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    for name in reference_names():
        module = importlib.import_module(f"benchmarks.reference.{name}")
        if module.matches(recipe):
            return name, module.build
    raise NoReferenceError(f"no reference step in {REFERENCE_DIR} matches this recipe "
                           f"(have: {', '.join(reference_names())}); "
                           "drop --compare-reference or add a module there")


MODEL_SLOTS = {"image_encoder": "image_encoder", "text_encoder": "text_encoder", "fusion": "fusion"}
VIEW_SLOTS = {"image": "image_masking", "text": "text_masking"}


def with_defaults(recipe: Mapping[str, Any], registry: Registry) -> dict[str, Any]:
    """The recipe with each model component, decoder, objective and masker's schema
    defaults filled in, as the registry builds them."""
    out = copy.deepcopy(dict(recipe))

    def filled(kind: str, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"type": config["type"], **fill_defaults(registry.get(kind, config["type"]).schema,
                                                        {k: v for k, v in config.items() if k != "type"})}

    model = out["model"]
    for slot, kind in MODEL_SLOTS.items():
        if slot in model:
            model[slot] = filled(kind, model[slot])
    model["decoders"] = {name: filled("decoder", cfg) for name, cfg in model.get("decoders", {}).items()}
    out["objectives"] = [filled("objective", cfg) for cfg in out["objectives"]]
    for key, kind in (("optim", "optimizer"), ("schedule", "schedule")):  # components where registered
        if isinstance(out.get(key), Mapping) and "type" in out[key] and kind in KINDS:
            out[key] = filled(kind, out[key])
    out["views"] = {name: {part: filled(VIEW_SLOTS[part], cfg) for part, cfg in view.items()}
                    for name, view in out["views"].items()}
    return out
