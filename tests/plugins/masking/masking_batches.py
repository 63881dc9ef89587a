"""Tiny vocabulary and padded captions shared by the masking tests."""

from __future__ import annotations

import torch

SPECIAL_IDS = [0, 1, 2, 3]  # [PAD], [CLS], [SEP], [MASK]
PAD, CLS, SEP, MASK = SPECIAL_IDS
VOCAB = 40


def captions(lengths: list[int], max_len: int, seed: int = 0) -> dict[str, torch.Tensor]:
    """[CLS] words [SEP] [PAD]... for each length (number of words)."""
    g = torch.Generator().manual_seed(seed)
    batch = len(lengths)
    ids = torch.randint(len(SPECIAL_IDS), VOCAB, (batch, max_len), generator=g)
    pos = torch.arange(max_len)[None, :]
    n = torch.tensor(lengths)[:, None]
    ids = torch.where(pos == 0, CLS, ids)
    ids = torch.where(pos == n + 1, SEP, ids)
    ids = torch.where(pos > n + 1, PAD, ids)
    attention = (pos <= n + 1).long()
    special = ((pos == 0) | (pos >= n + 1)).long()
    return {"input_ids": ids, "attention_mask": attention, "special_tokens_mask": special}
