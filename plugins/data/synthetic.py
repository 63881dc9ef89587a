"""``synthetic_shapes``: a download-free image-caption dataset with learnable structure.

Each sample shows one or more coloured shapes (circle, square, triangle) placed in
quadrants or halves of a plain background, with captions that name each shape's colour,
kind and position, and the pixel box of each shape. Captions are therefore predictable
from the image (retrieval beats chance, MLM can fill in colours and positions, masked
patches can be inferred from the caption), so losses fall for a reason in smoke runs.

Everything is a pure function of ``(seed, split, index)`` through a numpy ``Generator``,
so any worker can produce any sample and two processes always agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
from PIL import Image, ImageDraw
from torch.utils.data import Dataset

from framework.api import ComponentSpec

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 180, 60),
    "blue": (50, 80, 220),
    "yellow": (235, 215, 40),
    "purple": (150, 60, 190),
    "orange": (245, 140, 30),
}
SHAPES = ("circle", "square", "triangle")
BACKGROUNDS = ((20, 20, 20), (90, 90, 90), (235, 235, 235))

# Regions as (name, x0, y0, x1, y1) in units of the image side. A layout is a set of
# disjoint regions; a scene with k shapes uses a layout with at least k regions.
QUADRANTS = (("top left", 0, 0, .5, .5), ("top right", .5, 0, 1, .5),
             ("bottom left", 0, .5, .5, 1), ("bottom right", .5, .5, 1, 1))
VERTICAL = (("top", 0, 0, 1, .5), ("bottom", 0, .5, 1, 1))
HORIZONTAL = (("left", 0, 0, .5, 1), ("right", .5, 0, 1, 1))
CENTRE = (("center", .2, .2, .8, .8),)
LAYOUTS = (QUADRANTS, VERTICAL, HORIZONTAL, CENTRE)

SPLIT_STREAMS = {"train": 0, "eval": 1}
"""Each split draws from its own seed stream, so train and eval samples never coincide."""


@dataclass(frozen=True)
class Shape:
    """One drawn shape: its class names, where it is described to be and its pixel box."""

    kind: str
    colour: str
    region: str
    box: tuple[int, int, int, int]

    def phrase(self) -> str:
        preposition = ("on the" if self.region in ("left", "right")
                       else "in the" if self.region == "center" else "at the")
        article = "an" if self.colour[0] in "aeiou" else "a"
        return f"{article} {self.colour} {self.kind} {preposition} {self.region}"


class SyntheticShapes(Dataset):
    """Coloured shapes on a plain background with position-describing captions.

    ``ds[i]`` returns ``{"image": PIL RGB image, "captions": [str, ...], "boxes":
    [[x0, y0, x1, y1], ...], "label": int}``. ``label`` indexes ``label_names`` ("red
    circle", ...) and names the first shape of the scene, so with ``max_shapes=1`` it is
    a clean zero-shot classification target.
    """

    label_names: list[str] = [f"{c} {s}" for c in COLOURS for s in SHAPES]

    def __init__(self, *, samples: int, image_size: int, seed: int, max_shapes: int, split: str) -> None:
        if split not in SPLIT_STREAMS:
            raise ValueError(f"synthetic_shapes: unknown split '{split}'; use one of {sorted(SPLIT_STREAMS)}")
        self.samples, self.image_size, self.seed, self.max_shapes = samples, image_size, seed, max_shapes
        self.split = split

    def __len__(self) -> int:
        return self.samples

    def _rng(self, index: int) -> np.random.Generator:
        if not 0 <= index < self.samples:
            raise IndexError(f"synthetic_shapes index {index} out of range [0, {self.samples})")
        return np.random.default_rng([self.seed, SPLIT_STREAMS[self.split], index])

    def scene(self, index: int) -> tuple[list[Shape], np.random.Generator]:
        """The shapes of sample ``index`` and the generator positioned after drawing them."""
        rng = self._rng(index)
        count = int(rng.integers(1, self.max_shapes + 1))
        layouts = [layout for layout in LAYOUTS if len(layout) >= count]
        layout = layouts[int(rng.integers(len(layouts)))]
        regions = rng.permutation(len(layout))[:count]
        side = self.image_size
        shapes = []
        for r in regions:
            name, x0, y0, x1, y1 = layout[r]
            cell = min(x1 - x0, y1 - y0) * side
            size = cell * rng.uniform(0.45, 0.8)  # shape side in pixels, always inside its cell
            cx = (x0 + x1) / 2 * side + rng.uniform(-1, 1) * ((x1 - x0) * side - size) / 2
            cy = (y0 + y1) / 2 * side + rng.uniform(-1, 1) * ((y1 - y0) * side - size) / 2
            box = (int(cx - size / 2), int(cy - size / 2), int(cx + size / 2), int(cy + size / 2))
            shapes.append(Shape(SHAPES[int(rng.integers(len(SHAPES)))],
                                list(COLOURS)[int(rng.integers(len(COLOURS)))], name, box))
        return shapes, rng

    @staticmethod
    def captions_of(shapes: list[Shape]) -> list[str]:
        """Several phrasings of the same scene (like COCO's five captions per image)."""
        phrases = [s.phrase() for s in shapes]
        captions = [
            " and ".join(phrases),
            " and ".join(reversed(phrases)),
            "an image with " + " and ".join(phrases),
            "there is " + ", ".join(phrases),
        ]
        return list(dict.fromkeys(captions))  # one shape: the first two coincide

    def iter_captions(self) -> Iterator[str]:
        """Every caption of every sample without drawing images (for tokenizer training)."""
        for i in range(self.samples):
            yield from self.captions_of(self.scene(i)[0])

    def __getitem__(self, index: int) -> dict[str, Any]:
        shapes, rng = self.scene(index)
        background = BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))]
        image = Image.new("RGB", (self.image_size, self.image_size), background)
        draw = ImageDraw.Draw(image)
        for s in shapes:
            x0, y0, x1, y1 = s.box
            fill = COLOURS[s.colour]
            if s.kind == "circle":
                draw.ellipse(s.box, fill=fill)
            elif s.kind == "square":
                draw.rectangle(s.box, fill=fill)
            else:
                draw.polygon([((x0 + x1) / 2, y0), (x1, y1), (x0, y1)], fill=fill)
        first = shapes[0]
        return {
            "image": image,
            "captions": self.captions_of(shapes),
            "boxes": [list(s.box) for s in shapes],
            "label": self.label_names.index(f"{first.colour} {first.kind}"),
        }


