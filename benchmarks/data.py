"""Decoded + augmented images per second per DataLoader worker, to size ``data.num_workers``.

Writes JPEG files from ``synthetic_shapes`` into a temporary folder, then times the
training pipeline (``manifest`` source: JPEG decode, RandomResizedCrop, flip,
RandAugment, normalise, tokenise, collate) in the main process (``num_workers=0``, i.e.
one worker's throughput, with one torch thread as in a worker process). A GPU step that consumes N images/s needs about N / rate workers.

    .venv/bin/python benchmarks/data.py [--images 256] [--source-size 256] [--image-size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from itertools import islice
from pathlib import Path

import torch
from framework_plugins.data.synthetic import SyntheticShapes

from framework.data import (
    build_dataset,
    build_tokenizer,
    build_train_loader,
    iterate_forever,
)
from framework.registry import default_registry

AUGMENT = [{"type": "random_resized_crop", "scale": [0.5, 1.0]}, {"type": "hflip", "p": 0.5},
           {"type": "randaugment", "num_ops": 2, "magnitude": 7}]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=256, help="images timed")
    parser.add_argument("--source-size", type=int, default=256, help="side of the JPEG files")
    parser.add_argument("--image-size", type=int, default=224, help="side after augmentation")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "data-cpu.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)  # what a DataLoader worker process runs with
    shapes = SyntheticShapes(samples=64, image_size=args.source_size, seed=0, max_shapes=2, split="train")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        lines = []
        for i in range(len(shapes)):
            sample = shapes[i]
            sample["image"].save(Path(tmp) / f"{i}.jpg", quality=90)
            lines.append(json.dumps({"image": f"{i}.jpg", "captions": sample["captions"], "boxes": sample["boxes"]}))
        (Path(tmp) / "m.jsonl").write_text("\n".join(lines))
        for name, augment in (("eval_resize", []), ("albef_augment", AUGMENT)):
            recipe = {"data": {"train": {"type": "manifest", "path": str(Path(tmp) / "m.jsonl")},
                               "tokenizer": {"type": "wordpiece_from_data"}, "image_size": args.image_size,
                               "max_text_len": 32, "augment": augment, "num_workers": 0}}
            registry = default_registry()
            dataset = build_dataset(recipe, registry)
            tokenizer = build_tokenizer(recipe, registry, dataset)
            loader, sampler = build_train_loader(recipe, dataset, tokenizer, rank=0, world_size=1,
                                                 micro_batch=args.batch, seed=0)
            stream = iterate_forever(loader, sampler)
            next(stream)  # warm-up
            steps = max(1, args.images // args.batch)
            start = time.perf_counter()
            for _ in islice(stream, steps):
                pass
            seconds = time.perf_counter() - start
            results[name] = {"images_per_s_per_worker": round(steps * args.batch / seconds, 1)}
            print(f"{name}: {results[name]['images_per_s_per_worker']} images/s per worker")
    report = {"benchmark": "data", "source": f"JPEG {args.source_size}px", "image_size": args.image_size,
              "batch": args.batch, "torch_threads": torch.get_num_threads(), "cpu": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
