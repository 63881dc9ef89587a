"""``discrete_tokens``: code ids of a frozen, pretrained image tokenizer as per-patch classes.

BEiT-style targets (Bao et al. 2022): each image patch's target is the code a trained
tokenizer gives that patch, and the MIM head classifies among ``num_codes`` with
cross-entropy. Used by M3AE's discretised-target variant (VQGAN/MaskGIT tokenizer in the
spec) and MAMO's Table 9 ablation (DALL-E dVAE).

``tokenizer`` names where the trained tokenizer is (see
:mod:`framework_plugins.image_tokenizers.storage`): a run directory of a ``tokenizer_training``
recipe, one of its checkpoint directories, or a ``.safetensors`` export. The component is
rebuilt from the stored config and its weights loaded strictly; it stays in eval mode with
``requires_grad`` off, so the optimiser never sees it. The tokenizer's code grid must be the
image encoder's patch grid, and its training images must have had the same mean/std.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import torch
from torch import nn

from framework.api import BuildContext, ComponentSpec, EncodedView, StepContext, record_config, stored_config

from ..image_tokenizers.storage import StoredTokenizer, read_tokenizer


class AbsentTokenizer(nn.Module):
    """The sizes of a tokenizer that is not on this machine, for shapes-only builds
    (validation, ``framework info``): it holds no weights and encodes nothing."""

    def __init__(self, num_codes: int, patch_size: int, path: str) -> None:
        super().__init__()
        self.num_codes, self.patch_size, self.path = num_codes, patch_size, path

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        raise RuntimeError(f"image tokenizer '{self.path}' is not on this machine; train or copy it there to train")


def load_frozen_tokenizer(path: str, objective: Optional[str], context: BuildContext,
                          num_codes: Optional[int] = None) -> nn.Module:
    """Rebuild the tokenizer stored at ``path`` and load its weights, frozen.

    Its config and normalisation are recorded in the build context (the model file keeps
    them), so under ``load_pretrained=False`` it is rebuilt from that record without
    ``path``, and the caller loads its weights with the rest of the model. A shapes-only
    build (``load_pretrained=False``, no record) where ``path`` is absent gets an
    :class:`AbsentTokenizer` of the recipe's ``num_codes``."""
    source, load = f"image_tokenizer:{path}:{objective or ''}", context.get("load_pretrained", True)
    record = None if load else stored_config(context, source)
    if not load and record is None and num_codes is not None and not Path(path).exists():
        return AbsentTokenizer(num_codes, context["patch_size"], path)
    if record is not None:
        stored = StoredTokenizer(record["config"], {}, record["mean"], record["std"])
    else:
        stored = read_tokenizer(path, objective)
        record_config(context, source, {"config": stored.config, "mean": stored.mean, "std": stored.std})
        if not load:  # a shapes-only build, or the caller loads a model file
            stored.state = {}
    for key in ("mean", "std"):
        ours, theirs = [float(v) for v in context[key]], [float(v) for v in getattr(stored, key)]
        if ours != theirs:
            raise ValueError(f"tokenizer '{path}' was trained on images normalised with {key} {theirs} but this "
                             f"recipe's data.{key} is {ours}; use the same normalisation in both recipes")
    tokenizer = context.build("image_tokenizer", stored.config)
    missing, unexpected = tokenizer.load_state_dict(stored.state, strict=False) if stored.state else ([], [])
    if missing or unexpected:
        raise ValueError(f"weights at '{path}' do not fit the tokenizer its recipe describes "
                         f"(missing {sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]})")
    tokenizer.requires_grad_(False)
    return tokenizer.eval()


class DiscreteTokenTarget(nn.Module):
    """Codes [B,N] long of the batch images, row-major over the patch grid."""

    loss_kind = "classification"
    requires_teacher = False

    def __init__(self, *, tokenizer: str, objective: Optional[str], num_codes: Optional[int],
                 context: BuildContext) -> None:
        super().__init__()
        self.tokenizer = load_frozen_tokenizer(tokenizer, objective, context, num_codes)
        if num_codes is not None and self.tokenizer.num_codes != num_codes:
            raise ValueError(f"tokenizer '{tokenizer}' has {self.tokenizer.num_codes} codes but num_codes is "
                             f"{num_codes}; fix num_codes or point at the intended tokenizer")
        self.dim = self.tokenizer.num_codes
        grid, patch = context["grid"], context["patch_size"]
        if self.tokenizer.patch_size != patch:
            raise ValueError(f"tokenizer '{tokenizer}' gives one code per {self.tokenizer.patch_size} px but the image "
                             f"encoder's patches are {patch} px; train the tokenizer with patch_size {patch}")
        self.grid = tuple(grid)

    def train(self, mode: bool = True) -> "DiscreteTokenTarget":
        """Keep the frozen tokenizer in eval mode whatever the student's mode."""
        super().train(mode)
        self.tokenizer.eval()
        return self

    @torch.no_grad()
    def forward(self, ctx: StepContext, view: EncodedView) -> torch.Tensor:
        codes = self.tokenizer.encode(ctx.batch["image"])  # [B,h,w]
        if tuple(codes.shape[1:]) != self.grid:
            raise RuntimeError(f"tokenizer gave a {tuple(codes.shape[1:])} code grid for a {self.grid} patch grid")
        return codes.flatten(1)  # [B,N]


COMPONENTS = [ComponentSpec("target", "discrete_tokens", DiscreteTokenTarget, {
    "type": "object", "additionalProperties": False, "required": ["tokenizer"],
    "properties": {
        "tokenizer": {"type": "string", "x-framework-path": "any",
                      "description": "Trained image tokenizer: a run directory of a tokenizer_training recipe (latest "
                                     "checkpoint), a checkpoint directory (<run>/checkpoints/step_N), or a "
                                     ".safetensors file from plugins.image_tokenizers.storage.export_tokenizer. "
                                     "Relative paths are from the working directory."},
        "objective": {"type": ["string", "null"], "default": None,
                      "description": "Name of the tokenizer_training objective in that run (null: its only one)."},
        "num_codes": {"type": ["integer", "null"], "minimum": 2, "default": None,
                      "description": "The tokenizer's codebook size, checked when it is read; lets validation and "
                                     "`framework info` build the recipe where the tokenizer is absent."},
    },
}, "Code ids of a frozen pretrained image tokenizer (VQ-VAE / dVAE), classified with cross-entropy.")]
