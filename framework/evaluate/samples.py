"""Held-out samples for evaluation: preprocessed images with *all* their captions and labels.

Training batches pair each image with one drawn caption; retrieval needs every caption of
every image (COCO has five), so evaluation reads samples through the same
:class:`framework.data.SampleLoader` and eval transform but keeps the caption lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from framework.data import SampleLoader, build_transform, data_config


@dataclass
class EvalBatch:
    """``images`` [B,3,S,S] normalised, ``captions`` per image, ``labels`` [B] or ``None``,
    ``index`` [B] (the source index actually read)."""

    images: torch.Tensor
    captions: list[list[str]]
    labels: Optional[torch.Tensor]
    index: torch.Tensor


def _collate(samples: Sequence[dict[str, Any]]) -> EvalBatch:
    if any(s.get("image") is None for s in samples):
        raise ValueError("evaluation needs an image in every sample; this source has text-only samples")
    has_label = all("label" in s for s in samples)
    return EvalBatch(
        images=torch.stack([s["image"] for s in samples]),
        captions=[[c for c in s.get("captions") or [] if c and c.strip()] for s in samples],
        labels=torch.tensor([int(s["label"]) for s in samples]) if has_label else None,
        index=torch.tensor([int(s["index"]) for s in samples]),
    )


def eval_batches(recipe: Mapping[str, Any], dataset: Dataset, *, batch_size: int,
                 max_samples: Optional[int] = None) -> Iterator[EvalBatch]:
    """The first ``max_samples`` samples of ``dataset`` (all when ``None``), in order, unaugmented."""
    cfg = data_config(recipe)
    count = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    samples = SampleLoader(dataset, build_transform(cfg, train=False), seed=0)
    loader = DataLoader(samples, batch_size=batch_size, sampler=list(range(count)), collate_fn=_collate,
                        num_workers=cfg["num_workers"])
    yield from loader


def caption_pairs(captions: Sequence[Sequence[str]]) -> tuple[list[str], torch.Tensor]:
    """Flatten per-image caption lists: the captions and ``caption_image`` [M] (each one's image)."""
    flat = [c for group in captions for c in group]
    owner = torch.tensor([i for i, group in enumerate(captions) for _ in group], dtype=torch.long)
    return flat, owner
