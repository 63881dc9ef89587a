"""A training step of every tiny recipe is free of host syncs (checked on the CPU).

:class:`HostSyncRecorder` flags the ops that would stall the host on a GPU; the step is the
trainer's: forward through the DeepSpeed engine, backward, optimizer step, teacher update.
"""

from __future__ import annotations

import pytest
import torch

from framework.assemble import assemble
from framework.bench.runner import BenchOptions, batch_stream, bench_recipe_config
from framework.bench.syncs import HostSyncRecorder
from framework.distributed import init_distributed
from framework.engine import build_engine, prepare_each_step
from framework.registry import default_registry
from framework.step import mask_generator
from tests.helpers import RECIPES, tiny_recipe

TINY = sorted(p.name for p in RECIPES.glob("*tiny*.json"))
DEEPSPEED_ZERO_SYNCS = "deepspeed/runtime/"
"""ZeRO 1-3 check their gradient partitions' norm on the host inside DeepSpeed; not ours to remove."""


@pytest.fixture(scope="module", autouse=True)
def process_group() -> None:
    init_distributed()


def test_recorder_flags_what_syncs_and_passes_what_does_not():
    x = torch.randn(4, 3)
    with HostSyncRecorder() as rec:
        x[x > 0].sum()  # boolean-mask index
        x.sum().item()
        torch.nonzero(x)
        x.gather(1, torch.zeros(4, 1, dtype=torch.long)).sum()  # no sync
        torch.where(x > 0, x, 0).sum()
    assert [s.reason.split()[0] for s in rec.syncs] == ["indexing", ".item()", "nonzero"]
    assert all(s.where.startswith(__file__) for s in rec.syncs), rec.summary()


@pytest.mark.parametrize("name", TINY)
def test_training_step_has_no_host_sync(name: str):
    recipe = tiny_recipe(path=RECIPES / name)
    options = BenchOptions(data="synthetic", vocab_size=200, batch=4)
    recipe = bench_recipe_config(recipe, options)
    registry = default_registry()
    make_batches, tokenizer = batch_stream(recipe, registry, options, torch.device("cpu"))
    batches = make_batches()
    model, teacher = assemble(recipe, registry, tokenizer)
    engine = build_engine(recipe, model, world_size=1)
    for step in range(2):  # the second step runs with optimizer state and a filled queue
        with HostSyncRecorder() as rec:
            out = engine(next(batches), generator=mask_generator(0, step, 0), teacher=teacher)
            engine.backward(out.loss)
            engine.step()
            if teacher is not None:
                teacher.update(engine.module, step)
    ours = [line for s, line in zip(rec.syncs, rec.summary()) if DEEPSPEED_ZERO_SYNCS not in s.where]
    assert not ours, f"{name}: host syncs in the training step:\n" + "\n".join(ours)
    if recipe["deepspeed"]["zero_stage"] == 0:
        assert not rec.syncs, rec.summary()


def test_prepare_each_step_clips_the_global_norm_first():
    torch.manual_seed(0)
    model, twin = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    twin.load_state_dict(model.state_dict())
    hooked, plain = torch.optim.SGD(model.parameters(), lr=1.0), torch.optim.SGD(twin.parameters(), lr=1.0)
    prepare_each_step(hooked, max_norm=0.5, fill_missing=False)
    x = torch.randn(8, 4) * 10
    for net in (model, twin):
        net(x).pow(2).sum().backward()
    norm = torch.cat([p.grad.flatten() for p in twin.parameters()]).norm()
    assert norm > 0.5
    for p in twin.parameters():
        p.grad *= 0.5 / (norm + 1e-6)
    hooked.step()
    plain.step()
    for a, b in zip(model.parameters(), twin.parameters()):
        torch.testing.assert_close(a, b)


def test_prepare_each_step_gives_unused_parameters_a_zero_gradient_so_they_still_decay():
    """One process skips DeepSpeed's all-reduce, which zero-fills missing gradients; the
    hook does it instead, so AdamW's weight decay reaches unused parameters as on N ranks."""
    used, unused = torch.nn.Parameter(torch.ones(2)), torch.nn.Parameter(torch.ones(2))
    optimizer = torch.optim.AdamW([used, unused], lr=0.1, weight_decay=0.5)
    prepare_each_step(optimizer, max_norm=0.0, fill_missing=True)
    used.sum().backward()
    optimizer.step()
    assert torch.equal(unused.grad, torch.zeros(2))
    torch.testing.assert_close(unused.detach(), torch.full((2,), 1 - 0.1 * 0.5))


def test_the_trainers_step_reads_nothing_on_the_host_until_it_logs(tmp_path):
    """The trainer's :class:`TrainStep` (guards included) runs sync-free; the non-finite flags are read
    once, where the loop logs or checkpoints."""
    from framework.train import Trainer

    trainer = Trainer(tiny_recipe("train.steps=4", "train.log_every=4", "train.checkpoint_every=0"), tmp_path,
                      default_registry(), progress=False)
    loaded = trainer._batches()
    for _ in range(2):
        batches = iter([next(loaded) for _ in range(trainer.accumulation)])  # loading is the host's own work
        with HostSyncRecorder() as rec:
            result = trainer.train_step(batches, trainer.step)
        assert not rec.syncs, rec.summary()
        trainer.nonfinite.record(trainer.step + 1, result.finite, {})
        trainer.step += 1
    assert trainer._settle() and trainer.nonfinite.skipped == 0  # both steps updated the weights


def test_the_bench_times_the_trainers_step_object(monkeypatch):
    """The benchmark has no step of its own: it calls :class:`framework.step.TrainStep`."""
    from framework.bench import runner
    from framework.bench.runner import BenchOptions, bench_framework, bench_recipe_config
    from framework.step import TrainStep

    calls = []
    original = TrainStep.__call__

    def counting(self, batches, step, clock=None):
        calls.append(step)
        return original(self, batches, step, clock)

    monkeypatch.setattr(TrainStep, "__call__", counting)
    options = BenchOptions(steps=2, warmup=1, batch=4, data="synthetic", vocab_size=200)
    recipe = bench_recipe_config(tiny_recipe(), options)
    result = bench_framework(recipe, default_registry(), options)
    assert calls == [0, 1, 2, 3] and result["framework"]["samples_per_s"] > 0  # warmup, timed, sync probe
    assert runner.TrainStep is TrainStep
