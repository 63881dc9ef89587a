"""A distributed sampler whose position survives checkpoints: no replay, no skip.

The order is one infinite stream: the concatenation of a fresh permutation of the
dataset per epoch (seeded by ``(seed, epoch)``). The stream is cut into chunks of
``block`` positions and chunk ``k`` goes to rank ``k % world_size``, so ranks read
disjoint samples that together cover every epoch. With ``block`` = the micro-batch, the
global batch of a step is one contiguous piece of the stream in rank order — the same
samples in the same order whatever the number of ranks — and
the state is one number — samples consumed by all ranks — which is valid for any
number of ranks (a run may resume on a different world size). Epochs are not padded or
truncated; a batch may straddle two epochs.
"""

from __future__ import annotations

from itertools import count
from typing import Any, Iterator

import torch
from torch.utils.data import Sampler


class ResumableDistributedSampler(Sampler):
    """Yields ``(epoch, index)`` keys for one rank, forever, starting at global ``start``.

    The training loop calls :meth:`advance` with the samples it consumed (``iterate_forever``
    does) so that :meth:`state_dict` records what was trained on, not what workers
    prefetched. Load state before creating the DataLoader iterator.
    """

    def __init__(self, length: int, rank: int, world_size: int, seed: int, shuffle: bool = True, start: int = 0,
                 block: int = 1) -> None:
        if length < 1:
            raise ValueError("cannot sample from an empty dataset")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside [0, world_size={world_size})")
        self.length, self.rank, self.world_size = length, rank, world_size
        if start % (block * world_size):
            raise ValueError(f"start={start} is not a multiple of block x world_size = {block * world_size}")
        self.seed, self.shuffle, self.position, self.block = seed, shuffle, start, block
        self._perm: tuple[int, torch.Tensor] | None = None

    def permutation(self, epoch: int) -> torch.Tensor:
        """The order of epoch ``epoch`` (identity without shuffling)."""
        if not self.shuffle:
            return torch.arange(self.length)
        if self._perm is None or self._perm[0] != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._perm = (epoch, torch.randperm(self.length, generator=generator))
        return self._perm[1]

    def __iter__(self) -> Iterator[tuple[int, int]]:
        first_chunk = self.position // self.block + self.rank
        for chunk in count(first_chunk, self.world_size):
            for p in range(chunk * self.block, (chunk + 1) * self.block):
                epoch, j = divmod(p, self.length)
                yield epoch, int(self.permutation(epoch)[j])

    @property
    def epoch(self) -> int:
        return self.position // self.length

    def advance(self, local_samples: int) -> None:
        """Record that every rank consumed ``local_samples`` more samples."""
        self.position += local_samples * self.world_size

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "seed": self.seed, "length": self.length, "shuffle": self.shuffle}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "length", "shuffle"):
            if state[key] != getattr(self, key):
                raise ValueError(f"cannot resume the data order: the checkpoint's sampler has {key}={state[key]!r} "
                                 f"but this run has {getattr(self, key)!r}; resume with the same data and seed")
        self.position = int(state["position"])
