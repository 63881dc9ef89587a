"""``webdataset``: streaming tar shards for corpora too large for a manifest.

Each shard is a tar of ``<key>.<ext>`` files grouped into samples by key (the webdataset
convention, read with the ``webdataset`` library): an image (``jpg``/``png``/...), a
caption (``txt``, or ``json`` with ``captions`` / ``caption``) and optionally ``boxes``
in that ``json``. Every epoch the shard list is shuffled by ``(seed, epoch)`` and split
first over ranks, then over DataLoader workers, so no two readers share a shard.
Unreadable shards and samples are yielded as ``{"error": ...}`` records, which the
pipeline counts as bad samples.
"""

from __future__ import annotations

import io
import json
from itertools import count
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import webdataset as wds
from braceexpand import braceexpand
from PIL import Image
from torch.utils.data import IterableDataset

from framework.api import ComponentSpec

IMAGE_EXTENSIONS = ("jpg", "jpeg", "png", "webp")


class WebDatasetShards(IterableDataset):
    """Streams samples from tar shards; see the module docstring for the layout."""

    def __init__(self, *, urls: list[str] | str) -> None:
        patterns = [urls] if isinstance(urls, str) else urls
        self.shards = sorted(url for pattern in patterns for url in braceexpand(pattern))
        missing = [s for s in self.shards if "://" not in s and not Path(s).exists()]
        if not self.shards or len(missing) == len(self.shards):
            raise FileNotFoundError(f"webdataset: no shard of {urls!r} exists; check the paths or brace pattern")

    def shards_for(self, *, epoch: int, seed: int, reader: int, readers: int) -> list[str]:
        """This reader's shards in ``epoch`` (reader = rank * workers + worker)."""
        order = np.random.default_rng([seed, epoch]).permutation(len(self.shards))
        mine = [self.shards[i] for i in order[reader::readers]]
        if not mine:
            raise ValueError(f"webdataset: {len(self.shards)} shards cannot feed {readers} readers (ranks x workers); "
                             "write at least one shard per reader or use fewer workers")
        return mine

    @staticmethod
    def decode(raw: dict[str, Any]) -> dict[str, Any]:
        """A sample from a raw key -> bytes record (raises on corrupt content)."""
        ext = next((e for e in IMAGE_EXTENSIONS if e in raw), None)
        sample: dict[str, Any] = {"image": None, "boxes": []}
        if ext is not None:
            with Image.open(io.BytesIO(raw[ext])) as image:
                sample["image"] = image.convert("RGB")
        meta = json.loads(raw["json"]) if "json" in raw else {}
        captions = WebDatasetShards.captions_of(raw)
        if captions:
            sample["captions"] = captions
        sample["boxes"] = meta.get("boxes", [])
        return sample

    @staticmethod
    def captions_of(raw: dict[str, Any]) -> list[str]:
        """The captions of a raw record (``txt`` member or ``caption(s)`` in its ``json``)."""
        if "txt" in raw:
            return [raw["txt"].decode("utf-8")]
        meta = json.loads(raw["json"]) if "json" in raw else {}
        value = meta.get("captions", meta.get("caption", []))
        return [value] if isinstance(value, str) else list(value)

    def iter_captions(self) -> Iterator[str]:
        """Every caption of every shard, one pass without decoding images (for tokenizers
        trained on the data; at corpus scale prefer a `pretrained` tokenizer)."""
        for raw in wds.tarfile_samples([{"url": url} for url in self.shards], handler=lambda exc: True):
            try:
                yield from self.captions_of(raw)
            except (ValueError, UnicodeDecodeError):
                continue

    def stream(self, *, seed: int, reader: int, readers: int) -> Iterator[dict[str, Any]]:
        """Samples of this reader forever, epoch after epoch; bad ones as ``{"error": str}``."""
        for epoch in count():
            errors: list[str] = []

            def keep_going(exc: Exception) -> bool:
                errors.append(f"{type(exc).__name__}: {exc}")
                return True

            sources = [{"url": url} for url in self.shards_for(epoch=epoch, seed=seed, reader=reader, readers=readers)]
            for raw in wds.tarfile_samples(sources, handler=keep_going):
                while errors:
                    yield {"error": errors.pop(0)}
                name = f"{raw.get('__url__', '?')}:{raw.get('__key__', '?')}"
                try:
                    yield {**self.decode(raw), "name": name}
                except (OSError, ValueError, SyntaxError) as exc:
                    yield {"error": f"{name}: {type(exc).__name__}: {exc}"}
            while errors:
                yield {"error": errors.pop(0)}

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return self.stream(seed=0, reader=0, readers=1)


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["urls"],
    "properties": {
        "urls": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}],
                 "description": "Shard paths or brace patterns, e.g. data/shard-{000..099}.tar."},
    },
}

COMPONENTS = [ComponentSpec("dataset", "webdataset", WebDatasetShards, SCHEMA,
                            "Streaming webdataset tar shards, split over ranks and workers.")]
