"""Streaming (iterable) sources in the training pipeline: shard split, bad samples, resume.

A streaming source has ``stream(seed=, reader=, readers=)`` yielding sample dicts forever
(bad ones as ``{"error": reason}``); reader ``rank * workers + worker`` of ``readers``
reads its own shards. :class:`StreamLoader` checks and transforms the samples like
:class:`~framework.data.samples.SampleLoader`; :class:`StreamPosition` plays the
sampler's part in checkpoints. DataLoader workers hand out batches round-robin, so
on resume each worker drops exactly the batches it had produced before — re-reading
(not training on) them, which costs time proportional to the position.
"""

from __future__ import annotations

from typing import Any, Iterator

from torch.utils.data import IterableDataset, get_worker_info

from framework.data.samples import READ_ERRORS, check_sample, sample_rng, sample_seed


class StreamPosition:
    """Global samples consumed (all ranks) of a streaming source; same API as the sampler."""

    def __init__(self, world_size: int, start: int = 0) -> None:
        self.world_size, self.position = world_size, start

    def advance(self, local_samples: int) -> None:
        self.position += local_samples * self.world_size

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["world_size"] != self.world_size:
            raise ValueError(f"a streaming source resumes only on the same number of ranks ({state['world_size']}), "
                             f"not {self.world_size}: shards are split per rank")
        self.position = int(state["position"])


class StreamLoader(IterableDataset):
    """This rank's share of a streaming source, checked and transformed, in batch-sized runs."""

    def __init__(self, source: Any, transform: Any, *, seed: int, rank: int, world_size: int, batch_size: int,
                 position: StreamPosition) -> None:
        self.source, self.transform, self.seed = source, transform, seed
        self.rank, self.world_size, self.batch_size, self.position = rank, world_size, batch_size, position

    def __iter__(self) -> Iterator[dict[str, Any]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        done = self.position.position // (self.world_size * self.batch_size)  # local batches already trained on
        skip = max(0, -(-(done - worker) // workers)) * self.batch_size  # this worker's share of them
        reader = self.rank * workers + worker
        bad: list[str] = []
        produced = 0
        for sample in self.source.stream(seed=self.seed, reader=reader, readers=self.world_size * workers):
            name = sample.pop("name", None) or f"reader {reader} sample {produced}"
            try:
                if "error" in sample:
                    raise ValueError(sample["error"])
                check_sample(sample)
            except READ_ERRORS as exc:
                bad.append(f"{name}: {exc}")
                continue
            produced += 1
            if produced <= skip:
                bad.clear()  # counted before the checkpoint
                continue
            with sample_rng(sample_seed(self.seed, reader, produced)):
                out = self.transform(sample)
            out.update(index=produced, epoch=0, bad=bad)
            bad = []
            yield out
