"""Lists of names given inline in a recipe or read from a file: class names, prompt templates."""

from __future__ import annotations

import json
from pathlib import Path


def read_names(value: str | list[str] | None, what: str) -> list[str] | None:
    """``value`` itself when it is a list (or ``None``), else the names in the file it names:
    a JSON list of strings (``.json``) or one name per non-empty line (ImageNet's class-name
    files, CLIP's template lists). ``what`` names the file in errors."""
    if value is None or isinstance(value, list):
        return value
    file = Path(value).expanduser()
    if not file.is_file():
        raise FileNotFoundError(f"{what} '{value}' does not exist; check the path in the recipe")
    if file.suffix == ".json":
        names = json.loads(file.read_text())
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ValueError(f"{what} '{value}' must hold a JSON list of strings")
        return names
    names = [line.strip() for line in file.read_text().splitlines() if line.strip()]
    if not names:
        raise ValueError(f"{what} '{value}' is empty")
    return names
