"""End-to-end training of the tiny recipe: losses fall, runs resume exactly, lrs per group."""

from __future__ import annotations

import json

import pytest
import torch

from framework.checkpoint import latest_checkpoint
from framework.metrics import read_metrics
from framework.train import RunDirectoryError, Trainer
from tests.helpers import tiny_recipe


def by_step(run_dir) -> dict[int, dict]:
    """Last logged record of each step (a resumed run may log a step twice)."""
    return {r["step"]: r for r in read_metrics(run_dir)}


def test_tiny_recipe_losses_fall(tmp_path, registry):
    recipe = tiny_recipe("train.steps=60", "train.log_every=10", "train.checkpoint_every=0")
    Trainer(recipe, tmp_path, registry, progress=False).run()
    records = by_step(tmp_path)
    first, last = records[1], records[60]
    assert last["loss"] < 0.8 * first["loss"], (first, last)
    for name in ("itc", "mim", "mlm"):
        assert last[name] < first[name], (name, first[name], last[name])
    assert (tmp_path / "recipe.json").exists() and latest_checkpoint(tmp_path / "checkpoints") is not None
    provenance = json.loads((tmp_path / "provenance.json").read_text())
    assert provenance["components"]["objective/itc"].startswith("framework==")


def test_resume_reproduces_the_uninterrupted_run(tmp_path, registry):
    recipe = tiny_recipe("train.steps=6", "train.log_every=1", "train.checkpoint_every=3", "train.micro_batch=8",
                         "train.global_batch=16")
    straight, interrupted = tmp_path / "straight", tmp_path / "interrupted"
    Trainer(recipe, straight, registry, progress=False).run()
    Trainer(recipe, interrupted, registry, progress=False).run(until=3)
    resumed = Trainer(recipe, interrupted, registry, resume=True, progress=False)
    assert resumed.step == 3
    resumed.run()
    a, b = by_step(straight), by_step(interrupted)
    for step in range(4, 7):
        assert a[step]["loss"] == b[step]["loss"], step  # bitwise on CPU
    weights = [torch.load(latest_checkpoint(d / "checkpoints") / "mp_rank_00_model_states.pt",
                          weights_only=False)["module"] for d in (straight, interrupted)]
    for name, value in weights[0].items():
        assert torch.equal(value, weights[1][name]), name


def test_overwrite_replaces_the_old_runs_outputs(tmp_path, registry):
    recipe = tiny_recipe("train.steps=2", "train.log_every=1", "train.micro_batch=8", "train.global_batch=8")
    Trainer(recipe, tmp_path, registry, progress=False).run()
    Trainer(recipe, tmp_path, registry, overwrite=True, progress=False).run()
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2]


def test_existing_run_directory_is_not_overwritten(tmp_path, registry):
    (tmp_path / "recipe.json").write_text("{}")
    with pytest.raises(RunDirectoryError, match="--resume to continue it, --overwrite to replace it"):
        Trainer(tiny_recipe(), tmp_path, registry, progress=False)
    with pytest.raises(RunDirectoryError, match="no run to resume"):
        Trainer(tiny_recipe(), tmp_path / "empty", registry, resume=True, progress=False)


@pytest.mark.parametrize("stage", [0, 2])
def test_each_param_group_follows_its_multiplier_under_zero(tmp_path, registry, stage):
    recipe = tiny_recipe("train.steps=4", f"deepspeed.zero_stage={stage}", "optim.lr=0.01",
                         'optim.lr_multipliers={"text_encoder": 0.1, "decoders": 0}',
                         'schedule={"type": "constant", "warmup_steps": 0}')
    trainer = Trainer(recipe, tmp_path, registry, progress=False)
    decoder_before = [p.detach().clone() for p in trainer.engine.module.decoders.parameters()]
    batches = trainer._batches()
    trainer.train_step(batches, 0)
    trainer.train_step(batches, 1)
    groups = trainer.engine.optimizer.param_groups
    assert sorted({round(g["lr"], 8) for g in groups}) == [0.001, 0.01]
    assert {g["weight_decay"] for g in groups} == {0.0, recipe["optim"]["weight_decay"]}
    for before, after in zip(decoder_before, trainer.engine.module.decoders.parameters()):
        assert torch.equal(before, after)  # multiplier 0 freezes


def test_resume_checks_the_data_order_it_continues(tmp_path, registry):
    """The checkpoint keeps the sampler's identity (seed, dataset length, shuffling) and the
    resume checks it against the rebuilt sampler, continuing from samples_seen."""
    trainer = Trainer(tiny_recipe("train.steps=1", "train.log_every=1"), tmp_path, registry, progress=False)
    trainer.run()
    resumed = Trainer(tiny_recipe("train.steps=2", "train.log_every=1"), tmp_path, registry, resume=True,
                      progress=False)
    assert resumed.sampler_state == {"seed": 0, "length": 2048, "shuffle": True}
    assert resumed.sampler.position == 32
    with pytest.raises(ValueError, match="length=4096"):  # the dataset behind the run changed size
        resumed.sampler.load_state_dict({"seed": 0, "length": 4096, "shuffle": True, "position": 0})
