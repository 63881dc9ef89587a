"""Colour jitter applied with probability ``p`` (MoCo v2's ``RandomApply([ColorJitter(0.4,
0.4, 0.4, 0.1)], p=0.8)``, which TCL and VLMAE use): brightness, contrast, saturation and
hue factors drawn uniformly, the four changes in random order. Photometric: boxes stay."""

from __future__ import annotations

from torchvision.transforms import v2

from framework.api import AugmentSample, ComponentSpec


def _strength(default: float, what: str, maximum: float | None = None) -> dict:
    node = {"type": "number", "minimum": 0, "default": default,
            "description": f"{what}: the factor is drawn from [max(0, 1 - x), 1 + x]; 0 leaves it."}
    return node if maximum is None else {**node, "maximum": maximum}


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "brightness": _strength(0.4, "Brightness"),
        "contrast": _strength(0.4, "Contrast"),
        "saturation": _strength(0.4, "Saturation"),
        "hue": {"type": "number", "minimum": 0, "maximum": 0.5, "default": 0.1,
                "description": "Hue shift drawn from [-x, x] of a full turn (at most 0.5); 0 leaves it."},
        "p": {"type": "number", "minimum": 0, "maximum": 1, "default": 0.8,
              "description": "Probability of jittering a sample."},
    },
}


class ColourJitter:
    """torchvision's ``ColorJitter`` inside ``RandomApply``."""

    def __init__(self, *, brightness: float, contrast: float, saturation: float, hue: float, p: float) -> None:
        jitter = v2.ColorJitter(brightness=brightness, contrast=contrast, saturation=saturation, hue=hue)
        self.transform = v2.RandomApply([jitter], p=p)

    def __call__(self, sample: AugmentSample) -> AugmentSample:
        return sample._replace(image=self.transform(sample.image))


COMPONENTS = [
    ComponentSpec("augment", "colour_jitter", ColourJitter, SCHEMA,
                  "Random brightness, contrast, saturation and hue with probability p (MoCo v2 / TCL / VLMAE)."),
]
