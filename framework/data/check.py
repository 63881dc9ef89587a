"""Reading a whole corpus before training on it: what `framework data check RECIPE` reports.

Every sample of each source of ``data.train`` (and ``data.eval`` when given) is read with
the checks training applies (:func:`framework.data.samples.check_sample`), in DataLoader
workers; a ``mixture`` is checked source by source, whole, rather than through its draws.
A problem is named by its place (``manifest.jsonl:7`` for a line-per-sample source, else
the source's ``describe(i)``) and its kind:

* ``missing file``: an image (or other file) a sample names does not exist;
* ``unreadable image``: it exists but cannot be decoded (corrupt, truncated, not an image);
* ``bad JSON line``: a manifest line is not JSON;
* ``bad record``: a line or record lacks what a sample needs;
* ``empty captions``: every caption of a paired sample is blank;
* ``unusable sample``: any other read error.

Beside problems it gathers image sizes and caption lengths (characters here; tokens by the
recipe's tokenizer in :func:`caption_token_stats`, with how many ``max_text_len`` truncates).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from torch.utils.data import DataLoader, Dataset

from framework.data.samples import READ_ERRORS, BadSampleError, check_sample, describe

KINDS = ("missing file", "unreadable image", "bad JSON line", "bad record", "empty captions", "unusable sample")


@dataclass(frozen=True)
class Problem:
    """One unusable sample: where it is, what kind of problem, the reader's message."""

    where: str
    kind: str
    message: str

    def format(self) -> str:
        return f"{self.where}: {self.kind}: {self.message}"


@dataclass
class SourceReport:
    """What reading one source found."""

    name: str
    samples: int = 0
    problems: list[Problem] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) of each image read
    captions: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def bad(self) -> int:
        return len(self.problems)

    def kinds(self) -> Counter:
        return Counter(p.kind for p in self.problems)


def classify(exc: BaseException) -> str:
    """The problem kind of a read error (see the module docstring)."""
    if isinstance(exc, FileNotFoundError):
        return "missing file"
    if isinstance(exc, (OSError, SyntaxError)):  # PIL: UnidentifiedImageError is an OSError, some PNGs SyntaxError
        return "unreadable image"
    if isinstance(exc.__cause__, json.JSONDecodeError) or isinstance(exc, json.JSONDecodeError):
        return "bad JSON line"
    if isinstance(exc, BadSampleError):
        return "empty captions" if "captions are empty" in str(exc) else "bad record"
    return "unusable sample"


def place(dataset: Any, index: int) -> str:
    """``file:line`` for a source read line by line (a manifest), else its name of the sample."""
    path, lines = getattr(dataset, "path", None), getattr(dataset, "lines", None)
    if path is not None and isinstance(lines, list):
        return f"{path}:{index + 1}"
    return describe(dataset, index)


def image_size(image: Any) -> tuple[int, int] | None:
    """(width, height) of a PIL image or a [C,H,W] tensor/array; ``None`` for no image."""
    if image is None:
        return None
    if hasattr(image, "size") and isinstance(image.size, tuple):
        return int(image.size[0]), int(image.size[1])
    shape = getattr(image, "shape", None)
    return (int(shape[-1]), int(shape[-2])) if shape is not None and len(shape) >= 2 else None


def inspect_sample(sample: Mapping[str, Any]) -> dict[str, Any]:
    """What the report keeps of a readable sample: its image size and captions."""
    return {"size": image_size(sample.get("image")),
            "captions": [c for c in sample.get("captions") or [] if isinstance(c, str)]}


class CheckedSamples(Dataset):
    """Sample ``i`` of a map-style source read and checked, as a small picklable record."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            sample = self.dataset[index]
            check_sample(sample)
        except READ_ERRORS as exc:
            return {"problem": Problem(place(self.dataset, index), classify(exc), f"{type(exc).__name__}: {exc}")}
        return inspect_sample(sample)


def _as_list(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return records


def read_map_source(dataset: Dataset, *, workers: int, batch: int = 32) -> Iterator[dict[str, Any]]:
    """The check record of every sample of ``dataset``, in order, read by ``workers`` processes."""
    loader = DataLoader(CheckedSamples(dataset), batch_size=batch, num_workers=workers, collate_fn=_as_list)
    for records in loader:
        yield from records


def read_stream_source(dataset: Any) -> Iterator[dict[str, Any]]:
    """One pass over a streaming source that lists its ``shards`` and can ``decode`` a raw
    record (``webdataset``): each shard read once, in order."""
    import webdataset as wds

    errors: list[str] = []

    def keep_going(exc: Exception) -> bool:
        errors.append(f"{type(exc).__name__}: {exc}")
        return True

    for raw in wds.tarfile_samples([{"url": url} for url in dataset.shards], handler=keep_going):
        while errors:
            yield {"problem": Problem("shard", "unusable sample", errors.pop(0))}
        where = f"{raw.get('__url__', '?')}:{raw.get('__key__', '?')}"
        try:
            sample = dataset.decode(raw)
            check_sample(sample)
        except READ_ERRORS as exc:
            yield {"problem": Problem(where, classify(exc), f"{type(exc).__name__}: {exc}")}
            continue
        yield inspect_sample(sample)
    for error in errors:
        yield {"problem": Problem("shard", "unusable sample", error)}


def leaf_sources(name: str, dataset: Any, config: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """``(name, source)`` of every source to read: a source that mixes others (it has
    ``sources``) is replaced by them, each named ``<name>.sources[k]``."""
    inner = getattr(dataset, "sources", None)
    if isinstance(inner, (list, tuple)) and inner:
        configs = config.get("sources") if isinstance(config.get("sources"), list) else [{}] * len(inner)
        return [leaf for k, (source, cfg) in enumerate(zip(inner, configs))
                for leaf in leaf_sources(f"{name}.sources[{k}]", source, cfg if isinstance(cfg, Mapping) else {})]
    label = f"{name} ({config['type']})" if "type" in config else name
    return [(label, dataset)]


def check_source(name: str, dataset: Any, *, workers: int,
                 progress: Callable[[int], None] | None = None) -> SourceReport:
    """Read every sample of one source; ``progress(n)`` after each ``n`` samples."""
    report = SourceReport(name)
    if hasattr(dataset, "shards") and hasattr(dataset, "decode"):
        records = read_stream_source(dataset)
    elif hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__"):
        records = read_map_source(dataset, workers=workers)
    else:
        report.note = "a streaming source without a one-pass reader (shards + decode): not read"
        return report
    for record in records:
        report.samples += 1
        if "problem" in record:
            report.problems.append(record["problem"])
        else:
            if record["size"] is not None:
                report.sizes.append(record["size"])
            report.captions.extend(record["captions"])
        if progress is not None:
            progress(1)
    return report


def spread(values: Sequence[float]) -> str:
    """``min..max (median m, p95 p)`` of ``values``."""
    a = np.asarray(values, dtype=np.float64)
    return f"{a.min():g}..{a.max():g} (median {np.median(a):g}, p95 {np.percentile(a, 95):g})"


def caption_token_stats(captions: Sequence[str], tokenizer: Any, max_text_len: int,
                        chunk: int = 4096) -> tuple[list[int], int]:
    """Token counts (special tokens included, as the collator counts) of ``captions`` and
    how many exceed ``max_text_len`` (the collator truncates those)."""
    lengths: list[int] = []
    for i in range(0, len(captions), chunk):
        lengths += [len(ids) for ids in tokenizer(list(captions[i:i + chunk]), add_special_tokens=True)["input_ids"]]
    return lengths, sum(n > max_text_len for n in lengths)
