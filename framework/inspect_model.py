"""Model inspection: parameter counts per component and FLOPs per training sample.

FLOPs are counted by ``torch.utils.flop_counter`` over one training forward (and
backward) of the assembled model — every view, objective, extra fusion pass and teacher
forward the recipe causes — so they follow the recipe rather than a formula. The count
runs on the meta device (shapes, no values), so it takes seconds for a paper recipe.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from framework.bench.synthetic import synthetic_batch
from framework.build import build_shapes
from framework.model import RecipeModel
from framework.registry import Registry
from framework.types import Batch


def count_params(module: Optional[nn.Module], trainable_only: bool = False) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def params_by_component(model: RecipeModel, teacher: Optional[nn.Module]) -> dict[str, int]:
    """Parameter count of each top-level component (decoders and objectives by name). A tensor
    two components share (BERT's MLM decoder tied to the word embeddings) counts once, in the
    first that holds it, so the rows add up to the total."""
    components = {"image_encoder": model.image_encoder, "text_encoder": model.text_encoder}
    if model.fusion is not None:
        components["fusion"] = model.fusion
    components.update({f"decoders.{n}": m for n, m in model.decoders.items()})
    components.update({f"objectives.{n}": m for n, m in model.objectives.items()})
    seen: set[int] = set()
    counts = {}
    for name, module in components.items():
        own = [p for p in (module.parameters() if module is not None else ()) if id(p) not in seen]
        seen.update(id(p) for p in own)
        counts[name] = sum(p.numel() for p in own)
    counts["total"] = count_params(model)
    counts["total (trained)"] = count_params(model, trainable_only=True)
    if teacher is not None:
        counts["teacher (EMA, not trained)"] = count_params(teacher)
    return counts


@dataclass
class FlopReport:
    """FLOPs per sample of one training step: forward, and forward + backward."""

    forward: float
    train: float

    @property
    def forward_gmacs(self) -> float:
        return self.forward / 2e9


def counted_flops(step: Callable[[], torch.Tensor], rows: int) -> FlopReport:
    """FLOPs per sample of ``step`` (which returns a loss) forward, and forward + backward.

    Attention runs on SDPA's math backend while counting: the counter has no formula for
    the CPU's fused kernel and would leave attention out there."""
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        step()
    forward = counter.get_total_flops()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        step().backward()
    return FlopReport(forward=forward / rows, train=counter.get_total_flops() / rows)


def count_flops(model: RecipeModel, teacher: Any, batch: Batch) -> FlopReport:
    """FLOPs per sample of one training step of ``model`` on ``batch`` (masks seeded)."""
    report = counted_flops(lambda: model(batch, generator=torch.Generator().manual_seed(0), teacher=teacher).loss,
                           batch["input_ids"].shape[0])
    model.zero_grad(set_to_none=True)
    return report


def inspect_recipe(recipe: Mapping[str, Any], registry: Registry,
                   batch_size: int = 2) -> tuple[dict[str, int], FlopReport]:
    """A recipe's parameter counts and FLOPs per sample, counted on the meta device: shapes
    only, so a paper recipe needs no data, no weights and no memory for them. The batch
    is synthetic at the recipe's shapes (FLOPs depend on shapes, not on values)."""
    built = build_shapes(recipe, registry)
    generator = torch.Generator().manual_seed(recipe["train"]["seed"])
    batch = {k: v.to("meta") for k, v in synthetic_batch(recipe, batch_size, len(built.tokenizer), generator).items()}
    return params_by_component(built.model, built.teacher), count_flops(built.model, built.teacher, batch)
