"""Activation checkpointing for any component built of transformer blocks (``train.activation_checkpointing``).

Gradient checkpointing (Chen et al. 2016, "Training Deep Nets with Sublinear Memory
Cost"): a checkpointed block keeps only its inputs during the forward pass and recomputes
its activations in the backward pass, so activation memory falls from every block's
intermediates to one tensor per block, for about one more forward of those blocks.

It is generic: in each chosen component slot, every transformer block (an element of an
``nn.ModuleList`` / ``nn.Sequential`` whose class name ends in ``Block`` or ``Layer``: timm's
``Block``, transformers' ``BertLayer``, ``framework_plugins._layers.bert.BertCrossLayer``)
runs its forward through ``torch.utils.checkpoint.checkpoint(..., use_reentrant=False)``.
Only the bound ``forward`` of each block changes, so parameter names, ``state_dict``,
checkpoints and exports are those of the plain model; dropout draws the same numbers in the
recomputation (checkpoint restores the RNG state), so losses and gradients are unchanged.
Blocks run plainly in eval mode and under ``no_grad`` (teachers, evaluation).
"""

from __future__ import annotations

import types
from collections.abc import Iterable, Mapping
from typing import Any

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

SLOTS = ("image_encoder", "text_encoder", "fusion", "decoders")
"""What ``train.activation_checkpointing: true`` covers; a list may also name ``decoders.NAME``."""

BLOCK_SUFFIXES = ("Block", "Layer")

Setting = bool | Iterable[str]


def transformer_blocks(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(path, block) of every transformer block under ``module``, outermost first (a block
    inside a chosen block is left to it)."""
    found: list[tuple[str, nn.Module]] = []
    for path, sub in module.named_modules():
        if not isinstance(sub, (nn.ModuleList, nn.Sequential)):
            continue
        for index, block in enumerate(sub):
            name = f"{path}.{index}" if path else str(index)
            inside = any(name.startswith(f"{outer}.") for outer, _ in found)
            if type(block).__name__.endswith(BLOCK_SUFFIXES) and not inside:
                found.append((name, block))
    return found


def _checkpointed_forward(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    """The block's class ``forward`` through a non-reentrant checkpoint while training with
    gradients; plainly otherwise. Bound to the block with ``types.MethodType`` so that a
    ``deepcopy`` of the model (an EMA teacher) binds it to the copy."""
    forward = type(self).forward
    if self.training and torch.is_grad_enabled():
        return checkpoint(forward, self, *args, use_reentrant=False, **kwargs)
    return forward(self, *args, **kwargs)


def chosen_slots(setting: Setting) -> list[str]:
    """The slots ``setting`` (false, true or a list of slots) checkpoints."""
    if setting is True:
        return list(SLOTS)
    if setting is False or setting is None:
        return []
    return list(setting)


def slot_modules(model: nn.Module, slot: str) -> list[tuple[str, nn.Module]]:
    """(path, module) of one slot of a RecipeModel: ``image_encoder``, ``text_encoder``,
    ``fusion``, ``decoders`` (each decoder) or ``decoders.NAME``. Raises ``KeyError`` for a
    slot the model does not have."""
    if slot == "decoders":
        return [(f"decoders.{name}", decoder) for name, decoder in getattr(model, "decoders", {}).items()]
    if slot.startswith("decoders."):
        name = slot.split(".", 1)[1]
        decoders = getattr(model, "decoders", {})
        if name not in decoders:
            raise KeyError(f"no decoder '{name}' (decoders: {', '.join(decoders) or 'none'})")
        return [(slot, decoders[name])]
    if slot not in SLOTS or getattr(model, slot, None) is None:
        raise KeyError(f"the model has no {slot}")
    return [(slot, getattr(model, slot))]


def apply_activation_checkpointing(model: nn.Module, setting: Setting) -> list[str]:
    """Checkpoint every transformer block of the slots ``setting`` names (true: every
    encoder, the fusion and every decoder the model has). Returns the checkpointed blocks'
    paths. A slot named explicitly must exist and hold blocks; ``true`` skips slots the
    model lacks or that hold none (a patch-embedding encoder)."""
    from framework.validation import RecipeValidationError, ValidationIssue

    explicit = setting is not True
    issues, wrapped = [], []
    for index, slot in enumerate(chosen_slots(setting)):
        at = f"$.train.activation_checkpointing[{index}]"
        try:
            modules = slot_modules(model, slot)
        except KeyError as exc:
            if explicit:
                issues.append(ValidationIssue(at, f"cannot checkpoint '{slot}': {exc.args[0]}"))
            continue
        blocks = [(f"{path}.{name}", block) for path, module in modules for name, block in transformer_blocks(module)]
        if explicit and not blocks:
            issues.append(ValidationIssue(at, f"'{slot}' has no transformer blocks to checkpoint"))
        for path, block in blocks:
            if getattr(block.forward, "__func__", None) is not _checkpointed_forward:
                block.forward = types.MethodType(_checkpointed_forward, block)
            wrapped.append(path)
    if issues:
        raise RecipeValidationError(issues)
    return wrapped


def recipe_setting(recipe: Mapping[str, Any]) -> Setting:
    """The recipe's ``train.activation_checkpointing`` (false when absent)."""
    return recipe.get("train", {}).get("activation_checkpointing", False)
