"""File-backed sources: a JSONL manifest, an image folder and a text file of sentences.

Every source returns ``{"image", "captions", "boxes"}`` samples and names each sample's
file in ``describe(i)``. Labelled sources add ``label`` (an integer class id) and name their
classes in ``label_names`` (what ``zero_shot`` prompts with); a manifest also passes the
fields a recipe declares through as ``fields`` (answers, a second image's path, ...).
Reading errors (a missing file, a corrupt or truncated image, a broken manifest line)
surface as ``OSError`` / ``ValueError`` from ``ds[i]``, so the pipeline skips, counts and
names the sample; construction only fails when the source itself is unusable (no
manifest, an empty folder).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

from PIL import Image
from torch.utils.data import Dataset

from framework.api import BadSampleError, ComponentSpec, read_names

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


def label_index(label: Any, classes: list[str] | None, where: str) -> int:
    """An integer class id from a manifest ``label`` (an id, or a class name in ``classes``)."""
    if isinstance(label, bool) or not isinstance(label, (int, str)):
        raise BadSampleError(f"{where}: label must be an integer or a class name, got {label!r}")
    if isinstance(label, int):
        if label < 0 or (classes is not None and label >= len(classes)):
            raise BadSampleError(f"{where}: label {label} is negative or not below the {len(classes or [])} classes "
                                 "named")
        return label
    if classes is None:
        raise BadSampleError(f"{where}: label '{label}' is a class name; name the classes with \"classes\" or "
                             "set \"labelled\": true to collect them from the manifest")
    if label not in classes:
        raise BadSampleError(f"{where}: label '{label}' is not a known class name")
    return classes.index(label)


class Manifest(Dataset):
    """JSONL, one sample per line: ``{"image": "rel/path.jpg", "captions": [...] or "...",
    "boxes": [[x0, y0, x1, y1], ...], "label": 3 or "tabby cat", ...}``. Image paths are
    relative to ``image_root`` (default: the manifest's folder). A line without ``image`` is
    text-only; one without captions is image-only.

    ``label`` passes through as an integer: an id, or a class name's index in ``classes``
    (given, or else, with ``labelled``, every name the manifest uses, sorted). With
    ``labelled`` every line must have one, checked when the source is built so a gap names
    its file and line at once; unlabelled sources never read their lines ahead.
    Each of ``fields`` present on a line passes through unchanged in ``sample["fields"]``.
    """

    def __init__(self, *, path: str, image_root: str | None, labelled: bool = False,
                 classes: str | list[str] | None = None, fields: list[str] = ()) -> None:
        self.path = existing(path, "manifest")
        self.root = Path(image_root).expanduser() if image_root else self.path.parent
        self.lines = [line for line in self.path.read_text().splitlines() if line.strip()]
        if not self.lines:
            raise ValueError(f"manifest '{path}' has no samples")
        self.fields = tuple(fields)
        self.label_names = read_names(classes, "class-name file")
        if labelled:  # one pass over the lines, only for labelled sources (pretraining corpora skip it)
            self._scan_labels(derive_names=classes is None)

    def _scan_labels(self, *, derive_names: bool) -> None:
        """Check every line has a label; collect string labels as class names."""
        names: set[str] = set()
        for i, line in enumerate(self.lines):
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # reported (and skipped) when the sample is read
            label = record.get("label") if isinstance(record, dict) else None
            if label is None:
                raise ValueError(f"{self.path} line {i + 1} has no \"label\" (the source is labelled: true)")
            if isinstance(label, str):
                names.add(label)
        if derive_names and names:
            self.label_names = sorted(names)

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
        if record.get("label") is not None:
            sample["label"] = label_index(record["label"], self.label_names, f"{self.path} line {index + 1}")
        if self.fields:
            sample["fields"] = {name: record[name] for name in self.fields if name in record}
        return sample


class ImageFolder(Dataset):
    """Every image under a folder (recursively, sorted): an image-only source (M3AE's
    unpaired images).

    With ``labels: "subfolders"`` (ImageNet's layout, ``root/<class>/<image>``) each image
    is labelled by its top-level subfolder, classes sorted by folder name as torchvision's
    ``ImageFolder`` does; ``class_names`` renames them for prompts (a list or a file in
    folder order, or a JSON object mapping folder names such as ``n01440764`` to names).
    """

    def __init__(self, *, path: str, labels: str = "none", class_names: str | list[str] | None = None) -> None:
        root = existing(path, "image folder")
        self.files = sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise ValueError(f"image folder '{path}' has no {'/'.join(IMAGE_SUFFIXES)} files")
        self.labels: list[int] | None = None
        self.label_names: list[str] | None = None
        if labels == "subfolders":
            self._label_by_subfolder(root, class_names)

    def _label_by_subfolder(self, root: Path, class_names: str | list[str] | None) -> None:
        loose = [f for f in self.files if f.parent == root]
        if loose:
            raise ValueError(f"image folder '{root}' is labelled by subfolder but {loose[0].name} lies at its top "
                             "level; move images into one folder per class")
        folders = sorted({f.relative_to(root).parts[0] for f in self.files})
        self.labels = [folders.index(f.relative_to(root).parts[0]) for f in self.files]
        self.label_names = folders
        if class_names is None:
            return
        if isinstance(class_names, str) and class_names.endswith(".json"):
            mapping = json.loads(existing(class_names, "class-name file").read_text())
            if isinstance(mapping, dict):
                missing = [f for f in folders if f not in mapping]
                if missing:
                    raise ValueError(f"class-name file '{class_names}' has no name for folder(s) {missing[:5]}")
                self.label_names = [str(mapping[f]) for f in folders]
                return
        names = read_names(class_names, "class-name file")
        if len(names) != len(folders):
            raise ValueError(f"{len(names)} class names for {len(folders)} class folders under '{root}'")
        self.label_names = names

    def __len__(self) -> int:
        return len(self.files)

    def describe(self, index: int) -> str:
        return str(self.files[index])

    def iter_captions(self) -> Iterator[str]:
        return iter(())

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample: dict[str, Any] = {"image": read_image(self.files[index]), "boxes": []}
        if self.labels is not None:
            sample["label"] = self.labels[index]
        return sample


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


def _path(description: str, kind: str) -> dict[str, Any]:
    """A local path parameter (``kind``: file or dir) that `framework validate` notes when missing."""
    return {"type": "string", "x-framework-path": kind, "description": description}


def _schema(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": required, "properties": properties}


NAMES = {"oneOf": [{"type": "null"}, {"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}


COMPONENTS = [
    ComponentSpec("dataset", "manifest", Manifest, _schema({
        "path": _path("JSONL manifest: one {image, captions, boxes?, label?} object per line.", "file"),
        "image_root": {"type": ["string", "null"], "default": None,
                       "description": "Folder image paths are relative to (null: the manifest's folder)."},
        "labelled": {"type": "boolean", "default": False,
                     "description": "Every line must carry a label (checked when the source is built)."},
        "classes": {**NAMES, "default": None,
                    "description": "Class names in label order, or a file of them (one per line, or a JSON list); "
                                   "string labels are looked up here (null: with labelled, the sorted names the "
                                   "manifest uses)."},
        "fields": {"type": "array", "items": {"type": "string", "minLength": 1}, "uniqueItems": True, "default": [],
                   "description": "Further keys of each line passed through to the sample as fields (e.g. answers)."},
    }, ["path"]), "JSONL manifest of image paths, captions, optional boxes, labels and declared fields."),
    ComponentSpec("dataset", "image_folder", ImageFolder, _schema({
        "path": _path("Folder searched recursively for images.", "dir"),
        "labels": {"enum": ["none", "subfolders"], "default": "none",
                   "description": "subfolders: label each image by its top-level folder (ImageNet layout), "
                                  "classes in sorted folder order."},
        "class_names": {**NAMES, "default": None,
                        "description": "Names of the class folders for prompts: a list or file in folder order, or a "
                                       "JSON file mapping folder names to names (null: the folder names)."},
    }, ["path"]), "Image-only source: every image under a folder, optionally labelled by subfolder."),
    ComponentSpec("dataset", "text_lines", TextLines, _schema({
        "path": _path("Text file with one sentence per line, or JSONL of {\"text\": ...}.", "file"),
    }, ["path"]), "Text-only source: one sentence per line."),
]
