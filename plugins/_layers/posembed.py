"""Fixed sin-cos position embeddings (Vaswani et al. 2017; 2-D form of MAE, used by M3AE)."""

from __future__ import annotations

import torch


def sincos_1d(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions [L] -> [L,dim]: half sines, half cosines of geometric frequencies 1/10000^(2i/dim)."""
    if dim % 2:
        raise ValueError(f"a 1-D sin-cos embedding needs an even width, got {dim}")
    omega = 1.0 / 10000 ** (torch.arange(dim // 2, dtype=torch.float64) / (dim / 2))  # [dim/2]
    angles = positions.to(torch.float64)[:, None] * omega[None]  # [L,dim/2]
    return torch.cat([angles.sin(), angles.cos()], dim=1).float()  # [L,dim]


def sincos_2d(grid: tuple[int, int], dim: int) -> torch.Tensor:
    """[gh*gw, dim] for a row-major grid: first half encodes the row, second half the column."""
    if dim % 4:
        raise ValueError(f"a 2-D sin-cos embedding needs a width divisible by 4, got {dim}")
    rows, cols = torch.meshgrid(
        torch.arange(grid[0]), torch.arange(grid[1]), indexing="ij"
    )  # [gh,gw] each
    return torch.cat(
        [sincos_1d(rows.flatten(), dim // 2), sincos_1d(cols.flatten(), dim // 2)], dim=1
    )
