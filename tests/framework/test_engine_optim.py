"""The optimizer and schedule components the engine builds: today's lr curve, param groups,
fused AdamW, recipe sections without a type, bad params and a plugin's own optimizer."""

from __future__ import annotations

import jsonschema
import pytest
import torch
from torch import nn

from framework import ComponentSpec
from framework.engine import build_optimizer, component_config, peak_lr, schedule_factor
from framework.optim import OptimizerComponent, optimizer_schema
from framework.registry import Registry
from framework.validation import RecipeValidationError
from framework_plugins import optim as optim_plugin
from tests.helpers import registry_of, tiny_recipe

# The multipliers of the hard-coded schedule before it became a component (warm-up 3,
# 10 steps, min_lr 1e-4 of a 1e-3 peak), to the last bit.
CURVES = {
    "cosine": [0.3333333333333333, 0.6666666666666666, 1.0, 1.0, 0.9554359905560885, 0.8305704108364301,
               0.6501344202803414, 0.44986557971965857, 0.26942958916356996, 0.14456400944391146, 0.1, 0.1],
    "linear": [0.3333333333333333, 0.6666666666666666, 1.0, 1.0, 0.8714285714285714, 0.7428571428571429,
               0.6142857142857142, 0.48571428571428577, 0.3571428571428571, 0.22857142857142862, 0.1, 0.1],
    "constant": [0.3333333333333333, 0.6666666666666666] + [1.0] * 10,
}


def recipe(**sections):
    return {"train": {"steps": 10, "global_batch": 32}, **sections}


@pytest.mark.parametrize("kind", sorted(CURVES))
def test_schedules_reproduce_the_hard_coded_curves(kind):
    factor = schedule_factor(recipe(schedule={"type": kind, "warmup_steps": 3, "min_lr": 1e-4}), 1e-3)
    assert [factor(t) for t in range(12)] == CURVES[kind]


def test_sections_without_a_type_get_the_defaults():
    assert component_config(recipe(), "schedule")["type"] == "cosine"
    optim = component_config(recipe(optim={"lr": 2e-3}), "optim")
    assert optim == {"type": "adamw", "lr": 2e-3, "scale_lr_with_batch": False, "weight_decay": 0.05,
                     "lr_multipliers": {}, "betas": [0.9, 0.999], "eps": 1e-8}
    assert peak_lr(recipe(optim={"lr": 2e-3, "scale_lr_with_batch": True})) == pytest.approx(2e-3 * 32 / 256)
    validated = tiny_recipe("schedule={\"warmup_steps\": 2}")
    assert validated["schedule"] == {"type": "cosine", "warmup_steps": 2} and validated["optim"]["type"] == "adamw"


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(5, 4)
        self.body = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.head = nn.Linear(4, 2)


def test_fused_adamw_over_multiplier_and_decay_groups():
    model = Tiny()
    optimizer, scheduler = build_optimizer(recipe(
        optim={"lr": 1e-3, "weight_decay": 0.1, "betas": [0.8, 0.9], "eps": 1e-6,
               "lr_multipliers": {"head": 0.5, "norm": 0}},
        schedule={"type": "constant", "warmup_steps": 0}), model)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"]
    assert optimizer.defaults["betas"] == (0.8, 0.9) and optimizer.defaults["eps"] == 1e-6
    groups = {(g["lr_scale"], g["weight_decay"]): len(g["params"]) for g in optimizer.param_groups}
    # body.weight decays; biases and the embedding table do not; head at half lr; norm frozen
    assert groups == {(1.0, 0.1): 1, (1.0, 0.0): 2, (0.5, 0.1): 1, (0.5, 0.0): 1}
    assert not model.norm.weight.requires_grad
    assert sorted(g["lr"] for g in optimizer.param_groups) == [5e-4, 5e-4, 1e-3, 1e-3]
    assert isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR)


@pytest.mark.parametrize("override, path", [
    ("optim.betas=[0.9, 1.0]", "$.optim.betas[1]"),
    ("optim.momentum=0.9", "$.optim"),
    ("optim.type=\"adam\"", "$.optim.type"),
    ("schedule.warmup=3", "$.schedule"),
    ("schedule.type=\"cosin\"", "$.schedule.type"),
    ("schedule.min_lr=-1", "$.schedule.min_lr"),
])
def test_validate_refuses_bad_optimizer_and_schedule_params(override, path):
    with pytest.raises(RecipeValidationError) as info:
        tiny_recipe(override)
    assert [issue.path for issue in info.value.issues] == [path]


def test_schemas_are_valid_and_share_the_engine_keys():
    registry = registry_of(optim_plugin, "optim")
    for spec in registry.specs("optimizer") + registry.specs("schedule"):
        jsonschema.Draft202012Validator.check_schema(spec.schema)
    assert {"lr", "weight_decay", "lr_multipliers", "scale_lr_with_batch"} <= set(
        registry.get("optimizer", "adamw").schema["properties"])


class SGD(OptimizerComponent):
    def __init__(self, *, momentum: float, **common) -> None:
        super().__init__(**common)
        self.momentum = momentum

    def __call__(self, param_groups, *, lr):
        return torch.optim.SGD(param_groups, lr=lr, momentum=self.momentum)


def test_a_plugin_optimizer_is_built_through_the_registry():
    registry = registry_of(optim_plugin, "optim")
    schema = optimizer_schema({"momentum": {"type": "number", "default": 0.9, "description": "Momentum."}})
    registry.add(ComponentSpec("optimizer", "sgd", SGD, schema, "SGD with momentum.", "framework-sgd==0"))
    optimizer, _ = build_optimizer(recipe(optim={"type": "sgd", "lr": 0.1}), Tiny(), registry)
    assert isinstance(optimizer, torch.optim.SGD) and optimizer.defaults["momentum"] == 0.9
    assert {g["lr"] for g in optimizer.param_groups} == {0.1}


def test_a_registry_without_the_optimizer_names_it():
    with pytest.raises(Exception, match="no optimizer named 'adamw'"):
        build_optimizer(recipe(), Tiny(), Registry())
