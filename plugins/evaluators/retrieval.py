"""``retrieval``: image-text retrieval recall@1/5/10 in both directions (ALBEF §5, Table 2).

Every image and every caption of the held-out set is embedded with the ITC projections
and all pairs are ranked by cosine similarity. With ``rerank_k > 0`` the top-k candidates
of each query are re-scored by the ITM head on the fused pair (ALBEF's inference: ITC
proposes, ITM decides) and placed, in ITM order, above the remaining candidates, which
keep their ITC order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from framework.api import (
    DATASET_SLOT,
    ComponentSpec,
    EmbeddedSet,
    EvalModel,
    ImageEncoding,
    TextEncoding,
    contrastive_heads,
    embed_dataset,
    evaluator_schema,
    retrieval_recalls,
)

RERANKED = 2.0
"""Offset putting ITM-scored candidates (match probability in [0, 1]) above every ITC
candidate (cosine similarity <= 1)."""


def match_probability(model: EvalModel, itm: torch.nn.Module, image: ImageEncoding, text: TextEncoding) -> torch.Tensor:
    """ITM probability [P] that each (image, text) row pair matches (class 1 of the head)."""
    pooled = model.require("fusion")(image, text).pooled  # [P,D]
    return itm.head(pooled).float().softmax(-1)[:, 1]


def rerank(model: EvalModel, itm: torch.nn.Module, scores: torch.Tensor, image: ImageEncoding, text: TextEncoding, *,
           k: int, batch_size: int, images_are_queries: bool) -> torch.Tensor:
    """``scores`` [Q,C] (queries are images or captions) with each row's top ``k`` replaced
    by ``RERANKED`` + the ITM match probability of the pair."""
    k = min(k, scores.shape[1])
    query = torch.arange(scores.shape[0]).repeat_interleave(k)  # [Q*k]
    candidate = scores.topk(k, dim=1).indices.flatten().cpu()  # [Q*k]
    image_rows, text_rows = (query, candidate) if images_are_queries else (candidate, query)
    out = scores.clone()
    for start in range(0, query.shape[0], batch_size):
        rows = slice(start, start + batch_size)
        i, t = image_rows[rows], text_rows[rows]
        pair_image = image._replace(tokens=image.tokens[i])
        pair_text = text._replace(tokens=text.tokens[t], attention_mask=text.attention_mask[t])
        out[query[rows], candidate[rows]] = RERANKED + match_probability(model, itm, pair_image,
                                                                         pair_text).to(out.device)
    return out


class Retrieval:
    """Recall@K for image->text and text->image retrieval on a held-out caption dataset."""

    def __init__(self, *, objective: Optional[str], itm_objective: Optional[str], rerank_k: int,
                 max_samples: Optional[int], batch_size: int, dataset: Optional[Mapping[str, Any]] = None) -> None:
        self.objective, self.itm_objective, self.rerank_k = objective, itm_objective, rerank_k
        self.max_samples, self.batch_size, self.dataset = max_samples, batch_size, dataset

    def __call__(self, model: EvalModel, out_dir: Path) -> dict[str, float]:
        heads = contrastive_heads(model, self.objective)
        data = embed_dataset(model, heads, model.dataset("eval", self.dataset), batch_size=self.batch_size,
                             max_samples=self.max_samples, keep_tokens=self.rerank_k > 0)
        i2t = data.image @ data.text.t()  # [N,M] cosine similarities
        t2i = i2t.t()  # [M,N]
        if self.rerank_k > 0:
            i2t, t2i = self._rerank(model, data, i2t, t2i)
        results = retrieval_recalls(i2t, t2i, data.caption_image)
        return {**results, "images": float(data.image.shape[0]), "captions": float(data.text.shape[0])}

    def _rerank(self, model: EvalModel, data: EmbeddedSet, i2t: torch.Tensor,
                t2i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        itm = model.objective("itm", self.itm_objective)
        images, texts = data.image_tokens, data.text_tokens
        i2t = rerank(model, itm, i2t, images, texts, k=self.rerank_k, batch_size=self.batch_size,
                     images_are_queries=True)
        t2i = rerank(model, itm, t2i, images, texts, k=self.rerank_k, batch_size=self.batch_size,
                     images_are_queries=False)
        return i2t, t2i


SCHEMA = evaluator_schema({
    "objective": {"type": ["string", "null"], "default": None,
                  "description": "Name of the ITC objective whose projections embed (null: the first of type itc)."},
    "itm_objective": {"type": ["string", "null"], "default": None,
                      "description": "Name of the ITM objective used to re-rank (null: the first of type itm)."},
    "rerank_k": {"type": "integer", "minimum": 0, "default": 0,
                 "description": "Re-rank each query's top k ITC candidates with the ITM head (ALBEF: 256 on COCO, 128 "
                                "on Flickr30k; 0: off)."},
    "max_samples": {"type": ["integer", "null"], "minimum": 1, "default": 1000,
                    "description": "Evaluate on the first this many images with all their captions (null: all)."},
    "batch_size": {"type": "integer", "minimum": 1, "default": 64, "description": "Images or pairs per forward pass."},
    "dataset": DATASET_SLOT,
})

COMPONENTS = [ComponentSpec("evaluator", "retrieval", Retrieval, SCHEMA,
                            "Image-text retrieval R@1/5/10 both ways, optional ITM re-ranking of the top k.")]
