"""Reading samples safely: bad ones are skipped and counted, never crash a run silently.

A *bad* sample is one whose source raises a read error (missing file, corrupt or
truncated image, unreadable annotation: ``OSError``, ``ValueError`` or
:class:`BadSampleError`) or that has nothing to train on (a paired sample whose captions
are all empty, or a sample with neither image nor text). :class:`SampleLoader` replaces a
bad sample by the next good index so every batch keeps its size (ranks must agree on
shapes for cross-rank gathers), and reports each skipped sample by name in the batch;
:class:`DataHealth` counts them and stops the run, naming the last one, when their
fraction passes ``data.max_bad_fraction``.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Mapping

import numpy as np
import torch
from torch.utils.data import Dataset

READ_ERRORS = (OSError, ValueError, SyntaxError)
"""What sources raise for unreadable data (PIL raises ``SyntaxError`` for some broken PNGs)."""


class BadSampleError(ValueError):
    """A source found sample data it cannot use; the message says which and why."""


class BadDataError(RuntimeError):
    """Too many samples were unreadable: the data (or its paths) need fixing."""


def sample_seed(seed: int, epoch: int, index: int, stream: int = 0) -> int:
    """A 63-bit seed for one sample's randomness in one epoch, independent of workers."""
    return int(np.random.SeedSequence([seed, epoch, index, stream]).generate_state(2, np.uint64)[0] >> np.uint64(1))


@contextmanager
def sample_rng(seed: int) -> Iterator[None]:
    """Seed the CPU generator (which augmentations draw from) for one sample and restore it
    afterwards. Only the CPU's: ``torch.manual_seed`` would also reseed every GPU generator
    the training step uses, and costs far more per sample."""
    with torch.random.fork_rng(devices=[]):
        torch.default_generator.manual_seed(seed)
        yield


def read_sample(dataset: Any, epoch: int, index: int) -> dict[str, Any]:
    """Sample ``index`` of ``dataset`` in ``epoch``.

    A source whose samples change with the epoch (e.g. ``mixture``, which walks its
    sources without replacement) defines ``at_epoch(epoch, index)``; any other source is
    read as ``dataset[index]``.
    """
    if hasattr(dataset, "at_epoch"):
        return dataset.at_epoch(epoch, index)
    return dataset[index]


def describe(dataset: Any, index: int, epoch: int = 0) -> str:
    """A sample's name for messages: the source's ``describe(i)`` (e.g. its file) or its index."""
    if not hasattr(dataset, "describe"):
        name = None
    elif hasattr(dataset, "at_epoch"):
        name = dataset.describe(index, epoch)
    else:
        name = dataset.describe(index)
    return f"sample {index}" + (f" ({name})" if name else "")


def dataset_captions(dataset: Any) -> Iterator[str]:
    """Every caption of ``dataset``: its ``iter_captions()`` when it has one (no image
    decoding), else the ``captions`` of each readable sample."""
    if hasattr(dataset, "iter_captions"):
        yield from dataset.iter_captions()
        return
    for i in range(len(dataset)):
        try:
            yield from dataset[i].get("captions") or []
        except READ_ERRORS:
            continue


def check_sample(sample: Mapping[str, Any]) -> None:
    """Raise :class:`BadSampleError` if ``sample`` has nothing usable."""
    captions = sample.get("captions")
    has_text = captions is not None
    if has_text and not any(isinstance(c, str) and c.strip() for c in captions):
        raise BadSampleError("its captions are empty")
    if sample.get("image") is None and not has_text:
        raise BadSampleError("it has neither an image nor captions")


class SampleLoader(Dataset):
    """Map-style view of a source keyed by ``(epoch, index)``: reads, checks, transforms.

    Returns the transformed sample plus ``index`` (the index actually read), ``epoch`` and
    ``bad`` (names and reasons of the samples skipped on the way). Augmentation randomness
    is seeded by ``(seed, epoch, index)`` inside a forked torch RNG, so results depend on
    neither the worker count nor where a resumed run restarted.
    """

    def __init__(self, dataset: Dataset, transform: Any, *, seed: int, max_consecutive_bad: int = 32) -> None:
        self.dataset, self.transform, self.seed = dataset, transform, seed
        self.max_consecutive_bad = max_consecutive_bad

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int] | int) -> dict[str, Any]:
        epoch, index = key if isinstance(key, tuple) else (0, key)
        bad: list[str] = []
        for attempt in range(self.max_consecutive_bad):
            i = (index + attempt) % len(self.dataset)
            try:
                sample = read_sample(self.dataset, epoch, i)
                check_sample(sample)
            except READ_ERRORS as exc:
                bad.append(f"{describe(self.dataset, i, epoch)}: {type(exc).__name__}: {exc}")
                continue
            with sample_rng(sample_seed(self.seed, epoch, i)):
                out = self.transform(sample)
            out.update(index=i, epoch=epoch, bad=bad)
            return out
        raise BadDataError(f"{self.max_consecutive_bad} consecutive samples from index {index} are unreadable; "
                           f"first ones: {bad[:3]}; check the data source")


class DataHealth:
    """Counts samples read and skipped; raises :class:`BadDataError` past the threshold.

    The fraction is only enforced once ``min_seen`` samples were read, so one early bad
    sample in a large corpus does not stop a run. ``summary()`` is for the end-of-run report.
    """

    def __init__(self, max_bad_fraction: float, min_seen: int = 256) -> None:
        self.max_bad_fraction, self.min_seen = max_bad_fraction, min_seen
        self.seen = self.bad = 0
        self.last_bad: list[str] = []

    @property
    def fraction(self) -> float:
        return self.bad / self.seen if self.seen else 0.0

    def record(self, good: int, bad: list[str]) -> None:
        """Count ``good`` usable samples and the named ``bad`` ones, then check the fraction."""
        self.seen += good + len(bad)
        self.bad += len(bad)
        self.last_bad = (self.last_bad + bad)[-5:]
        if self.seen >= self.min_seen and self.fraction > self.max_bad_fraction:
            raise BadDataError(
                f"{self.bad} of {self.seen} samples read so far were unusable ({self.fraction:.1%}), more than "
                f"data.max_bad_fraction={self.max_bad_fraction}; last: {self.last_bad[-1]}. Fix the data or raise "
                "data.max_bad_fraction")

    def summary(self) -> str:
        tail = f"; last: {'; '.join(self.last_bad)}" if self.bad else ""
        return f"{self.bad} of {self.seen} samples skipped as unusable ({self.fraction:.2%}){tail}"

    def state_dict(self) -> dict[str, Any]:
        return {"seen": self.seen, "bad": self.bad, "last_bad": list(self.last_bad)}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.seen, self.bad, self.last_bad = state["seen"], state["bad"], list(state["last_bad"])
