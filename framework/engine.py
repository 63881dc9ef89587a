"""DeepSpeed engine set-up: param groups, learning-rate schedule and the ds config.

Every run goes through DeepSpeed (ZeRO 0-3). We hand it the recipe's ``optimizer``
component (fused AdamW by default) over one param group per (lr multiplier, weight decay)
pair and its ``schedule`` component as a ``LambdaLR``, so per-component multipliers
survive ZeRO's wrapping of the optimizer (DeepSpeed's own scheduler config would overwrite
group learning rates). Components are in ``plugins/optim``; their base classes in
:mod:`framework.optim`.
"""

from __future__ import annotations

import sys
from typing import Any, Callable, Mapping, Optional

import torch
from torch import nn

from framework.distributed import is_main_process
from framework.registry import (
    COMPONENT_KEYWORD,
    Registry,
    default_registry,
    fill_defaults,
)
from framework.validation import core_schema


def no_decay_names(model: nn.Module) -> set[str]:
    """Parameters exempt from weight decay: norms, biases (any 0-/1-D tensor), embedding
    tables, and tokens/positions a module lists through timm's ``no_weight_decay()``."""
    names = {name for name, p in model.named_parameters() if p.ndim < 2}
    for module_name, module in model.named_modules():
        prefix = f"{module_name}." if module_name else ""
        if isinstance(module, nn.Embedding):
            names.update(prefix + n for n, _ in module.named_parameters())
        listed = getattr(module, "no_weight_decay", None)
        if callable(listed):
            names.update(prefix + n for n in listed())
    return names


def lr_multiplier(name: str, multipliers: Mapping[str, float]) -> float:
    """The multiplier of the longest prefix of ``name`` in ``multipliers`` (1.0 if none)."""
    best, value = -1, 1.0
    for prefix, mult in multipliers.items():
        if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
            best, value = len(prefix), mult
    return value


def param_groups(model: nn.Module, optim: Mapping[str, Any], lr: float) -> list[dict[str, Any]]:
    """One group per (multiplier, decay); multiplier 0 freezes the parameters instead."""
    skip_decay = no_decay_names(model)
    groups: dict[tuple[float, bool], dict[str, Any]] = {}
    for name, param in model.named_parameters():
        mult = lr_multiplier(name, optim["lr_multipliers"])
        if mult == 0:
            param.requires_grad_(False)
        if not param.requires_grad:
            continue
        decay = name not in skip_decay
        group = groups.setdefault((mult, decay), {
            "params": [], "names": [], "lr": lr * mult, "lr_scale": mult,
            "weight_decay": optim["weight_decay"] if decay else 0.0,
        })
        group["params"].append(param)
        group["names"].append(name)
    return list(groups.values())


def component_config(recipe: Mapping[str, Any], section: str, registry: Optional[Registry] = None) -> dict[str, Any]:
    """The recipe's ``optim`` or ``schedule`` component entry with its ``type`` (default
    ``adamw`` / ``cosine``) and every params default of that component filled in."""
    registry = registry or default_registry()
    node = core_schema()["properties"][section]
    entry = fill_defaults({"properties": {section: node}}, {section: recipe.get(section, {})})[section]
    return fill_defaults(registry.get(node[COMPONENT_KEYWORD], entry["type"]).schema, entry)


def schedule_factor(recipe: Mapping[str, Any], lr: float,
                    registry: Optional[Registry] = None) -> Callable[[int], float]:
    """Multiplier of each group's peak lr at optimiser step ``t`` (0-based): the recipe's
    ``schedule`` component over ``train.steps`` steps with peak ``lr``."""
    registry = registry or default_registry()
    schedule = registry.build("schedule", component_config(recipe, "schedule", registry))
    total_steps = recipe["train"]["steps"]
    return lambda step: schedule(step, total_steps=total_steps, peak_lr=lr)


def deepspeed_config(recipe: Mapping[str, Any], world_size: int) -> dict[str, Any]:
    """The DeepSpeed config dict of a recipe; raises if the batch sizes do not divide."""
    train, ds = recipe["train"], recipe["deepspeed"]
    per_step = train["micro_batch"] * world_size
    if train["global_batch"] % per_step:
        raise ValueError(
            f"train.global_batch={train['global_batch']} is not a multiple of train.micro_batch "
            f"({train['micro_batch']}) x processes ({world_size}); set global_batch to a multiple of {per_step}"
        )
    config = {
        "train_batch_size": train["global_batch"],
        "train_micro_batch_size_per_gpu": train["micro_batch"],
        "gradient_accumulation_steps": train["global_batch"] // per_step,
        "gradient_clipping": train["grad_clip"],
        "zero_optimization": {"stage": ds["zero_stage"]},
        # bf16 is autocast over fp32 weights: master weights, gradients and the optimizer
        # stay fp32 and every component sees one input dtype (DeepSpeed's own bf16 mode
        # casts the weights but not the batch or non-parameter tensors).
        "torch_autocast": {"enabled": train["precision"] == "bf16", "dtype": "bfloat16"},
        "zero_allow_untested_optimizer": True,
        "steps_per_print": 2**31 - 1,
        "wall_clock_breakdown": False,
    }
    extra = dict(ds["config"])  # only the keys the schema allows (no checkpoint-loading options)
    config["zero_optimization"].update(extra.pop("zero_optimization", {}))  # tuning keeps zero_stage's stage
    config.update(extra)
    return config


