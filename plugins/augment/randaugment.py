"""RandAugment (Cubuk et al. 2020): ``num_ops`` operations drawn from ``ops`` at strength
``magnitude``. The default op set is ALBEF's, which leaves out colour-changing operations
because captions name colours. torchvision's RandAugment cannot move boxes, so a sample
with boxes draws only from the photometric operations of the set."""

from __future__ import annotations

from collections.abc import Sequence

from torchvision.transforms import InterpolationMode, v2

from framework.api import AugmentSample, ComponentSpec

OPS = ("Identity", "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast",
       "Sharpness", "Posterize", "Solarize", "AutoContrast", "Equalize")
"""Every operation of torchvision's RandAugment."""
ALBEF_OPS = ("Identity", "AutoContrast", "Equalize", "Brightness", "Sharpness",
             "ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")
GEOMETRIC_OPS = ("ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate")

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "num_ops": {"type": "integer", "minimum": 1, "default": 2, "description": "Operations per image."},
        "magnitude": {"type": "integer", "minimum": 0, "maximum": 30, "default": 7,
                      "description": "Strength, 0-30 (ALBEF: 7)."},
        "ops": {"type": "array", "items": {"enum": list(OPS)}, "minItems": 1, "uniqueItems": True,
                "default": list(ALBEF_OPS),
                "description": "Operations to draw from (default ALBEF's colour-preserving set)."},
    },
}


class RestrictedRandAugment(v2.RandAugment):
    """torchvision RandAugment restricted to a set of operations."""

    def __init__(self, *, ops: Sequence[str], num_ops: int, magnitude: int) -> None:
        super().__init__(num_ops=num_ops, magnitude=magnitude, interpolation=InterpolationMode.BILINEAR)
        self._AUGMENTATION_SPACE = {k: v for k, v in v2.RandAugment._AUGMENTATION_SPACE.items() if k in ops}


class RandAugment:
    """RandAugment over ``ops``; over their photometric subset for samples with boxes."""

    def __init__(self, *, num_ops: int, magnitude: int, ops: Sequence[str]) -> None:
        self.ops = tuple(ops)
        photometric = tuple(op for op in self.ops if op not in GEOMETRIC_OPS)
        self.any = RestrictedRandAugment(ops=self.ops, num_ops=num_ops, magnitude=magnitude)
        self.boxed = (RestrictedRandAugment(ops=photometric, num_ops=num_ops, magnitude=magnitude)
                      if photometric else None)

    def __call__(self, sample: AugmentSample) -> AugmentSample:
        if not len(sample.boxes):
            return sample._replace(image=self.any(sample.image))
        return sample if self.boxed is None else sample._replace(image=self.boxed(sample.image))


COMPONENTS = [
    ComponentSpec("augment", "randaugment", RandAugment, SCHEMA,
                  "RandAugment over a chosen op set (default ALBEF's); photometric ops only for samples with boxes."),
]
