"""Heads: small projections from features to a target space (linear, MLP, BERT MLM head)."""

from __future__ import annotations

from typing import Any

from timm.layers import Mlp
from torch import nn

from framework.api import BuildContext, ComponentSpec


def linear_head(*, bias: bool, context: BuildContext) -> nn.Module:
    """One linear layer ``in_dim -> out_dim`` (MaskVLM's FC heads, M3AE's heads)."""
    return nn.Linear(context["in_dim"], context["out_dim"], bias=bias)


def mlp_head(*, hidden: int, layernorm: bool, context: BuildContext) -> nn.Module:
    """One-hidden-layer MLP, e.g. MAMO's projector g and predictor h; ``hidden`` 0 means
    ``in_dim``. An optional LayerNorm on the input (BERT's MLM transform uses one)."""
    in_dim = context["in_dim"]
    mlp = Mlp(in_dim, hidden or in_dim, context["out_dim"], act_layer=nn.GELU)
    return nn.Sequential(nn.LayerNorm(in_dim), mlp) if layernorm else mlp


COMPONENTS = [
    ComponentSpec("head", "linear", linear_head, {
        "type": "object", "additionalProperties": False,
        "properties": {"bias": {"type": "boolean", "default": True, "description": "Add a bias."}},
    }, "A single linear layer."),
    ComponentSpec("head", "mlp", mlp_head, {
        "type": "object", "additionalProperties": False,
        "properties": {
            "hidden": {"type": "integer", "minimum": 0, "default": 0,
                       "description": "Hidden width (0: the input width)."},
            "layernorm": {"type": "boolean", "default": False, "description": "LayerNorm the input first."},
        },
    }, "One-hidden-layer GELU MLP (projector / predictor)."),
]

HEAD_SLOT: dict[str, Any] = {"x-framework-kind": "head", "default": {"type": "linear"},
                             "description": "Head from the features to the target (a `head` component)."}
