"""``mixture``: a weighted mixture of other sources (e.g. paired COCO + M3AE's unpaired text).

An epoch of ``samples`` positions gives source ``k`` a quota of ``samples * w_k`` positions
(``w_k = weights[k] / sum(weights)``): its integer part, plus one with probability equal
to its fractional part (systematic sampling, seeded by ``(seed, epoch)``), so every epoch
holds exactly ``samples`` positions and each source's expected share is exactly ``w_k``.
The positions of an epoch are shuffled over sources by a ``(seed, epoch)`` permutation.

Each source is read without replacement: its draws, counted over all epochs, walk a
stream made of fresh permutations of that source (one per pass, seeded by
``(seed, k, pass)``), so over epochs every item of a source is seen equally often (to
within one) and a source is seen in proportion to its weight. Everything is a pure
function of ``(seed, epoch, index)``: the mixture is map-style, resumable and identical
across workers and ranks. The epoch reaches it through :func:`framework.data.samples.read_sample`.
"""

from __future__ import annotations

from typing import Any, Iterator

import numpy as np
from torch.utils.data import Dataset

from framework.api import ComponentSpec, dataset_captions, read_sample


class Mixture(Dataset):
    """``samples`` draws per epoch over ``sources`` with the given ``weights``."""

    def __init__(self, sources: list[Dataset], weights: list[float], *, samples: int, seed: int) -> None:
        if len(weights) != len(sources):
            raise ValueError(f"mixture has {len(sources)} sources but {len(weights)} weights; give one weight each")
        total = float(sum(weights))
        if total <= 0:
            raise ValueError("mixture weights must not all be zero")
        empty = [k for k, (s, w) in enumerate(zip(sources, weights)) if w > 0 and len(s) == 0]
        if empty:
            raise ValueError(f"mixture sources {empty} are empty but have a positive weight")
        self.sources, self.samples, self.seed = sources, samples, seed
        self.share = np.asarray(weights, dtype=np.float64) / total  # [K]
        self._quotas: list[np.ndarray] = []  # [K] positions per source, for epochs 0, 1, ...
        self._drawn: list[np.ndarray] = [np.zeros(len(sources), dtype=np.int64)]  # [K] draws before each epoch
        self._epoch_order: tuple[int, np.ndarray] | None = None  # (epoch, [S] permutation)
        self._passes: dict[tuple[int, int], np.ndarray] = {}  # (source, pass) -> permutation

    def __len__(self) -> int:
        return self.samples

    def quota(self, epoch: int) -> np.ndarray:
        """Positions [K] each source holds in ``epoch``; they sum to ``samples``."""
        while len(self._quotas) <= epoch:
            e = len(self._quotas)
            exact = self.samples * self.share  # [K]
            base = np.floor(exact).astype(np.int64)
            frac = exact - base  # inclusion probability of one extra position, in [0,1)
            extra = self.samples - int(base.sum())  # = sum(frac) up to rounding
            counts = base.copy()
            if extra > 0:
                edges = np.cumsum(frac) * (extra / frac.sum())  # rescaled so the last edge is `extra`
                u = np.random.default_rng([self.seed, e, 1]).random()
                points = u + np.arange(extra)  # one point per unit: each source is hit at most once
                counts += np.diff(np.searchsorted(points, edges, side="left"), prepend=0)
            self._quotas.append(counts)
            self._drawn.append(self._drawn[-1] + counts)
        return self._quotas[epoch]

    def _order(self, epoch: int) -> np.ndarray:
        """The shuffle [S] of ``epoch``: position ``index`` holds slot ``order[index]`` of the
        source-sorted layout (source 0's quota first, then source 1's, ...)."""
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            order = np.random.default_rng([self.seed, epoch, 0]).permutation(self.samples)
            self._epoch_order = (epoch, order)
        return self._epoch_order[1]

    def _item(self, source: int, draw: int) -> int:
        """Item of ``source`` at its ``draw``-th read over all epochs (one permutation per pass)."""
        size = len(self.sources[source])
        walk, at = divmod(draw, size)
        key = (source, walk)
        if key not in self._passes:
            if len(self._passes) > 2 * len(self.sources):  # keep only the passes in use
                self._passes.clear()
            self._passes[key] = np.random.default_rng([self.seed, source, walk, 2]).permutation(size)
        return int(self._passes[key][at])

    def locate(self, index: int, epoch: int = 0) -> tuple[int, int]:
        """(source, index in that source) of mixture sample ``index`` in ``epoch``."""
        if not 0 <= index < self.samples:
            raise IndexError(f"mixture index {index} out of range [0, {self.samples})")
        if epoch < 0:
            raise IndexError(f"mixture epoch {epoch} is negative")
        quota = self.quota(epoch)
        starts = np.cumsum(quota) - quota  # [K] first slot of each source
        slot = int(self._order(epoch)[index])
        source = int(np.searchsorted(starts + quota, slot, side="right"))
        earlier = int(self._drawn[epoch][source])  # reads of this source in the epochs before
        return source, self._item(source, earlier + slot - int(starts[source]))

    def describe(self, index: int, epoch: int = 0) -> str:
        k, i = self.locate(index, epoch)
        inner = self.sources[k].describe(i) if hasattr(self.sources[k], "describe") else f"sample {i}"
        return f"source {k}: {inner}"

    def iter_captions(self) -> Iterator[str]:
        for source in self.sources:
            yield from dataset_captions(source)

    def at_epoch(self, epoch: int, index: int) -> dict[str, Any]:
        """Sample ``index`` of epoch ``epoch`` (what training reads)."""
        k, i = self.locate(index, epoch)
        return read_sample(self.sources[k], epoch, i)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return self.at_epoch(0, index)


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
                    "description": "Relative sampling weight per source (null: equal). Each epoch gives source k "
                                   "samples * weight_k / sum(weights) positions (rounded up or down at random, "
                                   "exact in expectation); each source is read without replacement over epochs."},
        "samples": {"type": ["integer", "null"], "minimum": 1, "default": None,
                    "description": "Length of an epoch of the mixture (null: the sources' total length)."},
        "seed": {"type": "integer", "minimum": 0, "default": 0,
                 "description": "Seed of the per-epoch quotas and order and of each source's permutations."},
    },
}

COMPONENTS = [ComponentSpec("dataset", "mixture", mixture, SCHEMA, "Weighted mixture of other dataset sources.")]
