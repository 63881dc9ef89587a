"""Per-step state shared by objectives: masked views encoded once, teacher views, caches.

Each view is masked and encoded the first time an objective asks for it and reused by
every other objective in the step; fusion runs only if someone reads ``view.fused``.
The teacher encodes a view under ``no_grad`` the same way.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, fields, replace
from typing import Any, Callable, Mapping, Optional, Protocol, runtime_checkable

import torch
import torch.distributed as dist
from torch import nn

from framework.distributed import gather_rows, local_rows
from framework.types import (
    Batch,
    FusedEncoding,
    ImageEncoding,
    MaskingOutput,
    TextEncoding,
    TextMaskingOutput,
)


@dataclass
class Backbone:
    """The modules that encode a view: a student's or a teacher's copies of them."""

    image_encoder: Optional[nn.Module]
    text_encoder: Optional[nn.Module]
    fusion: Optional[nn.Module] = None


@runtime_checkable
class Teacher(Protocol):
    """What the step asks of a teacher (``model.teacher``; e.g. the EMA teacher): copies of
    the student's modules named by ``paths``, read without gradients, and an update after
    each optimiser step. It is an ``nn.Module`` (checkpointed through ``state_dict``)."""

    paths: list[str]

    def backbone(self) -> Backbone:
        """The teacher's copies of the encoders and fusion (``None`` where it has none)."""
        ...

    def module(self, path: str) -> nn.Module:
        """The teacher's copy of the student module at ``path`` (e.g. ``objectives.mrm.projector``)."""
        ...

    def update(self, student: nn.Module, step: int) -> None:
        """Follow ``student`` after optimiser step ``step``."""
        ...


@dataclass
class ViewSpec:
    """A named masking of a batch: an image masker, a text masker, or neither.

    ``image_from`` / ``text_from`` name another view whose mask (and encoding) of that
    modality this view shares, e.g. MLM reading the same masked image ITC sees.
    """

    name: str
    image: Optional[Callable[..., MaskingOutput]] = None
    text: Optional[Callable[..., TextMaskingOutput]] = None
    image_from: Optional[str] = None
    text_from: Optional[str] = None

    def owners(self) -> tuple[Optional[str], Optional[str]]:
        """The views whose image / text masks this view uses (``None``: unmasked)."""
        image = self.image_from or (self.name if self.image is not None else None)
        text = self.text_from or (self.name if self.text is not None else None)
        return image, text


@dataclass
class EncodedView:
    """A batch masked as a view says and encoded; ``fused`` is computed on first use."""

    name: str
    image: ImageEncoding
    text: TextEncoding
    image_mask: Optional[MaskingOutput]
    text_mask: Optional[TextMaskingOutput]
    fuse: Optional[Callable[[ImageEncoding, TextEncoding], FusedEncoding]] = None
    batch: Optional[Batch] = field(default=None, repr=False)
    _fused: Optional[FusedEncoding] = field(default=None, repr=False)

    @property
    def fused(self) -> FusedEncoding:
        if self._fused is None:
            if self.fuse is None:
                raise RuntimeError(f"view '{self.name}' was asked for fused features but the model has no fusion; "
                                   "add model.fusion to the recipe")
            self._fused = self.fuse(self.image, self.text)
        return self._fused


MASK_INPUTS = ("input_ids", "attention_mask", "special_tokens_mask", "boxes", "box_mask")


def _global_mask_inputs(batch: Batch) -> Batch:
    """The fields maskers read, gathered from every rank (the local batch on one rank).

    Masks are drawn for the whole global batch on every rank and each rank keeps its own
    rows, so a sample's mask depends on its place in the global batch and the seed, not
    on how many processes share the batch: N ranks train exactly like one.
    """
    if not dist.is_initialized() or dist.get_world_size() == 1:
        return batch
    out = {key: gather_rows(batch[key]) for key in MASK_INPUTS if key in batch}
    out["image"] = batch["image"]
    return out


def _rows(record: Any, rows: slice) -> Any:
    """A masking record with every tensor field cut to ``rows``."""
    if rows == slice(None):
        return record
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    return replace(record, **{k: v[rows] for k, v in values.items() if torch.is_tensor(v)})


def mask_view(spec: ViewSpec, batch: Batch, generator: torch.Generator, patch_size: int, grid: tuple[int, int],
              full: Optional[Batch] = None) -> tuple[Optional[MaskingOutput], Optional[TextMaskingOutput]]:
    """Draw the image and text masks of one view for this rank's part of the global batch
    (``full``: the gathered mask inputs, when the caller already has them)."""
    if spec.image is None and spec.text is None:
        return None, None
    full = _global_mask_inputs(batch) if full is None else full
    rows = local_rows(batch["input_ids"].shape[0]) if full is not batch else slice(None)
    image_mask = text_mask = None
    if spec.image is not None:
        reads = {key: full.get(key) for key in getattr(spec.image, "reads", ())}  # the fields it declares
        if not set(reads) <= set(MASK_INPUTS):  # only these are gathered over ranks, so rows match batch_size
            raise ValueError(f"view '{spec.name}': its image masker reads {sorted(set(reads) - set(MASK_INPUTS))}; "
                             f"a masker may read only {list(MASK_INPUTS)}")
        image_mask = _rows(spec.image(
            batch_size=full["input_ids"].shape[0], grid=grid, patch_size=patch_size, generator=generator,
            device=batch["image"].device, **reads,
        ), rows)
    if spec.text is not None:
        text_mask = _rows(spec.text(
            input_ids=full["input_ids"], attention_mask=full["attention_mask"],
            special_tokens_mask=full["special_tokens_mask"], generator=generator,
        ), rows)
    return image_mask, text_mask


