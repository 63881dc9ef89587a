"""Process-group set-up that works with no launcher, with torchrun and with deepspeed."""

from __future__ import annotations

import os
import socket
from datetime import timedelta

import torch
import torch.distributed as dist


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def device_for_rank() -> torch.device:
    """CUDA device of this local rank when CUDA is present, else the CPU."""
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", 0))
        torch.cuda.set_device(local_rank)
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


DEFAULT_COLLECTIVE_TIMEOUT_S = 600.0
"""``train.collective_timeout_s``'s default (the schema holds the same number)."""


def init_distributed(collective_timeout_s: float = DEFAULT_COLLECTIVE_TIMEOUT_S) -> tuple[int, int]:
    """Join (or create) the default process group; returns ``(rank, world_size)``.

    Without a launcher this becomes a one-process group on a free local port, so a run
    needs no ``torchrun``. The backend is nccl on CUDA and gloo on CPU. With several
    processes a watchdog (:mod:`framework.watchdog`) ends the job, naming the rank, when
    one stops responding for ``collective_timeout_s``; collectives time out after twice
    that (torch's default is 30 minutes), leaving the watchdog time to name the culprit.
    """
    timeout = timedelta(seconds=2 * collective_timeout_s)
    if not dist.is_initialized():
        os.environ.setdefault("RANK", "0")
        os.environ.setdefault("LOCAL_RANK", "0")
        os.environ.setdefault("WORLD_SIZE", "1")
        os.environ.setdefault("MASTER_ADDR", "127.0.0.1")
        if "MASTER_PORT" not in os.environ:
            os.environ["MASTER_PORT"] = str(_free_port())
        from framework.deepspeed_setup import import_deepspeed  # deferred: importing deepspeed costs seconds

        import_deepspeed().init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo",
                                   verbose=False, timeout=timeout)
    if dist.get_world_size() > 1 and dist.get_backend() != "gloo" and not _HOST_GROUP:
        _HOST_GROUP.append(dist.new_group(backend="gloo", timeout=timeout))  # collective: every rank creates it here
    if dist.get_world_size() > 1:
        from framework.watchdog import start_watchdog

        start_watchdog(dist.distributed_c10d._get_default_store(), dist.get_rank(), dist.get_world_size(),
                       collective_timeout_s)
    return dist.get_rank(), dist.get_world_size()


_HOST_GROUP: list[dist.ProcessGroup] = []


def host_group() -> dist.ProcessGroup | None:
    """The group for agreeing on host-side flags (e.g. a stop signal) without touching a
    GPU stream: a gloo group over every rank beside the nccl one, or None (the default
    group) when that is already gloo."""
    return _HOST_GROUP[0] if _HOST_GROUP else None


def is_main_process() -> bool:
    return not dist.is_initialized() or dist.get_rank() == 0


def barrier() -> None:
    if dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def gather_rows(tensor: torch.Tensor) -> torch.Tensor:
    """Concatenate ``tensor`` [B,...] from every rank in rank order (no gradient).

    Tensors whose dim 1 differs between ranks (e.g. boxes per image) are zero-padded to
    the largest size first.
    """
    world = dist.get_world_size()
    if tensor.ndim > 1:
        size = torch.tensor([tensor.shape[1]], device=tensor.device)
        dist.all_reduce(size, op=dist.ReduceOp.MAX)
        pad = int(size) - tensor.shape[1]
        if pad:
            tensor = torch.cat([tensor, tensor.new_zeros(tensor.shape[0], pad, *tensor.shape[2:])], dim=1)
    parts = [torch.empty_like(tensor) for _ in range(world)]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)


def local_rows(batch_size: int) -> slice:
    """This rank's rows of a batch gathered with :func:`gather_rows`."""
    rank = dist.get_rank() if dist.is_initialized() else 0
    return slice(rank * batch_size, (rank + 1) * batch_size)


def global_denominator(local_total: torch.Tensor) -> torch.Tensor:
    """Divide a rank's loss sum by this to get the global mean after rank averaging.

    DeepSpeed averages gradients (and we average logged losses) over ranks, so a rank's
    ``sum / (global_total / world_size)`` averages to ``sum over ranks / global_total``:
    exactly what one process with the whole batch computes, however items split over
    ranks. At least 1 item overall, so an empty selection gives a zero loss.
    """
    total = local_total.detach().float()
    if not (dist.is_initialized() and dist.get_world_size() > 1):
        return total.clamp(min=1)
    total = total.clone()
    dist.all_reduce(total)
    return total.clamp(min=1) / dist.get_world_size()

