"""Checkpoint files: RNG state round-trips, pointer checks, pruning, and loading that
refuses anything but plain data (arbitrary bytes, pickled code)."""

from __future__ import annotations

import os
import pickle
import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from framework.checkpoint import (
    CheckpointError,
    _prune,
    latest_checkpoint,
    load_checkpoint,
    rng_state,
    safe_torch_load,
    set_rng_state,
    write_atomic,
)
from framework.train import Trainer
from tests.helpers import tiny_recipe


def draws() -> tuple:
    return random.random(), float(np.random.rand()), float(np.random.randn()), torch.rand(3).tolist()


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    np.random.randn()  # leaves a cached gaussian in numpy's state
    torch.save(rng_state(), tmp_path / "rng.pt")
    expected = draws()
    set_rng_state(safe_torch_load(tmp_path / "rng.pt"))
    assert draws() == expected


def test_latest_pointer_must_name_an_existing_checkpoint(tmp_path):
    assert latest_checkpoint(tmp_path) is None
    (tmp_path / "step_00000003").mkdir()
    write_atomic(tmp_path / "latest", "step_00000003\n")
    assert latest_checkpoint(tmp_path) == tmp_path / "step_00000003"
    write_atomic(tmp_path / "latest", "../../etc\n")
    with pytest.raises(CheckpointError, match="should name a checkpoint like step_00000100"):
        latest_checkpoint(tmp_path)
    write_atomic(tmp_path / "latest", "step_00000009\n")
    with pytest.raises(CheckpointError, match="names step_00000009, which does not exist"):
        latest_checkpoint(tmp_path)
    (tmp_path / "latest").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(CheckpointError, match="unreadable"):
        latest_checkpoint(tmp_path)


def test_prune_keeps_the_newest_up_to_the_current_and_drops_leftovers(tmp_path):
    for step in (1, 2, 3, 5):  # step 5: written by a run that died before moving 'latest'
        (tmp_path / f"step_{step:08d}").mkdir()
    (tmp_path / ".tmp-step_00000006").mkdir()
    (tmp_path / "latest").write_text("step_00000003\n")
    _prune(tmp_path, keep=2, current="step_00000003")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest", "step_00000002", "step_00000003"]


class Exploit:
    """Unpickling this runs code: what a hostile checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_pickled_code_is_refused_not_run(tmp_path):
    marker = tmp_path / "pwned"
    torch.save({"module": {"w": torch.zeros(2)}, "extra": Exploit(str(marker))}, tmp_path / "evil.pt")
    with pytest.raises(CheckpointError, match="not a loadable checkpoint file"):
        safe_torch_load(tmp_path / "evil.pt")
    assert not marker.exists()
    with open(tmp_path / "plain.pkl", "wb") as handle:  # a bare pickle, not torch's zip format
        pickle.dump(Exploit(str(marker)), handle)
    with pytest.raises(CheckpointError):
        safe_torch_load(tmp_path / "plain.pkl")
    assert not marker.exists()


@pytest.fixture(scope="module")
def checkpointed(tmp_path_factory, registry) -> tuple[Trainer, object]:
    """A trainer and a checkpoint saved by it (ZeRO-1: optimizer states in their own file)."""
    run_dir = tmp_path_factory.mktemp("run")
    trainer = Trainer(tiny_recipe("train.steps=1", "train.micro_batch=8", "train.global_batch=8",
                                  "data.train.samples=64", "deepspeed.zero_stage=1"), run_dir, registry, progress=False)
    return trainer, trainer.save()


def test_a_saved_checkpoint_loads_with_weights_only(checkpointed):
    trainer, path = checkpointed
    state = load_checkpoint(trainer.engine, path)
    assert state["step"] == 0 and state["nonfinite"] == {"skipped": 0, "streak": 0}
    assert {p.name for p in path.iterdir()} >= {"recipe.json", "provenance.json", "mp_rank_00_model_states.pt",
                                                "zero_pp_rank_0_mp_rank_00_optim_states.pt"}


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048), victim=st.sampled_from(["mp_rank_00_model_states.pt",
                                                               "zero_pp_rank_0_mp_rank_00_optim_states.pt"]))
def test_arbitrary_bytes_as_a_checkpoint_give_a_checkpoint_error(checkpointed, tmp_path_factory, data, victim):
    trainer, path = checkpointed
    broken = tmp_path_factory.mktemp("broken") / path.name
    broken.mkdir()
    for item in path.iterdir():
        (broken / item.name).write_bytes(item.read_bytes())
    (broken / victim).write_bytes(data)
    with pytest.raises(CheckpointError, match=str(broken)):
        load_checkpoint(trainer.engine, broken)
