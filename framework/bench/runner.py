"""Benchmark a recipe: timed training steps through the real engine path, FLOPs, MFU.

The framework side builds exactly what :class:`framework.train.Trainer` builds
(:func:`framework.build.build_run`, ``build_engine``, the same device copies) and runs the
trainer's own :class:`framework.step.TrainStep` with one micro-batch per optimiser step,
timing each phase. The optional
reference side (:mod:`framework.bench.reference`) runs a plain-PyTorch step of the same
model on the same batches with the same timer.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Mapping, Optional

import torch

from framework import data as data_lib
from framework.bench.loading import images_per_second, keeps_up
from framework.bench.peaks import mfu, peak_tflops
from framework.bench.reference import with_defaults
from framework.bench.syncs import HostSyncRecorder
from framework.bench.synthetic import (
    StandInTokenizer,
    synthetic_batch,
    without_checkpoints,
)
from framework.bench.timing import (
    PhaseTimer,
    peak_memory_gb,
    reset_peak_memory,
    synchronize,
)
from framework.build import build_run
from framework.distributed import device_for_rank, init_distributed
from framework.engine import build_engine
from framework.inspect_model import counted_flops as count_step_flops
from framework.registry import Registry
from framework.step import TrainStep
from framework.train import to_device
from framework.types import Batch

SYNTHETIC_POOL = 4
"""Distinct synthetic batches cycled through (pinned on the host, copied every step)."""


@dataclass
class BenchOptions:
    """What to measure: ``steps`` timed steps after ``warmup`` untimed ones, at micro-batch
    ``batch`` (None: the recipe's), on the recipe's data or synthetic batches."""

    steps: int = 10
    warmup: int = 3
    batch: Optional[int] = None
    data: str = "recipe"
    vocab_size: int = 30522
    compile: bool = False
    flops_batch: int = 4
    loading_images: int = 256
    """Images timed through the recipe's loading pipeline (:mod:`framework.bench.loading`); 0: skip."""


def bench_recipe_config(recipe: Mapping[str, Any], options: BenchOptions) -> dict[str, Any]:
    """The recipe as benchmarked: one micro-batch per optimiser step, no checkpoint files
    when the data are synthetic, ``train.compile`` set by ``options.compile``."""
    out = without_checkpoints(recipe) if options.data == "synthetic" else {**recipe}
    batch = options.batch or recipe["train"]["micro_batch"]
    out["train"] = {**recipe["train"], "micro_batch": batch, "global_batch": batch,
                    "compile": options.compile or recipe["train"].get("compile", False)}
    return out


def batch_stream(recipe: Mapping[str, Any], registry: Registry, options: BenchOptions,
                 device: torch.device) -> tuple[Callable[[], Iterator[Batch]], Any]:
    """A factory of device batch iterators (one per side being timed) and the tokenizer."""
    batch = recipe["train"]["micro_batch"]
    if options.data == "synthetic":
        tokenizer = StandInTokenizer(options.vocab_size)
        generator = torch.Generator().manual_seed(recipe["train"]["seed"])
        pool = [synthetic_batch(recipe, batch, options.vocab_size, generator) for _ in range(SYNTHETIC_POOL)]
        if device.type == "cuda":
            pool = [{k: v.pin_memory() for k, v in b.items()} for b in pool]
        return (lambda: (to_device(b, device) for b in itertools.cycle(pool))), tokenizer
    dataset = data_lib.build_dataset(recipe, registry, split="train")
    tokenizer = data_lib.build_tokenizer(recipe, registry, dataset)

    def stream() -> Iterator[Batch]:
        loader, sampler = data_lib.build_train_loader(recipe, dataset, tokenizer, rank=0, world_size=1,
                                                      micro_batch=batch, seed=recipe["train"]["seed"], start_sample=0)
        health = data_lib.DataHealth(recipe["data"]["max_bad_fraction"], min_seen=min(256, len(dataset)))
        for b in data_lib.iterate_forever(loader, sampler, health):
            yield to_device(b, device)

    return stream, tokenizer


def counted_flops(step: Callable[[], torch.Tensor], rows: int) -> dict[str, float]:
    """Forward and forward+backward FLOPs per sample of ``step`` (which returns a loss)."""
    report = count_step_flops(step, rows)
    return {"forward_flops_per_sample": report.forward, "train_flops_per_sample": report.train}


def head_rows(batch: Batch, rows: int) -> Batch:
    return {k: v[:rows] for k, v in batch.items()}


def timed_loop(step: Callable[[Iterator[Batch], int, PhaseTimer], None], batches: Iterator[Batch],
               options: BenchOptions, device: torch.device, batch_size: int) -> dict[str, Any]:
    """Run ``warmup`` untimed then ``steps`` timed steps; throughput, phases, peak memory."""
    for i in range(options.warmup):
        step(batches, i, PhaseTimer(device))
    synchronize(device)
    reset_peak_memory(device)
    timer = PhaseTimer(device)
    start = time.perf_counter()
    for i in range(options.warmup, options.warmup + options.steps):
        step(batches, i, timer)
    synchronize(device)
    wall = time.perf_counter() - start
    return {"samples_per_s": options.steps * batch_size / wall, "wall_s": wall,
            **timer.summary(), **peak_memory_gb(device)}


def host_syncs(step: Callable[[Iterator[Batch], int, PhaseTimer], None], batches: Iterator[Batch], index: int,
               device: torch.device) -> dict[str, Any]:
    """Run one more (untimed) step under :class:`HostSyncRecorder`: how many ops made the
    host wait for the device, and where they were asked for. The batch is loaded first: the
    loader's host-side work is not the device's."""
    batch = next(batches)
    with HostSyncRecorder() as recorder:
        step(iter([batch]), index, PhaseTimer(device))
    return {"host_syncs_per_step": len(recorder.syncs), "host_syncs": sorted(set(recorder.summary()))}


def throughput(result: dict[str, Any], device_name: str) -> dict[str, Any]:
    """Achieved TFLOPS (train FLOPs x samples/s) and MFU against the device's peak."""
    peak = peak_tflops(device_name) if device_name != "cpu" else None
    tflops = result["train_flops_per_sample"] * result["samples_per_s"] / 1e12
    return {"achieved_tflops": tflops, "peak_tflops": peak,
            "mfu": mfu(result["train_flops_per_sample"], result["samples_per_s"], peak)}


def device_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def bench_framework(recipe: Mapping[str, Any], registry: Registry, options: BenchOptions,
                    reference: Optional[Callable[..., Any]] = None) -> dict[str, Any]:
    """Time the framework's step on ``recipe`` (already through :func:`bench_recipe_config`);
    with ``reference`` (see :mod:`framework.bench.reference`) time that too, on the same batches."""
    _, world_size = init_distributed()
    device = device_for_rank()
    train = recipe["train"]
    make_batches, tokenizer = batch_stream(recipe, registry, options, device)
    built = build_run(recipe, registry, tokenizer=tokenizer, read_data=False)
    model, teacher = built.model, built.teacher
    model.to(device)
    if teacher is not None:
        teacher.to(device)
    probe = head_rows(next(make_batches()), min(options.flops_batch, train["micro_batch"]))
    generator = torch.Generator().manual_seed(0)
    flops = counted_flops(lambda: model(probe, generator=generator, teacher=teacher).loss, probe["input_ids"].shape[0])
    model.zero_grad(set_to_none=True)
    if train["compile"]:
        model.compile_components()
    engine = build_engine(recipe, model, world_size)
    train_step = TrainStep(engine, teacher, seed=train["seed"], device=device)  # the trainer's step, guard included

    def step(batches: Iterator[Batch], index: int, timer: PhaseTimer) -> None:
        train_step(batches, index, timer)

    name = device_name(device)
    batches = make_batches()
    result = {**flops, **timed_loop(step, batches, options, device, train["micro_batch"]),
              **host_syncs(step, batches, options.warmup + options.steps, device)}
    out: dict[str, Any] = {"framework": {**result, **throughput(result, name)}}
    if reference is not None:
        del engine, model, teacher
        if device.type == "cuda":
            torch.cuda.empty_cache()
        ref = reference(with_defaults(recipe, registry), vocab_size=len(tokenizer), pad_id=tokenizer.pad_token_id,
                        mask_id=tokenizer.mask_token_id, device=device)
        ref_probe = head_rows(next(make_batches()), probe["input_ids"].shape[0])
        ref_flops = counted_flops(lambda: ref.loss(ref_probe), ref_probe["input_ids"].shape[0])
        ref.zero_grad()

        def ref_step(batches: Iterator[Batch], index: int, timer: PhaseTimer) -> None:
            timer.start_step()
            batch = next(batches)
            timer.mark()
            loss = ref.loss(batch)
            timer.mark()
            loss.backward()
            timer.mark()
            ref.step()
            timer.mark()

        ref_batches = make_batches()
        ref_result = {**ref_flops, **timed_loop(ref_step, ref_batches, options, device, train["micro_batch"]),
                      **host_syncs(ref_step, ref_batches, options.warmup + options.steps, device)}
        out["reference"] = {**ref_result, **throughput(ref_result, name)}
        out["framework_over_reference"] = out["framework"]["samples_per_s"] / ref_result["samples_per_s"]
    if options.loading_images > 0:
        loading = images_per_second(recipe, registry, batch=min(train["micro_batch"], 32),
                                    images=options.loading_images)
        out["loading"] = {**loading,
                          **keeps_up(loading, out["framework"]["samples_per_s"], recipe["data"]["num_workers"])}
    out["device"] = name
    out["world_size"] = world_size
    return out