def synthetic_shapes(*, samples: int, image_size: int | None, seed: int, max_shapes: int, split: str | None,
                     context: Any = None) -> SyntheticShapes:
    """Factory: ``image_size`` and ``split`` fall back to the recipe's (via the context)."""
    size = image_size or (context.get("image_size") if context is not None else None) or 64
    split = split or (context.get("split") if context is not None else None) or "train"
    return SyntheticShapes(samples=samples, image_size=size, seed=seed, max_shapes=max_shapes, split=split)


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "samples": {"type": "integer", "minimum": 1, "default": 2048, "description": "Number of samples."},
        "image_size": {"type": ["integer", "null"], "minimum": 8, "default": None,
                       "description": "Side of the drawn image in pixels (null: the recipe's data.image_size, or 64)."},
        "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Seed of the scenes."},
        "max_shapes": {"type": "integer", "minimum": 1, "maximum": 4, "default": 2,
                       "description": "Each image shows between 1 and this many shapes."},
        "split": {"enum": ["train", "eval", None], "default": None,
                  "description": "Seed stream: train and eval never share a sample (null: the split being built)."},
    },
}

COMPONENTS = [
    ComponentSpec("dataset", "synthetic_shapes", synthetic_shapes, SCHEMA,
                  "Coloured shapes at described positions, with boxes; deterministic, no download."),
]
