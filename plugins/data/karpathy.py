"""``karpathy``: COCO and Flickr30k in the Karpathy split files every retrieval paper uses
(``dataset_coco.json``, ``dataset_flickr30k.json``; Karpathy & Fei-Fei 2015).

Each file is ``{"images": [{"filepath"?, "filename", "split", "sentences": [{"raw"}, ...]}]}``
with ``split`` one of ``train`` / ``restval`` / ``val`` / ``test``. Image paths are
``images/<filepath>/<filename>`` (COCO: ``val2014/COCO_val2014_...jpg``) or
``images/<filename>`` (Flickr30k). A recipe's training split is ``train`` + ``restval``
(ALBEF's 113k COCO images; Flickr30k has no restval) and its held-out split ``test``
(COCO 5k, Flickr30k 1k), unless ``splits`` names others.

Held-out samples are images with all their captions (retrieval ranks every caption).
Training samples are one per caption with ``per_caption`` (ALBEF's ``re_train_dataset``, so
an epoch is 566k COCO pairs) or one per image, the collator drawing a caption each epoch.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator, Optional

from torch.utils.data import Dataset

from framework.api import ComponentSpec

from .files import existing, read_image

KARPATHY_SPLITS = ("train", "restval", "val", "test")
DEFAULT_SPLITS = {"train": ["train", "restval"], "eval": ["test"]}


class KarpathySplit(Dataset):
    """Images (and captions) of the chosen Karpathy splits, in file order."""

    def __init__(self, *, annotations: str, images: str, splits: Optional[list[str]], per_caption: bool,
                 split: Optional[str], context: Any = None) -> None:
        recipe_split = split or (context.get("split") if context is not None else None) or "train"
        if recipe_split not in DEFAULT_SPLITS:
            raise ValueError(f"karpathy: unknown split '{recipe_split}'; use 'train' or 'eval'")
        chosen = list(splits or DEFAULT_SPLITS[recipe_split])
        path = existing(annotations, "Karpathy split file")
        data = json.loads(path.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError(f"'{annotations}' is not a Karpathy split file: it needs an 'images' list")
        self.root = existing(images, "image folder")
        self.items: list[tuple[str, list[str]]] = []
        for n, entry in enumerate(data["images"]):
            if entry.get("split") not in chosen:
                continue
            if "filename" not in entry or not isinstance(entry.get("sentences"), list):
                raise ValueError(f"{path}: images[{n}] needs 'filename' and a 'sentences' list")
            name = str(Path(entry.get("filepath", "")) / entry["filename"])
            captions = [s["raw"].strip() for s in entry["sentences"] if s.get("raw", "").strip()]
            if captions:
                self.items.append((name, captions))
        if not self.items:
            raise ValueError(f"'{annotations}' has no captioned images in split(s) {chosen}")
        self.splits = chosen
        # (item, caption) pairs when training per caption, else (item, None) per image
        self.index = ([(i, c) for i, (_, caps) in enumerate(self.items) for c in range(len(caps))]
                      if per_caption and recipe_split == "train" else [(i, None) for i in range(len(self.items))])

    def __len__(self) -> int:
        return len(self.index)

    def describe(self, index: int) -> str:
        return str(self.root / self.items[self.index[index][0]][0])

    def iter_captions(self) -> Iterator[str]:
        for _, captions in self.items:
            yield from captions

    def __getitem__(self, index: int) -> dict[str, Any]:
        item, caption = self.index[index]
        name, captions = self.items[item]
        return {"image": read_image(self.root / name), "boxes": [],
                "captions": list(captions) if caption is None else [captions[caption]]}


COMPONENTS = [ComponentSpec("dataset", "karpathy", KarpathySplit, {
    "type": "object", "additionalProperties": False, "required": ["annotations", "images"],
    "properties": {
        "annotations": {"type": "string", "x-framework-path": "file",
                        "description": "dataset_coco.json or dataset_flickr30k.json (Karpathy's split file)."},
        "images": {"type": "string", "x-framework-path": "dir",
                   "description": "Folder the file's images are under (COCO: holding train2014/ and val2014/; "
                                  "Flickr30k: the flickr30k-images folder)."},
        "splits": {"type": ["array", "null"], "items": {"enum": list(KARPATHY_SPLITS)}, "minItems": 1,
                   "uniqueItems": True, "default": None,
                   "description": "Karpathy splits to read (null: train + restval for training, test for evaluation)."},
        "per_caption": {"type": "boolean", "default": True,
                        "description": "Training: one sample per caption, as ALBEF's re_train_dataset (false: one per "
                                       "image, a caption drawn each epoch). Evaluation is always per image."},
        "split": {"enum": ["train", "eval", None], "default": None,
                  "description": "Which recipe split this source is (null: the one it is built for)."},
    },
}, "COCO / Flickr30k Karpathy split file (dataset_coco.json layout) + images.")]
