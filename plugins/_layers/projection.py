"""A linear map between token widths that is free when the widths already agree."""

from __future__ import annotations

from torch import nn


def projection(in_dim: int, out_dim: int) -> nn.Module:
    """Linear map between widths, or identity when they already agree."""
    return nn.Identity() if in_dim == out_dim else nn.Linear(in_dim, out_dim)