def peak_lr(recipe: Mapping[str, Any], registry: Optional[Registry] = None) -> float:
    """The recipe's peak lr, scaled by global_batch/256 when ``optim.scale_lr_with_batch``."""
    optim = component_config(recipe, "optim", registry)
    scale = recipe["train"]["global_batch"] / 256 if optim["scale_lr_with_batch"] else 1.0
    return optim["lr"] * scale


def build_optimizer(recipe: Mapping[str, Any], model: nn.Module, registry: Optional[Registry] = None,
                    ) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """The recipe's ``optim`` component over :func:`param_groups` of ``model``, and its
    ``schedule`` component as a ``LambdaLR`` of every group's peak lr."""
    registry = registry or default_registry()
    config = component_config(recipe, "optim", registry)
    lr = peak_lr(recipe, registry)
    groups = param_groups(model, config, lr)
    for group in groups:
        group.pop("names")
    optimizer = registry.build("optimizer", config)(groups, lr=lr)
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule_factor(recipe, lr, registry))


def prepare_each_step(optimizer: torch.optim.Optimizer, max_norm: float, fill_missing: bool) -> None:
    """Before each step of ``optimizer``: with ``fill_missing``, give every trainable
    parameter that got no gradient a zero one, as DeepSpeed's gradient all-reduce does (so
    AdamW still decays it, as on N processes); then clip the global gradient norm to
    ``max_norm`` (0: no clipping) with torch's foreach kernels and no host sync (DeepSpeed's
    ZeRO-0 clipping takes one norm per parameter and copies ``max_norm`` to the device)."""

    params = [p for group in optimizer.param_groups for p in group["params"] if p.requires_grad]

    def prepare(*_: Any) -> None:
        if fill_missing:
            for param in params:
                if param.grad is None:
                    param.grad = torch.zeros_like(param)
        if max_norm:
            torch.nn.utils.clip_grad_norm_([p for p in params if p.grad is not None], max_norm, foreach=True)

    optimizer.register_step_pre_hook(prepare)


def _grads_to_none(model: nn.Module) -> Callable[[], None]:
    """What DeepSpeed's ``engine.zero_grad`` does after each plain step (every parameter's
    grad to ``None``) over a list collected once: DeepSpeed walks ``named_parameters()``
    every step, a cost comparable to a tiny model's optimizer step."""
    params = list(model.parameters())

    def zero_grad() -> None:
        for param in params:
            param.grad = None

    return zero_grad


def deepspeed_wraps_optimizer(config: Mapping[str, Any]) -> bool:
    """Whether DeepSpeed replaces our optimizer by a wrapper stepping its own master copies
    (ZeRO, or its fp16 / bf16 / amp modes, which a recipe may enable in ``deepspeed.config``)."""
    modes = (config.get(key) or {} for key in ("fp16", "bf16", "amp"))
    return config["zero_optimization"]["stage"] > 0 or any(mode.get("enabled", False) for mode in modes)


def build_engine(recipe: Mapping[str, Any], model: nn.Module, world_size: int,
                 registry: Optional[Registry] = None) -> Any:
    """Wrap ``model`` in a DeepSpeed engine with the recipe's optimizer and schedule
    (:func:`build_optimizer`; ``registry`` defaults to every installed plugin).

    When DeepSpeed steps our optimizer itself (no ZeRO, no DeepSpeed precision mode) the
    optimizer clips gradients in a pre-step hook (:func:`prepare_each_step`), and a single
    process skips DeepSpeed's gradient all-reduce, which would only flatten and copy every
    gradient; otherwise DeepSpeed clips and reduces its own copies.
    """
    from framework.deepspeed_setup import import_deepspeed

    deepspeed = import_deepspeed()
    optimizer, scheduler = build_optimizer(recipe, model, registry)
    config = deepspeed_config(recipe, world_size)
    plain = not deepspeed_wraps_optimizer(config)
    if plain:
        prepare_each_step(optimizer, config["gradient_clipping"], fill_missing=world_size == 1)
        config["gradient_clipping"] = 0.0
    engine, _, _, _ = deepspeed.initialize(model=model, optimizer=optimizer, lr_scheduler=scheduler, config=config)
    if plain and world_size == 1:
        engine.enable_backward_allreduce = False
    if plain:
        engine.zero_grad = _grads_to_none(model)
    stage = config["zero_optimization"]["stage"]
    if world_size == 1 and stage > 0 and "zero_optimization" not in recipe["deepspeed"]["config"] and is_main_process():
        print(f"note: deepspeed.zero_stage {stage} partitions nothing on one process "
              "and only adds gradient-bucket copies; --set deepspeed.zero_stage=0 runs the same update faster here",
              file=sys.stderr)
    return engine
