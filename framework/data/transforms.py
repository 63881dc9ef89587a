"""Image preprocessing and the recipe's ``augment`` components, with boxes moved along.

``data.augment`` is a list of ``augment`` components (built-ins in ``plugins/augment``),
applied in order to each training sample as an :class:`AugmentSample`: the PIL image,
its ``tv_tensors.BoundingBoxes`` (which torchvision ``transforms.v2`` moves with every
geometric change) and its captions (a flip may rewrite them). An augment whose
``resizes`` attribute is true (``random_resized_crop``) brings the image to
``image_size``; without one the image is first resized to a square. Evaluation only
resizes. The result is converted to a normalised tensor once, at the end.

Augments draw their randomness from torch's CPU generator, which the loaders seed per
sample and epoch (:func:`framework.data.samples.sample_rng`), so a sample is augmented
the same way whatever the worker count and after an exact resume.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2

from framework.registry import BuildContext, Registry, default_registry


class AugmentSample(NamedTuple):
    """What an ``augment`` component receives and returns."""

    image: Image.Image
    boxes: tv_tensors.BoundingBoxes
    """[M, 4] ``XYXY`` pixels on the image's canvas."""
    captions: list[str] | None
    """``None`` for a sample without text."""


FIT_BOXES = v2.Compose([v2.ClampBoundingBoxes(), v2.SanitizeBoundingBoxes(min_size=1, labels_getter=None)])
"""After a crop or resize: boxes clipped to the canvas, boxes left without area dropped."""


def square_resize(image_size: int) -> v2.Transform:
    """Bicubic, antialiased resize to ``image_size`` x ``image_size`` (boxes follow)."""
    return v2.Compose([v2.Resize((image_size, image_size), interpolation=InterpolationMode.BICUBIC, antialias=True),
                       FIT_BOXES])


def legacy_augment(augment: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The list form of a pre-component ``data.augment`` object (same components, same order)."""
    order = ("random_resized_crop", "hflip", "randaugment")
    return [{"type": key, **augment[key]} for key in order if key in augment]


class SampleTransform:
    """Turns a raw sample into tensors: ``image`` [3,S,S] normalised float, ``boxes`` [M,4].

    ``augments`` are built ``augment`` components (none: evaluation). Samples without an
    image (text-only sources) pass through with ``image=None``.
    """

    def __init__(self, *, image_size: int, mean: Sequence[float], std: Sequence[float],
                 augments: Sequence[Any] = ()) -> None:
        self.augments = list(augments)
        resizes = any(getattr(augment, "resizes", False) for augment in self.augments)
        self.resize = None if resizes else square_resize(image_size)
        self.finish = v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True),
                                  v2.Normalize(mean=list(mean), std=list(std))])

    def __call__(self, sample: Mapping[str, Any]) -> dict[str, Any]:
        out = dict(sample)
        image = sample.get("image")
        if image is None:
            out["image"], out["boxes"] = None, torch.zeros(0, 4)
            return out
        raw = torch.as_tensor(sample.get("boxes") or [], dtype=torch.float32).reshape(-1, 4)
        boxes = tv_tensors.BoundingBoxes(raw, format="XYXY", canvas_size=(image.height, image.width))
        if self.resize is not None:
            image, boxes = self.resize(image, boxes)
        current = AugmentSample(image, boxes, sample.get("captions"))
        for augment in self.augments:
            current = augment(current)
        if "captions" in sample:
            out["captions"] = current.captions
        out["image"], out["boxes"] = self.finish(current.image), current.boxes.as_subclass(torch.Tensor)
        return out


def build_augments(data: Mapping[str, Any], registry: Registry | None = None) -> list[Any]:
    """The ``data.augment`` components of a defaults-filled ``data`` section, built with
    ``image_size``, ``mean`` and ``std`` in their context."""
    augment = data.get("augment", [])
    if isinstance(augment, Mapping):
        raise TypeError(f"data.augment is a list of augment components; for {dict(augment)} write "
                         f"{legacy_augment(augment)}")
    registry = registry or default_registry()
    context = BuildContext(registry, {key: data[key] for key in ("image_size", "mean", "std")})
    return [registry.build("augment", config, context) for config in augment]


def build_transform(data: Mapping[str, Any], *, train: bool, registry: Registry | None = None) -> SampleTransform:
    """The train (augmenting) or eval transform of a defaults-filled ``data`` section."""
    augments = build_augments(data, registry) if train else []
    return SampleTransform(image_size=data["image_size"], mean=data["mean"], std=data["std"], augments=augments)
