"""Small tensor helpers shared by components: patchify, gather by index, restore order."""

from __future__ import annotations

from typing import Optional

import torch


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """[B,C,H,W] images -> [B,N,p*p*C] patches in row-major grid order (MAE layout)."""
    b, c, h, w = images.shape
    p = patch_size
    assert h % p == 0 and w % p == 0, f"image {h}x{w} is not divisible by patch size {p}"
    x = images.reshape(b, c, h // p, p, w // p, p)  # [B,C,gh,p,gw,p]
    return x.permute(0, 2, 4, 3, 5, 1).reshape(b, (h // p) * (w // p), p * p * c)


def unpatchify(patches: torch.Tensor, patch_size: int, grid: tuple[int, int]) -> torch.Tensor:
    """Inverse of :func:`patchify`: [B,N,p*p*C] -> [B,C,H,W]."""
    b, n, d = patches.shape
    p, (gh, gw) = patch_size, grid
    c = d // (p * p)
    x = patches.reshape(b, gh, gw, p, p, c)  # [B,gh,gw,p,p,C]
    return x.permute(0, 5, 1, 3, 2, 4).reshape(b, c, gh * p, gw * p)


def gather_tokens(x: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """x [B,L,D], ids [B,K] -> x[b, ids[b]] as [B,K,D]."""
    if shared_rows(ids):
        return x.index_select(1, ids[0])
    return torch.gather(x, 1, ids.unsqueeze(-1).expand(-1, -1, x.shape[-1]))


def shared_rows(ids: torch.Tensor) -> bool:
    """Whether every row of ``ids`` [B,K] is one row expanded (a mask drawn once per batch):
    then one ``index_select`` does what a per-row gather would, with a cheaper backward."""
    return ids.shape[0] > 1 and ids.stride(0) == 0


def at_positions(x: torch.Tensor, ids: Optional[torch.Tensor]) -> torch.Tensor:
    """x [B,L] or [B,L,D] at positions ``ids`` [B,K] -> [B,K] or [B,K,D]; all of x when ``ids``
    is None. Objectives select scored positions this way rather than by a boolean mask,
    whose data-dependent result size would cost a host sync on a GPU."""
    if ids is None:
        return x
    if x.ndim == 3:
        return gather_tokens(x, ids)
    return x.index_select(1, ids[0]) if shared_rows(ids) else x.gather(1, ids)


def one_hot(labels: torch.Tensor, classes: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """labels [...] -> [..., classes] one-hot of ``dtype``. Unlike ``F.one_hot`` it does not
    check the labels' range on the host, which would sync a GPU."""
    out = torch.zeros(*labels.shape, classes, dtype=dtype, device=labels.device)
    return out.scatter_(-1, labels.unsqueeze(-1), 1)


def restore_sequence(visible: torch.Tensor, fill: torch.Tensor, ids_restore: torch.Tensor) -> torch.Tensor:
    """Put visible tokens [B,K,D] back in original order [B,L,D], ``fill`` [D] elsewhere.

    ``ids_restore`` is the inverse permutation of the shuffle whose first K entries were
    kept, so appending L-K fillers and gathering by it restores the original order.
    """
    b, k, d = visible.shape
    length = ids_restore.shape[1]
    filler = fill.to(visible.dtype).expand(b, length - k, d)  # [B,L-K,D]
    return gather_tokens(torch.cat([visible, filler], dim=1), ids_restore)  # [B,L,D]
