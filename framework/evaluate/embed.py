"""Embedding images and captions into the contrastive space of a recipe's ITC objective
(found by capability: :class:`framework.objective.ContrastiveEmbedder`).

The ITC objective owns the pooling and projections from encodings to the shared space
(``embed_image`` / ``embed_text``); evaluation applies them to *unmasked* encodings, so
cosine similarity is a dot product (CLIP, ALBEF §3.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from framework.evaluate.model import EvalModel, EvalModelError
from framework.evaluate.samples import caption_pairs, eval_batches
from framework.objective import ContrastiveEmbedder
from framework.types import ImageEncoding, TextEncoding


def contrastive_heads(model: EvalModel, name: Optional[str] = None) -> nn.Module:
    """The objective that embeds into the shared space: the one called ``name``, or the
    recipe's first with the :class:`framework.objective.ContrastiveEmbedder` capability
    (``embed_image`` / ``embed_text``, as ITC has), whatever its type or name."""
    objectives = model.model.objectives  # in recipe order
    if name is not None:
        if name not in objectives:
            raise EvalModelError(f"no objective named '{name}'; the recipe has {list(objectives)}")
        objective = objectives[name]
        if not isinstance(objective, ContrastiveEmbedder):
            raise EvalModelError(f"objective '{name}' has no embed_image/embed_text to embed with; "
                                 "name an ITC objective")
        return objective
    for objective in objectives.values():
        if isinstance(objective, ContrastiveEmbedder):
            return objective
    raise EvalModelError(f"this evaluation embeds with a contrastive objective (e.g. itc), but none of the recipe's "
                         f"objectives {list(objectives)} has embed_image/embed_text; add one or pick another task")


@dataclass
class EmbeddedSet:
    """A held-out set embedded for retrieval.

    ``image`` [N,E] / ``text`` [M,E] are normalised ITC embeddings, ``caption_image`` [M]
    names each caption's image and ``labels`` [N] are class ids when the source has them.
    ``image_tokens`` / ``text_tokens`` keep the full encodings for ITM re-ranking.
    """

    image: torch.Tensor
    text: torch.Tensor
    caption_image: torch.Tensor
    labels: Optional[torch.Tensor]
    image_tokens: Optional[ImageEncoding] = None
    text_tokens: Optional[TextEncoding] = None


@torch.no_grad()
def embed_texts(model: EvalModel, heads: nn.Module, texts: list[str], batch_size: int) -> torch.Tensor:
    """Normalised ITC embeddings [M,E] of raw ``texts``."""
    out = [heads.embed_text(model.encode_texts(texts[i:i + batch_size]))
           for i in range(0, len(texts), batch_size)]
    return torch.cat(out)


def _cat_encodings(parts: list, kind: type) -> object:
    if kind is ImageEncoding:
        return ImageEncoding(torch.cat([p.tokens for p in parts]), parts[0].layout, None, parts[0].grid)
    return TextEncoding(torch.cat([p.tokens for p in parts]), torch.cat([p.attention_mask for p in parts]))


@torch.no_grad()
def embed_dataset(model: EvalModel, heads: nn.Module, dataset: object, *, batch_size: int,
                  max_samples: Optional[int], keep_tokens: bool = False) -> EmbeddedSet:
    """Embed every image and every caption of the first ``max_samples`` samples of ``dataset``."""
    images, texts, owners, labels = [], [], [], []
    image_parts, text_parts = [], []
    seen = 0
    for batch in eval_batches(model.recipe, dataset, batch_size=batch_size, max_samples=max_samples):
        encoded = model.encode_images(batch.images)
        images.append(heads.embed_image(encoded))
        captions, owner = caption_pairs(batch.captions)
        if captions:
            text = model.encode_texts(captions)
            texts.append(heads.embed_text(text))
            if keep_tokens:
                text_parts.append(text)
        owners.append(owner + seen)
        labels.append(batch.labels)
        if keep_tokens:
            image_parts.append(encoded)
        seen += batch.images.shape[0]
    if not images:
        raise EvalModelError("the evaluation dataset is empty")
    has_labels = all(lab is not None for lab in labels)
    return EmbeddedSet(
        image=torch.cat(images),
        text=torch.cat(texts) if texts else torch.zeros(0, images[0].shape[1]),
        caption_image=torch.cat(owners),
        labels=torch.cat(labels) if has_labels else None,
        image_tokens=_cat_encodings(image_parts, ImageEncoding) if keep_tokens else None,
        text_tokens=_cat_encodings(text_parts, TextEncoding) if keep_tokens and text_parts else None,
    )
