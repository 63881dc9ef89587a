"""Ranking metrics: recall@K for image-text retrieval with several captions per image,
and top-K classification accuracy.

Image->text counts an image as found at K when *any* of its captions ranks in its top K;
text->image counts a caption when its one image ranks in its top K (the protocol of
ALBEF/CLIP on COCO and Flickr30k). Ranks are positions in a stable descending sort, so
ties are broken by index and the result never depends on the sort implementation.
"""

from __future__ import annotations

from typing import Sequence

import torch


def ranks(scores: torch.Tensor) -> torch.Tensor:
    """Position (0 = best) of every entry of ``scores`` [R,C] within its row, as [R,C] long."""
    order = scores.argsort(dim=1, descending=True, stable=True)  # [R,C] column ids, best first
    positions = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, positions)  # invert the permutation


def retrieval_recalls(i2t: torch.Tensor, t2i: torch.Tensor, caption_image: torch.Tensor,
                      ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@K in percent for both directions.

    Args:
        i2t: [N,M] score of every caption (columns) for every image (rows).
        t2i: [M,N] score of every image for every caption (``i2t.t()`` without re-ranking).
        caption_image: [M] long, the image each caption describes.
        ks: cut-offs.

    Returns:
        ``i2t_r{K}``, ``t2i_r{K}`` and ``r_mean`` (the mean of all of them).
    """
    n, m = i2t.shape
    if t2i.shape != (m, n) or caption_image.shape != (m,):
        raise ValueError(f"i2t {tuple(i2t.shape)}, t2i {tuple(t2i.shape)} and caption_image "
                         f"{tuple(caption_image.shape)} do not describe the same N images and M captions")
    owner = caption_image.to(i2t.device)
    positive = owner[None, :] == torch.arange(n, device=i2t.device)[:, None]  # [N,M]
    if not positive.any(dim=1).all():
        raise ValueError("every image needs at least one caption for image->text recall")
    best_i2t = ranks(i2t).masked_fill(~positive, m).amin(dim=1)  # [N]: best rank of a true caption
    rank_t2i = ranks(t2i).gather(1, owner[:, None].to(t2i.device))[:, 0]  # [M]: rank of the true image
    out = {}
    for k in ks:
        out[f"i2t_r{k}"] = 100.0 * (best_i2t < k).float().mean().item()
    for k in ks:
        out[f"t2i_r{k}"] = 100.0 * (rank_t2i < k).float().mean().item()
    out["r_mean"] = sum(out.values()) / len(out)
    return out


def topk_accuracy(logits: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Top-K accuracy in percent of ``logits`` [B,C] against ``labels`` [B] (K capped at C)."""
    rank = ranks(logits).gather(1, labels[:, None].to(logits.device))[:, 0]  # [B]
    return {f"top{k}": 100.0 * (rank < k).float().mean().item() for k in ks}
