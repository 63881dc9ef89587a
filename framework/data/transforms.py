"""Image preprocessing and augmentation from the recipe, with boxes moved along.

Built from torchvision ``transforms.v2`` so ``tv_tensors.BoundingBoxes`` follow every
geometric change of the image. The ``data.augment`` object (validated by
:data:`AUGMENT_SCHEMA`) may hold:

* ``random_resized_crop``: ``{"scale": [lo, hi], "ratio": [lo, hi]}`` — ALBEF's crop
  (scale 0.5-1.0); without it the image is resized to a square.
* ``hflip``: ``{"p": 0.5, "swap_left_right": true}`` — horizontal flip. A flip turns
  "on the left" into a false caption, so by default the words ``left``/``right`` are
  swapped in every caption of a flipped sample. ALBEF flips without touching captions;
  set ``swap_left_right: false`` to reproduce that. Off unless given.
* ``randaugment``: ``{"num_ops": 2, "magnitude": 7}`` — RandAugment over ALBEF's
  operations, which leave out colour-changing ones because captions name colours.
  torchvision's RandAugment cannot move boxes, so for samples with boxes only its
  photometric operations are used.

Evaluation resizes to a square and normalises. Geometry and RandAugment run on the PIL
image (faster than on tensors); only the result is converted. Each sample's randomness comes from the
torch generator state the caller sets (see ``framework.data.samples``).
"""

from __future__ import annotations

import re
from typing import Any, Mapping

import jsonschema
import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from framework.registry import fill_defaults
from framework.validation import core_schema

ALBEF_OPS = ("Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness",
             "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
GEOMETRIC_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")

AUGMENT_SCHEMA: dict[str, Any] = core_schema()["properties"]["data"]["properties"]["augment"]
"""The ``data.augment`` schema; it lives in ``schemas/recipe.schema.json`` with the rest of the recipe."""


class ColourPreservingRandAugment(v2.RandAugment):
    """torchvision RandAugment restricted to a set of operations (ALBEF's by default)."""

    def __init__(self, *, ops: tuple[str, ...], num_ops: int, magnitude: int) -> None:
        super().__init__(num_ops=num_ops, magnitude=magnitude, interpolation=InterpolationMode.BILINEAR)
        self._AUGMENTATION_SPACE = {k: v for k, v in v2.RandAugment._AUGMENTATION_SPACE.items() if k in ops}


_LEFT_RIGHT = re.compile(r"\b(left|right)\b")


def swap_left_right(text: str) -> str:
    """``"a circle on the left"`` -> ``"a circle on the right"`` (whole words only)."""
    return _LEFT_RIGHT.sub(lambda m: "right" if m.group(1) == "left" else "left", text)


def parse_augment(augment: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``data.augment`` and fill in its defaults; errors name the bad key."""
    errors = sorted(jsonschema.Draft202012Validator(AUGMENT_SCHEMA).iter_errors(augment), key=lambda e: e.json_path)
    if errors:
        lines = "; ".join(f"data.augment{e.json_path[1:]}: {e.message}" for e in errors)
        raise ValueError(f"invalid data.augment: {lines} (known keys: {sorted(AUGMENT_SCHEMA['properties'])})")
    out = dict(augment)
    for key, sub in AUGMENT_SCHEMA["properties"].items():
        if key in out:
            out[key] = fill_defaults(sub, out[key])
    return out


class SampleTransform:
    """Turns a raw sample into tensors: ``image`` [3,S,S] normalised float, ``boxes`` [M,4].

    Samples without an image (text-only sources) pass through with ``image=None``.
    """

    def __init__(self, *, image_size: int, mean: list[float], std: list[float], augment: Mapping[str, Any],
                 train: bool) -> None:
        aug = parse_augment(augment) if train else {}
        crop = aug.get("random_resized_crop")
        if crop is not None:
            resize = v2.RandomResizedCrop(image_size, scale=tuple(crop["scale"]), ratio=tuple(crop["ratio"]),
                                          interpolation=InterpolationMode.BICUBIC, antialias=True)
        else:
            resize = v2.Resize((image_size, image_size), interpolation=InterpolationMode.BICUBIC, antialias=True)
        self.geometry = v2.Compose([resize, v2.ClampBoundingBoxes(),
                                    v2.SanitizeBoundingBoxes(min_size=1, labels_getter=None)])
        self.hflip = aug.get("hflip")
        ra = aug.get("randaugment")
        self.randaugment = self.randaugment_boxed = None
        if ra is not None:
            self.randaugment = ColourPreservingRandAugment(ops=ALBEF_OPS, **ra)
            photometric = tuple(op for op in ALBEF_OPS if op not in GEOMETRIC_OPS)
            self.randaugment_boxed = ColourPreservingRandAugment(ops=photometric, **ra)
        self.finish = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean=list(mean), std=list(std))])

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(sample)
        image = sample.get("image")
        if image is None:
            out["image"], out["boxes"] = None, torch.zeros(0, 4)
            return out
        raw = torch.as_tensor(sample.get("boxes") or [], dtype=torch.float32).reshape(-1, 4)
        boxes = tv_tensors.BoundingBoxes(raw, format="XYXY", canvas_size=(image.height, image.width))
        image, boxes = self.geometry(image, boxes)
        if self.hflip is not None and torch.rand(()) < self.hflip["p"]:
            image, boxes = v2.functional.horizontal_flip(image), v2.functional.horizontal_flip(boxes)
            if self.hflip["swap_left_right"] and sample.get("captions"):
                out["captions"] = [swap_left_right(c) for c in sample["captions"]]
        if self.randaugment is not None:
            image = (self.randaugment_boxed if len(boxes) else self.randaugment)(image)
        out["image"], out["boxes"] = self.finish(image), boxes.as_subclass(torch.Tensor)
        return out


def build_transform(data: Mapping[str, Any], *, train: bool) -> SampleTransform:
    """The train (augmenting) or eval transform of a defaults-filled ``data`` section."""
    return SampleTransform(image_size=data["image_size"], mean=data["mean"], std=data["std"],
                           augment=data["augment"], train=train)
