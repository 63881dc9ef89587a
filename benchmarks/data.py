"""Decoded + augmented images per second per DataLoader worker, to size ``data.num_workers``.

Times a recipe's training pipeline (JPEG decode, its ``data.augment``, normalise,
tokenise, collate) on synthetic JPEG files with one torch thread, i.e. one worker's
throughput, through :func:`framework.bench.loading.images_per_second`, the measurement
`framework bench` prints beside the step's demand. A step that consumes N images/s needs
about N / rate workers. Two pipelines: evaluation's resize only, and the recipe's augmentation.

    .venv/bin/python benchmarks/data.py [--recipe albef] [--images 256] [--source-size 256] [--image-size 224]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from pathlib import Path

import torch

from framework.bench.loading import images_per_second
from framework.commands.common import load_validated


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipe", default="albef", help="recipe whose data.augment is timed (default albef)")
    parser.add_argument("--images", type=int, default=256, help="images timed")
    parser.add_argument("--source-size", type=int, default=256, help="side of the JPEG files")
    parser.add_argument("--image-size", type=int, default=224, help="side after augmentation")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "data-cpu.json"))
    args = parser.parse_args()
    recipe, registry = load_validated(args.recipe, [f"data.image_size={args.image_size}"])
    results = {}
    empty = type(recipe["data"]["augment"])()  # no augmentation: resize only
    for name, augment in (("eval_resize", empty), (f"{args.recipe}_augment", recipe["data"]["augment"])):
        timed = {**recipe, "data": {**recipe["data"], "augment": augment}}
        measured = images_per_second(timed, registry, batch=args.batch, images=args.images,
                                     source_size=args.source_size)
        results[name] = {"images_per_s_per_worker": round(measured["images_per_s_per_worker"], 1), "augment": augment}
        print(f"{name}: {results[name]['images_per_s_per_worker']} images/s per worker")
    report = {"benchmark": "data", "source": f"JPEG {args.source_size}px", "image_size": args.image_size,
              "batch": args.batch, "torch_threads": 1, "cpu": platform.processor() or platform.machine(),
              "cpu_count": os.cpu_count(), "torch": torch.__version__, "results": results}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
