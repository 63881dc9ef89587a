"""``mixture``: a weighted mixture of other sources (e.g. paired COCO + M3AE's unpaired text).

Sample ``i`` comes from source ``k`` with probability ``weights[k] / sum(weights)`` and is a
uniformly drawn sample of it; both draws are a pure function of ``(seed, i)``, so the
mixture is map-style, resumable and identical across workers and ranks.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
from torch.utils.data import Dataset

from framework import ComponentSpec
from framework.data.samples import dataset_captions


class Mixture(Dataset):
    """``samples`` draws over ``sources`` with the given ``weights``."""

    def __init__(self, sources: list[Dataset], weights: list[float], *, samples: int, seed: int) -> None:
        if len(weights) != len(sources):
            raise ValueError(f"mixture has {len(sources)} sources but {len(weights)} weights; give one weight each")
        total = float(sum(weights))
        if total <= 0:
            raise ValueError("mixture weights must not all be zero")
        self.sources, self.samples, self.seed = sources, samples, seed
        self.cumulative = np.cumsum(np.asarray(weights, dtype=np.float64) / total)

    def __len__(self) -> int:
        return self.samples

    def locate(self, index: int) -> tuple[int, int]:
        """(source, index in that source) of mixture sample ``index``."""
        if not 0 <= index < self.samples:
            raise IndexError(f"mixture index {index} out of range [0, {self.samples})")
        rng = np.random.default_rng([self.seed, index])
        source = min(int(np.searchsorted(self.cumulative, rng.random(), side="right")), len(self.sources) - 1)
        return source, int(rng.integers(len(self.sources[source])))

    def describe(self, index: int) -> str:
        k, i = self.locate(index)
        inner = self.sources[k].describe(i) if hasattr(self.sources[k], "describe") else f"sample {i}"
        return f"source {k}: {inner}"

    def iter_captions(self) -> Iterator[str]:
        for source in self.sources:
            yield from dataset_captions(source)

    def __getitem__(self, index: int) -> dict[str, Any]:
        k, i = self.locate(index)
        return self.sources[k][i]


def mixture(*, sources: list[dict[str, Any]], weights: list[float] | None, samples: int | None, seed: int,
            context: Any) -> Mixture:
    """Factory: builds each nested source with this context."""
    built = [context.build("dataset", config) for config in sources]
    return Mixture(built, weights or [1.0] * len(built), samples=samples or sum(len(s) for s in built), seed=seed)


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["sources"],
    "properties": {
        "sources": {"type": "array", "minItems": 1, "items": {"x-framework-kind": "dataset"},
                    "description": "The mixed sources (each a dataset component)."},
        "weights": {"type": ["array", "null"], "items": {"type": "number", "minimum": 0}, "default": None,
                    "description": "Relative sampling weight per source (null: equal)."},
        "samples": {"type": ["integer", "null"], "minimum": 1, "default": None,
                    "description": "Length of an epoch of the mixture (null: the sources' total length)."},
        "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Seed of the source draws."},
    },
}

COMPONENTS = [ComponentSpec("dataset", "mixture", mixture, SCHEMA, "Weighted mixture of other dataset sources.")]
