"""File-backed sources: a JSONL manifest, an image folder and a text file of sentences.

Every source returns ``{"image", "captions", "boxes"}`` samples and names each sample's
file in ``describe(i)``. Reading errors (a missing file, a corrupt or truncated image,
a broken manifest line) surface as ``OSError`` / ``ValueError`` from ``ds[i]``, so the
pipeline skips, counts and names the sample; construction only fails when the source
itself is unusable (no manifest, an empty folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from PIL import Image
from torch.utils.data import Dataset

from framework import ComponentSpec
from framework.data.samples import BadSampleError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def read_image(path: Path) -> Image.Image:
    """Decode ``path`` fully to RGB now, so truncated files fail here and not in a transform."""
    with Image.open(path) as image:
        return image.convert("RGB")


def as_captions(value: Any) -> list[str]:
    """A caption field (string or list of strings) as a list."""
    return [value] if isinstance(value, str) else list(value)


def existing(path: str, what: str) -> Path:
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise FileNotFoundError(f"{what} '{path}' does not exist; check the path in the recipe")
    return resolved


class Manifest(Dataset):
    """JSONL, one sample per line: ``{"image": "rel/path.jpg", "captions": [...] or "...",
    "boxes": [[x0, y0, x1, y1], ...]}``. Image paths are relative to ``image_root``
    (default: the manifest's folder). A line without ``image`` is text-only; one without
    captions is image-only."""

    def __init__(self, *, path: str, image_root: str | None) -> None:
        self.path = existing(path, "manifest")
        self.root = Path(image_root).expanduser() if image_root else self.path.parent
        self.lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        if not self.lines:
            raise ValueError(f"manifest '{path}' has no samples")

    def __len__(self) -> int:
        return len(self.lines)

    def record(self, index: int) -> dict[str, Any]:
        try:
            record = json.loads(self.lines[index])
        except json.JSONDecodeError as exc:
            raise BadSampleError(f"line {index + 1} of {self.path} is not JSON: {exc.msg}") from exc
        if not isinstance(record, dict) or ("image" not in record and "captions" not in record):
            raise BadSampleError(f"line {index + 1} of {self.path} needs an 'image' path and/or 'captions'")
        return record

    def describe(self, index: int) -> str:
        try:
            return str(self.record(index).get("image", f"line {index + 1}"))
        except BadSampleError:
            return f"line {index + 1}"

    def iter_captions(self) -> Iterator[str]:
        for i in range(len(self)):
            try:
                yield from as_captions(self.record(i).get("captions", []))
            except BadSampleError:
                continue

    def __getitem__(self, index: int) -> dict[str, Any]:
        record = self.record(index)
        sample: dict[str, Any] = {"image": read_image(self.root / record["image"]) if "image" in record else None,
                                  "boxes": record.get("boxes", [])}
        if "captions" in record:
            sample["captions"] = as_captions(record["captions"])
        return sample


class ImageFolder(Dataset):
    """Every image under a folder (recursively, sorted): an image-only source (M3AE's
    unpaired images)."""

    def __init__(self, *, path: str) -> None:
        root = existing(path, "image folder")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ValueError(f"image folder '{path}' has no {'/'.join(IMAGE_SUFFIXES)} files")

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, index: int) -> str:
        return str(self.files[index])

    def iter_captions(self) -> Iterator[str]:
        return iter(())

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": read_image(self.files[index]), "boxes": []}


class TextLines(Dataset):
    """A text-only source (M3AE's unpaired text): one sentence per line of a text file, or
    per ``{"text": ...}`` line of a ``.jsonl`` file."""

    def __init__(self, *, path: str) -> None:
        file = existing(path, "text file")
        lines = [line for line in file.read_text().splitlines() if line.strip()]
        self.texts = [json.loads(line)["text"] for line in lines] if file.suffix == ".jsonl" else lines
        if not self.texts:
            raise ValueError(f"text file '{path}' has no sentences")

    def __len__(self) -> int:
        return len(self.texts)

    def iter_captions(self) -> Iterator[str]:
        return iter(self.texts)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": None, "captions": [self.texts[index]], "boxes": []}


def _path(description: str) -> dict[str, Any]:
    return {"type": "string", "description": description}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


COMPONENTS = [
    ComponentSpec("dataset", "manifest", Manifest, _schema({
        "path": _path("JSONL manifest: one {image, captions, boxes?} object per line."),
        "image_root": {"type": ["string", "null"], "default": None,
                       "description": "Folder image paths are relative to (null: the manifest's folder)."},
    }, ["path"]), "JSONL manifest of image paths, captions and optional boxes."),
    ComponentSpec("dataset", "image_folder", ImageFolder, _schema({
        "path": _path("Folder searched recursively for images."),
    }, ["path"]), "Image-only source: every image under a folder."),
    ComponentSpec("dataset", "text_lines", TextLines, _schema({
        "path": _path("Text file with one sentence per line, or JSONL of {\"text\": ...}."),
    }, ["path"]), "Text-only source: one sentence per line."),
]
