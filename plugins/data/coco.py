"""Caption datasets in their published layouts: COCO captions and Flickr30k.

COCO: ``captions_{train,val}2017.json`` (``images`` with ``id`` / ``file_name`` and
``annotations`` with ``image_id`` / ``caption``) plus the image folder. Flickr30k:
``results_20130124.token`` lines ``<file>.jpg#<n>\\t<caption>`` plus the image folder.
Images without any caption are left out; the rest keep all their captions (5 each in
both corpora), of which the collator draws one per epoch.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterator

from torch.utils.data import Dataset

from framework.api import ComponentSpec

from .files import existing, read_image


class CaptionedImages(Dataset):
    """Images of a folder, each with its list of captions."""

    def __init__(self, root: Path, items: list[tuple[str, list[str]]]) -> None:
        if not items:
            raise ValueError(f"no captioned images found for image folder '{root}'")
        self.root, self.items = root, items

    def __len__(self) -> int:
        return len(self.items)

    def describe(self, index: int) -> str:
        return str(self.root / self.items[index][0])

    def iter_captions(self) -> Iterator[str]:
        for _, captions in self.items:
            yield from captions

    def __getitem__(self, index: int) -> dict[str, Any]:
        name, captions = self.items[index]
        return {"image": read_image(self.root / name), "captions": list(captions), "boxes": []}


def coco_captions(*, annotations: str, images: str) -> CaptionedImages:
    """COCO caption annotations, images in ``id`` order."""
    data = json.loads(existing(annotations, "COCO annotation file").read_text())
    if not {"images", "annotations"} <= set(data):
        raise ValueError(f"'{annotations}' is not a COCO captions file: it needs 'images' and 'annotations'")
    captions: dict[int, list[str]] = defaultdict(list)
    for ann in data["annotations"]:
        captions[ann["image_id"]].append(ann["caption"].strip())
    items = [(img["file_name"], captions[img["id"]]) for img in sorted(data["images"], key=lambda i: i["id"])
             if captions[img["id"]]]
    return CaptionedImages(existing(images, "COCO image folder"), items)


def flickr30k(*, captions: str, images: str) -> CaptionedImages:
    """Flickr30k ``.token`` file, images in order of first appearance."""
    grouped: dict[str, list[str]] = {}
    for n, line in enumerate(existing(captions, "Flickr30k caption file").read_text().splitlines(), 1):
        if not line.strip():
            continue
        key, sep, text = line.partition("\t")
        if not sep:
            raise ValueError(f"{captions}:{n}: expected '<image>#<n><TAB><caption>', got {line[:60]!r}")
        grouped.setdefault(key.split("#")[0], []).append(text.strip())
    return CaptionedImages(existing(images, "Flickr30k image folder"), list(grouped.items()))


def _folder_schema(file_key: str, file_doc: str) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": [file_key, "images"], "properties": {
        file_key: {"type": "string", "x-framework-path": "file", "description": file_doc},
        "images": {"type": "string", "x-framework-path": "dir",
                   "description": "Folder holding the image files the annotations name."},
    }}


COMPONENTS = [
    ComponentSpec("dataset", "coco_captions", coco_captions,
                  _folder_schema("annotations", "COCO captions_*.json file."), "COCO caption annotations + images."),
    ComponentSpec("dataset", "flickr30k", flickr30k,
                  _folder_schema("captions", "Flickr30k results_20130124.token file."),
                  "Flickr30k caption file + images."),
]
