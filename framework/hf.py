"""Reading transformers directories as data: no remote code, no download, no prompt.

Every ``from_pretrained`` in the project goes through :data:`SAFE_PRETRAINED`
(``trust_remote_code=False``, ``local_files_only=True``), after :func:`refuse_remote_code`
has looked at the directory's configs: one that names its own Python classes
(``auto_map``) is refused with an error saying so, before transformers could ask on
standard input whether to run that code (it never asks with ``trust_remote_code=False``,
and this check gives the reason instead of transformers' advice to pass ``True``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SAFE_PRETRAINED: dict[str, Any] = {"trust_remote_code": False, "local_files_only": True}
"""Keyword arguments of every ``from_pretrained`` call."""

CONFIG_FILES = ("config.json", "tokenizer_config.json", "preprocessor_config.json", "processor_config.json",
                "feature_extractor_config.json", "image_processor_config.json", "generation_config.json")
"""The files through which transformers may be told to import code from the directory."""

REMOTE_CODE_KEYS = ("auto_map", "custom_pipelines")


class RemoteCodeError(ValueError):
    """A model or tokenizer directory asks to run Python code shipped with it."""


def refuse_remote_code(directory: str | Path, what: str) -> None:
    """Raise :class:`RemoteCodeError` if a config in ``directory`` maps classes to code in
    the directory (``auto_map``); ``what`` names the directory's role in the message."""
    directory = Path(directory)
    for name in CONFIG_FILES:
        path = directory / name
        if not path.is_file():
            continue
        try:
            data = json.loads(path.read_bytes().decode("utf-8"))
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            raise ValueError(f"{what} '{directory}': {name} is not readable JSON ({type(exc).__name__}: "
                             f"{str(exc)[:200]})") from exc
        found = [key for key in REMOTE_CODE_KEYS if isinstance(data, dict) and key in data]
        if found:
            raise RemoteCodeError(
                f"{what} '{directory}': {name} has '{found[0]}', which asks to import Python code shipped in the "
                f"directory; model and tokenizer directories are read as data only (remote code is never run): "
                f"use one saved from a built-in transformers class")


def load_tokenizer(directory: str | Path, what: str) -> Any:
    """``AutoTokenizer.from_pretrained`` of a local directory that ships no code."""
    from transformers import AutoTokenizer

    refuse_remote_code(directory, what)
    return AutoTokenizer.from_pretrained(str(directory), **SAFE_PRETRAINED)
