"""Collating transformed samples into a :data:`framework.types.Batch`.

One caption per sample per epoch is chosen by a seeded draw on ``(seed, epoch, index)``,
so each epoch pairs an image with a possibly different caption (as ALBEF samples one of
COCO's five) while a resumed run sees exactly the same pairs.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from transformers import PreTrainedTokenizerBase

from framework.data.samples import sample_seed
from framework.types import Batch

CAPTION_STREAM = 1
"""Seed stream of the caption draw (stream 0 is the augmentation)."""


class Collator:
    """Stacks images, tokenises captions and pads boxes.

    Output keys: ``image`` [B,3,S,S] float (zeros where ``has_image`` is False),
    ``input_ids`` / ``attention_mask`` / ``special_tokens_mask`` [B,T] long (an empty
    caption, i.e. ``[CLS] [SEP]``, where ``has_text`` is False), ``boxes`` [B,M,4] float
    pixels with ``box_mask`` [B,M] bool (M = most boxes in the batch, at least 1),
    ``has_image`` / ``has_text`` [B] bool, ``index`` [B] long, and ``bad_samples``: a
    list of the skipped samples' names (not a tensor; ``iterate_forever`` removes it).
    When every sample is labelled, ``label`` [B] long; each field a source passes through
    in ``sample["fields"]`` becomes a key of its own: a tensor when the values stack
    (numbers, equal-length lists of numbers), else the list of values (``None`` where a
    sample lacks it).
    ``image_size`` is needed only for batches without any image.
    """

    def __init__(self, tokenizer: PreTrainedTokenizerBase, max_text_len: int, *, seed: int = 0,
                 image_size: int | None = None) -> None:
        self.tokenizer, self.max_text_len, self.seed, self.image_size = tokenizer, max_text_len, seed, image_size

    def pick_caption(self, sample: dict[str, Any]) -> str:
        captions = [c for c in sample.get("captions") or [] if c and c.strip()]
        if not captions:
            return ""
        draw = sample_seed(self.seed, sample.get("epoch", 0), sample.get("index", 0), CAPTION_STREAM)
        return captions[draw % len(captions)]

    def __call__(self, samples: Sequence[dict[str, Any]]) -> Batch:
        size = next((s["image"].shape for s in samples if s.get("image") is not None), None)
        if size is None:
            if self.image_size is None:
                raise ValueError("a batch without images needs Collator(image_size=...) to make placeholder images")
            size = (3, self.image_size, self.image_size)
        has_image = torch.tensor([s.get("image") is not None for s in samples])
        images = torch.stack([s["image"] if s.get("image") is not None else torch.zeros(size) for s in samples])
        texts = [self.pick_caption(s) for s in samples]
        tokens = self.tokenizer(texts, padding="max_length", truncation=True, max_length=self.max_text_len,
                                return_special_tokens_mask=True, return_tensors="pt")
        boxes = [torch.as_tensor(s.get("boxes", []), dtype=torch.float32).reshape(-1, 4) for s in samples]
        most = max(1, max(len(b) for b in boxes))
        padded = torch.zeros(len(samples), most, 4)  # [B,M,4]
        box_mask = torch.zeros(len(samples), most, dtype=torch.bool)  # [B,M]
        for row, b in enumerate(boxes):
            padded[row, : len(b)] = b
            box_mask[row, : len(b)] = True
        batch = {
            "image": images,
            "input_ids": tokens["input_ids"].long(),
            "attention_mask": tokens["attention_mask"].long(),
            "special_tokens_mask": tokens["special_tokens_mask"].long(),
            "boxes": padded,
            "box_mask": box_mask,
            "has_image": has_image,
            "has_text": torch.tensor([bool(t) for t in texts]),
            "index": torch.tensor([int(s.get("index", i)) for i, s in enumerate(samples)], dtype=torch.long),
            "bad_samples": [name for s in samples for name in s.get("bad", [])],
        }
        if all(s.get("label") is not None for s in samples):
            batch["label"] = torch.tensor([int(s["label"]) for s in samples], dtype=torch.long)
        batch.update(collate_fields(samples))
        return batch


def collate_fields(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Each declared field of ``samples``: stacked as a tensor when its values allow, else a list."""
    names = sorted({name for s in samples for name in s.get("fields") or {}})
    out: dict[str, Any] = {}
    for name in names:
        values = [(s.get("fields") or {}).get(name) for s in samples]
        try:
            out[name] = torch.as_tensor(values)
        except (TypeError, ValueError, RuntimeError):
            out[name] = values
    return out
