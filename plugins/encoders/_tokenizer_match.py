"""A text checkpoint implies its tokenizer: refuse one whose ids would mean other tokens.

Embedding row ``i`` of a pretrained BERT/RoBERTa is the token its own tokenizer numbers
``i``. Another tokenizer of the same size (a 30,522-entry WordPiece learned from the
captions, say) loads without a shape error and trains on rows that mean other words, so
the size alone is not enough: when the checkpoint directory holds its tokenizer (as
bert-base-uncased and roberta-base do), the data tokenizer must have the same vocabulary
(token -> id) and the same special tokens. Without one only sizes can be compared: the
tokenizer may not have more ids than the embedding table, and its padding id must be the
config's (a checkpoint directory should therefore hold its tokenizer files).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

from framework.api import load_tokenizer

TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer_config.json")
"""Any of these in a checkpoint directory means it ships its tokenizer."""


def checkpoint_tokenizer(checkpoint: str) -> Optional[Any]:
    """The tokenizer saved with a checkpoint, or None when the directory has none."""
    path = Path(checkpoint)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        return None
    return load_tokenizer(path, "text checkpoint's tokenizer")


def special_tokens(tokenizer: Any) -> dict[str, tuple[str, int]]:
    """Role -> (token, id) for the tokenizer's named special tokens ([CLS], <pad>, ...)."""
    return {role: (token, tokenizer.convert_tokens_to_ids(token))
            for role, token in tokenizer.special_tokens_map.items() if isinstance(token, str)}


def _differences(ours: Mapping[str, Any], theirs: Mapping[str, Any], limit: int = 3) -> str:
    keys = sorted(k for k in set(ours) | set(theirs) if ours.get(k) != theirs.get(k))
    shown = ", ".join(f"{k!r}: {ours.get(k)} here vs {theirs.get(k)}" for k in keys[:limit])
    return f"{len(keys)} differ ({shown}{', ...' if len(keys) > limit else ''})"


def check_tokenizer(checkpoint: str, config: Any, context: Any) -> None:
    """Raise ValueError when the build context's tokenizer does not match ``checkpoint``'s."""
    size = context.get("vocab_size")
    if size is None:  # a bare build context (unit tests): no tokenizer to compare
        return
    problems = []
    own = checkpoint_tokenizer(checkpoint)
    vocab = context.get("tokenizer_vocab")
    if own is not None and vocab is not None:
        if vocab != own.get_vocab():
            problems.append(f"vocabulary: {_differences(vocab, own.get_vocab())}")
        if context.get("special_tokens") != special_tokens(own):
            problems.append(f"special tokens: {_differences(context.get('special_tokens') or {}, special_tokens(own))}")
    if size > config.vocab_size:
        problems.append(f"the tokenizer has {size} ids but the checkpoint embeds only {config.vocab_size}")
    pad = context.get("pad_token_id")
    real = vocab is not None  # else a shapes-only build's stand-in: only its size is the real tokenizer's
    if real and pad is not None and config.pad_token_id is not None and pad != config.pad_token_id:
        problems.append(f"padding id {pad} where the checkpoint pads with {config.pad_token_id}")
    if problems:
        fix = (f"set data.tokenizer to {{\"type\": \"pretrained\", \"path\": \"{checkpoint}\"}} (the directory "
               "holds it)" if own is not None else "save the checkpoint's tokenizer into its directory and name that "
               "directory in data.tokenizer")
        raise ValueError(f"the tokenizer does not match text checkpoint '{checkpoint}': {'; '.join(problems)}. "
                         f"A checkpoint's embeddings are indexed by its own tokenizer: {fix}")