def encode_view(backbone: Backbone, batch: Batch, name: str, image_mask: Optional[MaskingOutput],
                text_mask: Optional[TextMaskingOutput], cache: Optional[dict[tuple, Any]] = None,
                owners: tuple[Optional[str], Optional[str]] = (None, None)) -> EncodedView:
    """Run the backbone's encoders on a batch masked by ``image_mask`` / ``text_mask``.

    With ``cache``, a modality is encoded once per mask and shared by every view using it:
    all views leaving it unmasked (a full view and a text-masked view share the image)
    and views naming the mask's ``owners`` view through ``image_from`` / ``text_from``.
    """
    if backbone.image_encoder is None or backbone.text_encoder is None:
        raise RuntimeError(f"view '{name}' is read by an objective but the recipe lacks "
                           "model.image_encoder or model.text_encoder")
    cache = {} if cache is None else cache
    image_key = ("image", owners[0] if image_mask is not None else None)
    if image_key not in cache:
        cache[image_key] = backbone.image_encoder(batch["image"], mask=image_mask)
    text_key = ("text", owners[1] if text_mask is not None else None)
    if text_key not in cache:
        input_ids = text_mask.input_ids if text_mask is not None else batch["input_ids"]
        cache[text_key] = backbone.text_encoder(input_ids, batch["attention_mask"], mask=text_mask)
    return EncodedView(name, cache[image_key], cache[text_key], image_mask, text_mask, backbone.fusion, batch)


def view_generator(step_generator: torch.Generator, view: str) -> torch.Generator:
    """The generator of one view's masks: a function of the step's seed and the view's
    name, so a view's masks do not depend on which objective asked for which view first
    (`framework masks` draws exactly what the training step draws)."""
    seed = int.from_bytes(hashlib.blake2b(f"{step_generator.initial_seed()}/{view}".encode(), digest_size=8).digest(),
                          "little") & (2**63 - 1)
    return torch.Generator(device=step_generator.device).manual_seed(seed)


class StepContext:
    """What objectives see during one forward pass.

    ``view(name)`` / ``teacher_view(name)`` give encoded views, ``decoded(decoder, view)``
    a decoder's output, ``teacher_module(path)`` the teacher's copy of a student module
    and ``shared`` a dict objectives use to hand results to later ones (e.g. ITC
    similarities for ITM's hard negatives).
    """

    def __init__(self, *, batch: Batch, generator: torch.Generator, student: Backbone, views: Mapping[str, ViewSpec],
                 decoders: Mapping[str, nn.Module], teacher: Optional[Teacher] = None) -> None:
        self.batch = batch
        self.generator = generator
        self.student = student
        self.views = views
        self.decoders = decoders
        self.teacher = teacher
        self.shared: dict[str, Any] = {}
        self._masks: dict[str, tuple[Optional[MaskingOutput], Optional[TextMaskingOutput]]] = {}
        self._mask_inputs: Optional[Batch] = None
        self._encoded: dict[tuple[str, str], EncodedView] = {}
        self._unimodal: dict[str, dict[tuple, Any]] = {"student": {}, "teacher": {}}
        self._decoded: dict[tuple[str, str], Any] = {}

    @property
    def batch_size(self) -> int:
        return self.batch["input_ids"].shape[0]

    def masks(self, name: str) -> tuple[Optional[MaskingOutput], Optional[TextMaskingOutput]]:
        """The masks of view ``name``, drawn once per step and shared by student and teacher."""
        if name not in self._masks:
            if self.student.image_encoder is None:
                raise RuntimeError(f"view '{name}' is read by an objective but the recipe has no model.image_encoder")
            encoder = self.student.image_encoder
            spec = self.views[name]
            if self._mask_inputs is None and (spec.image is not None or spec.text is not None):
                self._mask_inputs = _global_mask_inputs(self.batch)  # one gather per step, shared by views
            image_mask, text_mask = mask_view(spec, self.batch, view_generator(self.generator, name),
                                              encoder.patch_size, encoder.grid, self._mask_inputs)
            if spec.image_from is not None:
                image_mask = self.masks(spec.image_from)[0]
            if spec.text_from is not None:
                text_mask = self.masks(spec.text_from)[1]
            self._masks[name] = (image_mask, text_mask)
        return self._masks[name]

    def view(self, name: str) -> EncodedView:
        """View ``name`` encoded by the student (with gradients)."""
        key = ("student", name)
        if key not in self._encoded:
            self._encoded[key] = encode_view(self.student, self.batch, name, *self.masks(name),
                                             self._unimodal["student"], self.views[name].owners())
        return self._encoded[key]

    def teacher_view(self, name: str) -> EncodedView:
        """View ``name`` encoded by the teacher's backbone copies, without gradients."""
        if self.teacher is None:
            raise RuntimeError("an objective asked for teacher features but the recipe has no model.teacher")
        key = ("teacher", name)
        if key not in self._encoded:
            with torch.no_grad():
                view = encode_view(self.teacher.backbone(), self.batch, name, *self.masks(name),
                                   self._unimodal["teacher"], self.views[name].owners())
            if view.fuse is not None:
                view.fuse = torch.no_grad()(view.fuse)
            self._encoded[key] = view
        return self._encoded[key]

    def teacher_module(self, path: str) -> nn.Module:
        if self.teacher is None:
            raise RuntimeError(f"an objective asked for the teacher's '{path}' but the recipe has no model.teacher")
        return self.teacher.module(path)

    def decoded(self, decoder: str, view: str) -> Any:
        """Output of decoder ``decoder`` on the student's view ``view`` (computed once)."""
        key = (decoder, view)
        if key not in self._decoded:
            self._decoded[key] = self.decoders[decoder](self.view(view))
        return self._decoded[key]
