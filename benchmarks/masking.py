"""Time every registered masker at batch 256, 224 px (ViT-B/16 grid, 14x14) and 64-token captions.

Usage: ``python benchmarks/masking.py [--device cpu|cuda] [--repeats N]``; writes
``benchmarks/results/masking-<device>.json`` with the median and the fastest milliseconds
per call (the fastest is the better estimate on a CPU shared with other work).
Masks are drawn from a CPU generator, as in training, so the CUDA numbers include the
host-to-device copy of the noise.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from framework.registry import BuildContext, Registry
from framework_plugins import masking

BATCH, IMAGE, PATCH, TEXT_LEN, VOCAB = 256, 224, 16, 64, 30522
SPECIAL_IDS = [0, 100, 101, 102, 103]  # BERT: [PAD] [UNK] [CLS] [SEP] [MASK]


def caption_batch(device: str) -> dict[str, torch.Tensor]:
    """[CLS] words [SEP] padding, with real lengths spread over 8..62 tokens."""
    g = torch.Generator().manual_seed(0)
    lengths = torch.randint(8, TEXT_LEN - 1, (BATCH, 1), generator=g)
    pos = torch.arange(TEXT_LEN)[None, :]
    ids = torch.randint(1000, VOCAB, (BATCH, TEXT_LEN), generator=g)
    ids = torch.where(pos == 0, 101, torch.where(pos == lengths, 102, torch.where(pos > lengths, 0, ids)))
    special = (pos == 0) | (pos >= lengths)
    return {"input_ids": ids.to(device), "attention_mask": (pos <= lengths).long().to(device),
            "special_tokens_mask": special.long().to(device)}


def boxes(device: str) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    corners = torch.rand(BATCH, 4, 2, 2, generator=g) * IMAGE  # [B, M, 2 corners, xy]
    xy = torch.cat([corners.min(2).values, corners.max(2).values], dim=-1)  # [B, M, 4]
    return xy.to(device), (torch.rand(BATCH, 4, generator=g) < 0.7).to(device)


WARMUP = 10
"""Untimed calls first: the first few calls of a process are slow (thread pool and
allocator start-up), which would otherwise dominate the first masker's numbers."""


def time_ms(call, device: str, repeats: int) -> dict[str, float]:
    """Median and fastest wall time of ``call`` over ``repeats`` timed calls."""
    times = []
    for i in range(repeats + WARMUP):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        if device == "cuda":
            torch.cuda.synchronize()
        if i >= WARMUP:
            times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": statistics.median(times), "min_ms": min(times)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    registry = Registry()
    registry.register_plugin(masking, name="masking", distribution="framework")
    context = BuildContext(registry, {"vocab_size": VOCAB, "mask_token_id": 103, "special_token_ids": SPECIAL_IDS})
    grid = (IMAGE // PATCH, IMAGE // PATCH)
    box, box_mask = boxes(args.device)
    text = caption_batch(args.device)
    generator = torch.Generator().manual_seed(0)
    results = {}
    for spec in registry.specs("image_masking"):
        masker = context.build("image_masking", {"type": spec.name})
        results[f"image_masking/{spec.name}"] = time_ms(lambda: masker(
            batch_size=BATCH, grid=grid, patch_size=PATCH, generator=generator, device=args.device,
            boxes=box, box_mask=box_mask), args.device, args.repeats)
    for spec in registry.specs("text_masking"):
        masker = context.build("text_masking", {"type": spec.name})
        results[f"text_masking/{spec.name}"] = time_ms(lambda: masker(**text, generator=generator),
                                                         args.device, args.repeats)
    report = {
        "batch": BATCH, "image_size": IMAGE, "patch_size": PATCH, "text_len": TEXT_LEN, "device": args.device,
        "device_name": (torch.cuda.get_device_name() if args.device == "cuda"
                        else platform.processor() or platform.machine()),
        "torch": torch.__version__, "threads": torch.get_num_threads(), "repeats": args.repeats,
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"masking-{args.device}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
