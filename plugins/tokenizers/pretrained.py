"""``pretrained``: a Hugging Face tokenizer loaded from a local directory (never a hub name).

The directory is what ``save_pretrained`` writes (``tokenizer.json`` and its configs),
e.g. a BERT tokenizer copied next to the data, or the tokenizer a previous run saved.
"""

from __future__ import annotations

from pathlib import Path

from transformers import PreTrainedTokenizerFast

from framework.api import ComponentSpec, load_tokenizer


def pretrained(*, path: str) -> PreTrainedTokenizerFast:
    """Load the fast tokenizer saved in ``path``; refuse hub names and missing paths."""
    directory = Path(path).expanduser()
    if not directory.is_dir():
        raise FileNotFoundError(
            f"tokenizer 'pretrained': path '{path}' is not a local directory; point it at a folder written by "
            "tokenizer.save_pretrained(...) (hub names are not downloaded)")
    tokenizer = load_tokenizer(directory, "tokenizer 'pretrained'")  # refuses directories that ship code
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise TypeError(f"tokenizer 'pretrained': '{path}' holds a slow tokenizer; save one with a tokenizer.json")
    missing = [name for name in ("pad_token", "cls_token", "sep_token", "mask_token")
               if getattr(tokenizer, name) is None]
    if missing:
        raise ValueError(f"tokenizer 'pretrained': '{path}' defines no {', '.join(missing)}; masked pretraining "
                         "needs [PAD], [CLS], [SEP] and [MASK] tokens (set them in its special_tokens_map.json)")
    return tokenizer


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["path"],
    "properties": {
        "path": {"type": "string", "x-framework-path": "dir",
                 "description": "Local directory written by save_pretrained (no hub download)."},
    },
}

COMPONENTS = [
    ComponentSpec("tokenizer", "pretrained", pretrained, SCHEMA, "A tokenizer saved in a local directory."),
]
