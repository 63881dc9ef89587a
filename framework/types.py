"""Typed records passed between components: masks, encodings and losses.

Components never return bare tuples; these records say what each tensor is, so a new
plugin can be read against them without reading the code that calls it. What a module
returns (encodings, losses) is a ``NamedTuple``: DeepSpeed ZeRO-3 attaches its
pre-backward parameter gathering to the tensors of a module's output and looks inside
tuples and dicts only, so a dataclass output would leave the module's own parameters
unavailable in backward. Masks are not module outputs and stay dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping, NamedTuple, Optional

import torch

Batch = dict[str, torch.Tensor]
"""A collated batch: ``image`` [B,3,H,W] (normalised), ``input_ids`` / ``attention_mask`` /
``special_tokens_mask`` [B,T]; optional ``boxes`` [B,M,4] (pixels, x0 y0 x1 y1) with
``box_mask`` [B,M], ``has_image`` / ``has_text`` [B] for unpaired sources, ``index`` [B]."""


@dataclass
class MaskingOutput:
    """Which positions of a sequence are masked (MAE convention: ``True`` means masked).

    ``ids_keep`` [B,K] lists visible positions in shuffled order and ``ids_restore`` [B,L]
    inverts the shuffle, so ``gather(cat(kept, filler), ids_restore)`` restores the order.
    They are ``None`` for masks whose visible count differs between samples (these can
    only be used by encoders that keep every position, e.g. mask-token-at-input).

    ``ids_masked`` [B,M] lists every masked position of each row, padded with unmasked
    ones to a count ``M`` fixed by the sizes and the ratio, never by the data. Objectives
    gather their scored positions by it, so no step depends on a data-dependent shape (a
    host sync on a GPU). ``None`` makes them score every position instead.
    """

    mask: torch.Tensor
    ids_keep: Optional[torch.Tensor] = None
    ids_restore: Optional[torch.Tensor] = None
    ids_masked: Optional[torch.Tensor] = None


@dataclass
class TextMaskingOutput:
    """A masked caption: corrupted ``input_ids`` to encode and ``labels`` to predict.

    ``labels`` holds the original id at masked positions and -100 elsewhere (the
    ``ignore_index`` of cross-entropy). ``mask`` [B,T] is ``True`` at masked positions.
    Token-dropping masks also set ``ids_keep`` / ``ids_restore``, and every masker may set
    ``ids_masked``, as :class:`MaskingOutput` describes.
    """

    input_ids: torch.Tensor
    labels: torch.Tensor
    mask: torch.Tensor
    ids_keep: Optional[torch.Tensor] = None
    ids_restore: Optional[torch.Tensor] = None
    ids_masked: Optional[torch.Tensor] = None


@dataclass(frozen=True)
class Similarities:
    """What a contrastive objective (ITC) leaves in ``ctx.shared[<its name>]`` for later
    objectives of the same step, e.g. ITM's hard negatives (ALBEF §3.2).

    Rows are this rank's ``B`` samples; columns are the ``K`` keys: the global batch of
    ``G = world_size * B`` samples in rank order, then (momentum mode) the queue. Keys are
    the student's embeddings in plain mode and the momentum teacher's with distillation
    (ALBEF ``sim_i2t = image_feat @ text_feat_all``).

    Attributes:
        image_to_text (Tensor): [B,K] scaled similarity (logit) of each image to every text key; detached.
        text_to_image (Tensor): [B,K] scaled similarity of each caption to every image key; detached.
        offset (int): column of this rank's first sample among the keys (``rank * B``), so
            sample ``i``'s positive is column ``offset + i``.
        image (Tensor): [B,E] the student's normalised image embeddings (with gradient).
        text (Tensor): [B,E] the student's normalised text embeddings (with gradient).
    """

    image_to_text: torch.Tensor
    text_to_image: torch.Tensor
    offset: int
    image: torch.Tensor
    text: torch.Tensor

    def local(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(image_to_text, text_to_image)`` among this rank's own samples, [B,B] each
        (row ``i``, column ``j``: sample ``i`` against sample ``j``'s key)."""
        b = self.image_to_text.shape[0]
        cols = slice(self.offset, self.offset + b)
        return self.image_to_text[:, cols], self.text_to_image[:, cols]


class ImageEncoding(NamedTuple):
    """Output of an image encoder.

    ``tokens`` [B,1+N',D] starts with the [CLS] token. ``layout`` says what the N' patch
    tokens are: ``"full"`` (all N patches in grid order, masked ones included) or
    ``"visible"`` (only the kept patches, in ``mask.ids_keep`` order).
    """

    tokens: torch.Tensor
    layout: str = "full"
    mask: Optional[MaskingOutput] = None
    grid: tuple[int, int] = (0, 0)

    @property
    def cls(self) -> torch.Tensor:
        return self.tokens[:, 0]

    @property
    def patches(self) -> torch.Tensor:
        return self.tokens[:, 1:]


class TextEncoding(NamedTuple):
    """Output of a text encoder: ``tokens`` [B,T',D] with [CLS] first and its padding mask.

    ``attention_mask`` [B,T'] is 1 for real tokens. For token-dropping masks T' < T and
    ``mask`` carries ``ids_keep`` / ``ids_restore``.
    """

    tokens: torch.Tensor
    attention_mask: torch.Tensor
    mask: Optional[TextMaskingOutput] = None

    @property
    def cls(self) -> torch.Tensor:
        return self.tokens[:, 0]


class FusedEncoding(NamedTuple):
    """Output of a fusion module: per-modality token streams and a pooled pair vector.

    Either stream may be ``None`` when the fusion does not produce it (e.g. ALBEF-style
    fusion updates only the text stream). ``pooled`` [B,D] is what ITM classifies.
    """

    image: Optional[torch.Tensor]
    text: Optional[torch.Tensor]
    pooled: torch.Tensor


class LossOutput(NamedTuple):
    """What an objective returns: a scalar ``loss`` and detached scalars to log."""

    loss: torch.Tensor
    metrics: Mapping[str, torch.Tensor] = MappingProxyType({})
