"""Can loading keep up? Decoded-and-augmented images/s of one DataLoader worker, at a recipe's shapes.

Writes JPEG files of synthetic shapes (``source_size`` px, default the paper pipelines'
8/7 of the crop: 256 px for 224) and a manifest into a temporary folder, then runs the
recipe's own training pipeline over them (JPEG decode, the recipe's ``data.augment``,
``image_size``, normalisation, tokenisation to ``max_text_len``, collate) in the calling
process with one torch thread: what one worker process (``data.num_workers``) delivers.
A step consuming N samples/s needs about N / rate workers. The tokenizer is a WordPiece
learnt from the synthetic captions, so no pretrained files are needed; tokenising is a
small part of a sample's cost beside the JPEG decode and augmentation.
"""

from __future__ import annotations

import copy
import json
import math
import tempfile
import time
from collections.abc import Mapping
from itertools import islice
from pathlib import Path
from typing import Any

import torch

from framework import data as data_lib
from framework.registry import Registry


def source_side(image_size: int) -> int:
    """Side of the stored JPEGs: 8/7 of the crop (256 px for a 224 px crop), as ImageNet-style sets."""
    return max(image_size, round(image_size * 8 / 7))


def loading_recipe(recipe: Mapping[str, Any], manifest: Path) -> dict[str, Any]:
    """``recipe``'s data settings (augment, image_size, max_text_len, normalisation) over
    ``manifest``, with a WordPiece tokenizer learnt from its captions and no workers."""
    out = copy.deepcopy(dict(recipe))
    out["data"] = {**out["data"], "train": {"type": "manifest", "path": str(manifest)},
                   "tokenizer": {"type": "wordpiece_from_data"}, "num_workers": 0}
    return out


def images_per_second(recipe: Mapping[str, Any], registry: Registry, *, batch: int = 32, images: int = 256,
                      source_size: int | None = None, seed: int = 0) -> dict[str, Any]:
    """Images/s one loader worker decodes and augments for ``recipe``'s training pipeline
    (one warm-up batch, then ``images`` timed, rounded up to whole batches)."""
    from framework_plugins.data.synthetic import SyntheticShapes

    image_size = recipe["data"]["image_size"]
    side = source_size or source_side(image_size)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # what a DataLoader worker process runs with
    try:
        with tempfile.TemporaryDirectory(prefix="framework-loading-") as tmp:
            shapes = SyntheticShapes(samples=64, image_size=side, seed=seed, max_shapes=2, split="train")
            lines = []
            for i in range(len(shapes)):
                sample = shapes[i]
                sample["image"].save(Path(tmp) / f"{i}.jpg", quality=90)
                lines.append(json.dumps({"image": f"{i}.jpg", "captions": sample["captions"]}))
            manifest = Path(tmp) / "train.jsonl"
            manifest.write_text("\n".join(lines) + "\n")
            timed = loading_recipe(recipe, manifest)
            dataset = data_lib.build_dataset(timed, registry, split="train")
            tokenizer = data_lib.build_tokenizer(timed, registry, dataset)
            loader, sampler = data_lib.build_train_loader(timed, dataset, tokenizer, rank=0, world_size=1,
                                                          micro_batch=batch, seed=seed)
            stream = data_lib.iterate_forever(loader, sampler)
            next(stream)  # warm-up: first-use costs
            steps = max(1, math.ceil(images / batch))
            start = time.perf_counter()
            for _ in islice(stream, steps):
                pass
            seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(threads)
    return {"images_per_s_per_worker": steps * batch / seconds, "source": f"JPEG {side} px",
            "image_size": image_size, "augment": recipe["data"].get("augment")}


def workers_needed(samples_per_s: float, per_worker: float) -> int:
    """Loader workers whose combined rate meets a step's demand of ``samples_per_s``."""
    return max(1, math.ceil(samples_per_s / per_worker))


def keeps_up(loading: Mapping[str, Any], samples_per_s: float, num_workers: int) -> dict[str, Any]:
    """The step's demand next to the loader's supply with the recipe's ``data.num_workers``."""
    per_worker = loading["images_per_s_per_worker"]
    return {"demand_samples_per_s": samples_per_s, "workers_needed": workers_needed(samples_per_s, per_worker),
            "num_workers": num_workers, "supply_images_per_s": per_worker * max(1, num_workers)}
