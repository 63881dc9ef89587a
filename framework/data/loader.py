"""Training and evaluation DataLoaders.

``build_train_loader`` wires a source through :class:`SampleLoader` (read, check,
augment) and :class:`Collator` (tokenise, pad) with a :class:`ResumableDistributedSampler`;
``iterate_forever`` is the loop's view of it: an endless batch stream that keeps the
sampler's position and the bad-sample counts current. Typical use::

    loader, sampler = build_train_loader(recipe, dataset, tokenizer, rank=r, world_size=w,
                                         micro_batch=b, seed=s)
    sampler.load_state_dict(checkpoint["data"])          # when resuming
    health = DataHealth(data_config(recipe)["max_bad_fraction"], min_seen=min(256, len(dataset)))
    for batch in iterate_forever(loader, sampler, health):
        ...                                              # log health.bad / health.fraction
    checkpoint["data"] = sampler.state_dict()
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Optional

import torch
from torch.utils.data import DataLoader, Dataset
from transformers import PreTrainedTokenizerBase

from framework.data.build import data_config
from framework.data.collate import Collator
from framework.data.sampler import ResumableDistributedSampler
from framework.data.samples import DataHealth, SampleLoader
from framework.data.stream import StreamLoader, StreamPosition
from framework.data.transforms import build_transform
from framework.seeding import seed_everything
from framework.types import Batch


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` (and torch, again) in a worker from the torch seed the
    DataLoader gave it (itself drawn from the loader's seeded generator), for sources that
    use them."""
    seed_everything(torch.initial_seed())


def _loader(dataset: Dataset, collator: Collator, *, batch_size: int, num_workers: int, sampler: Any,
            drop_last: bool, generator_seed: int) -> DataLoader:
    return DataLoader(
        dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last, collate_fn=collator,
        num_workers=num_workers, pin_memory=torch.cuda.is_available(), worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(generator_seed), persistent_workers=num_workers > 0,
    )


def build_train_loader(recipe: Mapping[str, Any], dataset: Dataset, tokenizer: PreTrainedTokenizerBase, *, rank: int,
                       world_size: int, micro_batch: int, seed: int,
                       start_sample: int = 0) -> tuple[DataLoader, ResumableDistributedSampler | StreamPosition]:
    """An endless, augmented, per-rank DataLoader of ``micro_batch`` samples and its sampler.

    Map-style sources get a :class:`ResumableDistributedSampler`; streaming sources (with
    a ``stream`` method, e.g. ``webdataset``) a :class:`StreamPosition` with the same
    ``advance`` / ``state_dict`` / ``load_state_dict``.

    ``start_sample`` is the global number of samples already consumed (all ranks); the
    sampler's ``load_state_dict`` does the same from a checkpoint. Workers come from
    ``data.num_workers``; memory is pinned when CUDA is available.
    """
    cfg = data_config(recipe)
    transform = build_transform(cfg, train=True)
    collator = Collator(tokenizer, cfg["max_text_len"], seed=seed, image_size=cfg["image_size"])
    if hasattr(dataset, "stream"):
        position = StreamPosition(world_size, start=start_sample)
        stream = StreamLoader(dataset, transform, seed=seed, rank=rank, world_size=world_size,
                              batch_size=micro_batch, position=position)
        loader = _loader(stream, collator, batch_size=micro_batch, num_workers=cfg["num_workers"], sampler=None,
                         drop_last=True, generator_seed=seed * 65_537 + rank)
        return loader, position
    sampler = ResumableDistributedSampler(len(dataset), rank, world_size, seed, shuffle=True, start=start_sample,
                                          block=micro_batch)
    samples = SampleLoader(dataset, transform, seed=seed)
    loader = _loader(samples, collator, batch_size=micro_batch, num_workers=cfg["num_workers"], sampler=sampler,
                     drop_last=True, generator_seed=seed * 65_537 + rank)
    return loader, sampler


def build_eval_loader(recipe: Mapping[str, Any], dataset: Dataset, tokenizer: PreTrainedTokenizerBase, *,
                      batch_size: int, rank: int = 0, world_size: int = 1) -> DataLoader:
    """Every sample of ``dataset`` once, in order (strided over ranks), without augmentation.

    Each batch's ``index`` says which samples it holds; unusable samples are replaced by
    the next good one, as in training, and named in ``bad_samples``.
    """
    cfg = data_config(recipe)
    samples = SampleLoader(dataset, build_transform(cfg, train=False), seed=0)
    collator = Collator(tokenizer, cfg["max_text_len"], seed=0, image_size=cfg["image_size"])
    keys = [(0, i) for i in range(rank, len(dataset), world_size)]
    return _loader(samples, collator, batch_size=batch_size, num_workers=cfg["num_workers"], sampler=keys,
                   drop_last=False, generator_seed=rank)


def iterate_forever(loader: DataLoader, sampler: ResumableDistributedSampler | StreamPosition,
                    health: Optional[DataHealth] = None) -> Iterator[Batch]:
    """Yield batches without end, advancing ``sampler`` by each batch handed out (so its
    ``state_dict`` after training on a batch resumes at the next one) and recording
    skipped samples in ``health`` (which raises past ``data.max_bad_fraction``)."""
    for batch in loader:
        bad = batch.pop("bad_samples")
        size = batch["index"].shape[0]
        if health is not None:
            health.record(size, bad)
        sampler.advance(size)
        yield batch
