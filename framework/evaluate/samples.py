"""Held-out samples for evaluation: preprocessed images with *all* their captions and labels.

Training batches pair each image with one drawn caption; retrieval needs every caption of
every image (COCO has five), so evaluation reads samples with the same checks and eval
transform as :class:`framework.data.SampleLoader` but keeps the caption lists.

Unlike training, evaluation never stands a neighbour in for an unreadable sample (that
would count one image twice and shift recalls): each is left out, named in its batch's
``skipped`` and reported once on stderr when the pass ends.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any, Iterator, Mapping, Optional, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from framework.data import BadDataError, build_transform, data_config
from framework.data.samples import READ_ERRORS, check_sample, describe, sample_rng, sample_seed
from framework.distributed import is_main_process


@dataclass
class EvalBatch:
    """``images`` [B,3,S,S] normalised, ``captions`` per image, ``labels`` [B] or ``None``,
    ``index`` [B] (the source indices read) and ``skipped``: the samples of this batch's
    range left out as unreadable, each ``"sample i (file): Error: reason"``."""

    images: torch.Tensor
    captions: list[list[str]]
    labels: Optional[torch.Tensor]
    index: torch.Tensor
    skipped: list[str] = field(default_factory=list)


class EvalSamples(Dataset):
    """Sample ``i`` of ``dataset`` read, checked and transformed, or ``{"bad": reason}``
    when it cannot be used; never another sample in its place."""

    def __init__(self, dataset: Dataset, transform: Any) -> None:
        self.dataset, self.transform = dataset, transform

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        try:
            sample = self.dataset[index]
            check_sample(sample)
        except READ_ERRORS as exc:
            return {"bad": f"{describe(self.dataset, index)}: {type(exc).__name__}: {exc}", "index": index}
        with sample_rng(sample_seed(0, 0, index)):
            out = self.transform(sample)
        out["index"] = index
        return out


def _collate(samples: Sequence[dict[str, Any]]) -> EvalBatch:
    skipped = [s["bad"] for s in samples if "bad" in s]
    samples = [s for s in samples if "bad" not in s]
    if any(s.get("image") is None for s in samples):
        raise ValueError("evaluation needs an image in every sample; this source has text-only samples")
    has_label = bool(samples) and all(s.get("label") is not None for s in samples)
    return EvalBatch(
        images=torch.stack([s["image"] for s in samples]) if samples else torch.zeros(0),
        captions=[[c for c in s.get("captions") or [] if c and c.strip()] for s in samples],
        labels=torch.tensor([int(s["label"]) for s in samples]) if has_label else None,
        index=torch.tensor([int(s["index"]) for s in samples], dtype=torch.long),
        skipped=skipped,
    )


def eval_batches(recipe: Mapping[str, Any], dataset: Dataset, *, batch_size: int,
                 max_samples: Optional[int] = None) -> Iterator[EvalBatch]:
    """The first ``max_samples`` samples of ``dataset`` (all when ``None``), in order, unaugmented.

    Unreadable samples are left out (a batch may then be smaller; one with nothing left is
    not yielded) and reported on stderr at the end; :class:`framework.data.BadDataError`
    when none of them can be read."""
    cfg = data_config(recipe)
    count = len(dataset) if max_samples is None else min(max_samples, len(dataset))
    samples = EvalSamples(dataset, build_transform(cfg, train=False))
    loader = DataLoader(samples, batch_size=batch_size, sampler=list(range(count)), collate_fn=_collate,
                        num_workers=cfg["num_workers"])
    skipped: list[str] = []
    for batch in loader:
        skipped += batch.skipped
        if batch.index.numel():
            yield batch
    if skipped and len(skipped) == count:
        raise BadDataError(f"none of the {count} evaluation samples could be read; first: {skipped[0]}")
    if skipped and is_main_process():
        shown = "; ".join(skipped[:3]) + ("; ..." if len(skipped) > 3 else "")
        print(f"evaluation skipped {len(skipped)} of {count} samples that could not be read (scores cover the "
              f"other {count - len(skipped)}): {shown}", file=sys.stderr, flush=True)


def caption_pairs(captions: Sequence[Sequence[str]]) -> tuple[list[str], torch.Tensor]:
    """Flatten per-image caption lists: the captions and ``caption_image`` [M] (each one's image)."""
    flat = [c for group in captions for c in group]
    owner = torch.tensor([i for i, group in enumerate(captions) for _ in group], dtype=torch.long)
    return flat, owner
