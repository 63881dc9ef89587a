"""Checkpoints carry a sha256 of every file (SHA256SUMS) that resume, eval and model-file
readers check, and no DeepSpeed read can unpickle code, even behind a consistent manifest."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import torch

from framework.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    verify_checkpoint,
    write_manifest,
)
from framework.cli import main
from framework.model_file import read_model_file
from framework.rundir import MANIFEST_FILE, MODEL_FILE, RunDir
from tests.helpers import RECIPES

MODEL_STATES = "mp_rank_00_model_states.pt"
OPTIM_STATES = "zero_pp_rank_0_mp_rank_00_optim_states.pt"
SMALL = ["--set", "train.steps=1", "--set", "train.micro_batch=8", "--set", "train.global_batch=8",
         "--set", "data.train.samples=64", "--set", "deepspeed.zero_stage=1"]


class Exploit:
    """Unpickling this creates a marker directory: what a hostile checkpoint would do."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A one-step run with one ZeRO-1 checkpoint (optimizer states in their own file)."""
    run = tmp_path_factory.mktemp("run") / "run"
    assert main(["run", str(RECIPES / "tiny.json"), "--output", str(run), "--quiet", *SMALL]) == 0
    return run


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def checkpoint_of(run: Path) -> Path:
    path = latest_checkpoint(RunDir(run).checkpoints)
    assert path is not None
    return path


def flip_bytes(path: Path, count: int = 16) -> None:
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    for i in range(middle, middle + count):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def resume(run: Path, capsys) -> tuple[int, str]:
    """Exit code and the one ``error:`` line of ``framework run --resume``."""
    code = main(["run", "--output", str(run), "--resume", "--quiet", "--set", "train.steps=2"])
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return code, errors[0]


def test_the_manifest_lists_every_file_of_the_checkpoint(trained):
    path = checkpoint_of(trained)
    listed = {line.split("  ", 1)[1] for line in (path / MANIFEST_FILE).read_text().splitlines()}
    on_disk = {p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()} - {MANIFEST_FILE}
    assert listed == on_disk and {MODEL_STATES, OPTIM_STATES, MODEL_FILE, "recipe.json"} <= listed
    verify_checkpoint(path)


def test_flipped_bytes_in_a_model_states_file_stop_the_resume(run_copy, capsys):
    flip_bytes(checkpoint_of(run_copy) / MODEL_STATES)
    code, err = resume(run_copy, capsys)
    assert code == 2
    assert f"{MODEL_STATES}: sha256 does not match {MANIFEST_FILE}" in err


@pytest.mark.parametrize("damage", ["missing", "extra", "no_manifest", "bad_manifest"])
def test_a_changed_file_set_is_refused(run_copy, damage):
    path = checkpoint_of(run_copy)
    if damage == "missing":
        (path / OPTIM_STATES).unlink()
        expected = f"{OPTIM_STATES}: missing"
    elif damage == "extra":
        (path / "planted.pt").write_bytes(b"x")
        expected = "planted.pt: not listed"
    elif damage == "no_manifest":
        (path / MANIFEST_FILE).unlink()
        expected = f"{MANIFEST_FILE}: missing"
    else:
        (path / MANIFEST_FILE).write_text("0" * 64 + "  ../../etc/passwd\n")
        expected = "not a '<sha256>  <file>' line"
    with pytest.raises(CheckpointError, match=expected):
        verify_checkpoint(path)


def test_the_model_file_is_checked_before_it_is_read(run_copy):
    path = checkpoint_of(run_copy)
    read_model_file(path)
    flip_bytes(path / MODEL_FILE, count=4)
    with pytest.raises(CheckpointError, match=f"{MODEL_FILE}: sha256 does not match"):
        read_model_file(path)


def test_eval_refuses_a_flipped_model_file(run_copy, capsys):
    flip_bytes(checkpoint_of(run_copy) / MODEL_FILE, count=4)
    code = main(["eval", str(run_copy), "--task", "retrieval"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("error: ")][-1].count("sha256 does not match") == 1


def test_a_pickle_payload_behind_a_consistent_manifest_does_not_run(run_copy, capsys, tmp_path):
    """An attacker who rewrites SHA256SUMS too still meets the weights-only loader."""
    marker = tmp_path / "pwned"
    path = checkpoint_of(run_copy)
    torch.save({"optimizer_state_dict": Exploit(str(marker))}, path / OPTIM_STATES)
    write_manifest(path)
    code, err = resume(run_copy, capsys)
    assert code == 2
    assert "pickled reference to posix.mkdir, which could run code" in err
    assert "weights_only" not in err.split("accepted):", 1)[1]  # no advice to load it unsafely
    assert not marker.exists()


class DirectLoadEngine:
    """Stands in for DeepSpeed paths (universal checkpoints, ZeRO-3 helpers) that call
    ``torch.load(..., weights_only=False)`` themselves instead of the checkpoint engine."""

    checkpoint_engine = object()

    def load_checkpoint(self, root: str, tag: str):
        return torch.load(Path(root) / tag / "optim.pt", weights_only=False), {}


def test_deepspeed_s_own_unsafe_torch_loads_are_made_safe(tmp_path):
    marker = tmp_path / "pwned"
    checkpoint = tmp_path / "step_00000001"
    checkpoint.mkdir()
    torch.save({"state": Exploit(str(marker))}, checkpoint / "optim.pt")
    write_manifest(checkpoint)
    with pytest.raises(CheckpointError, match="could run code"):
        load_checkpoint(DirectLoadEngine(), checkpoint)
    assert not marker.exists()
    assert torch.load.__module__.startswith("torch")  # restored afterwards


def test_deepspeed_config_accepts_only_supported_keys(capsys):
    tiny = str(RECIPES / "tiny.json")
    for bad in ('{"checkpoint": {"load_universal": true}}', '{"zero_optimization": {"stage": 3}}',
                '{"optimizer": {"type": "Adam"}}', '{"zero_optimization": {"offload_optimizer": {"device": "nvme"}}}'):
        assert main(["validate", tiny, "--set", f"deepspeed.config={bad}"]) == 2
        assert capsys.readouterr().err.startswith("error: ")
    good = '{"zero_optimization": {"overlap_comm": true, "offload_optimizer": {"device": "cpu"}}}'
    assert main(["validate", tiny, "--set", f"deepspeed.config={good}", "--set", "deepspeed.zero_stage=2"]) == 0


# --- messages that say what is wrong ----------------------------------------------------------

def test_an_empty_or_truncated_file_says_so(tmp_path):
    from framework.checkpoint import safe_torch_load

    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty.pt: .*(ends early|empty|truncated)"):
        safe_torch_load(tmp_path / "empty.pt")
    torch.save({"w": torch.zeros(100)}, tmp_path / "whole.pt")
    (tmp_path / "half.pt").write_bytes((tmp_path / "whole.pt").read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"half.pt: not a loadable checkpoint file .*: \S"):
        safe_torch_load(tmp_path / "half.pt")


def test_a_missing_model_states_file_is_named(run_copy, capsys):
    path = checkpoint_of(run_copy)
    (path / MODEL_STATES).unlink()
    code, err = resume(run_copy, capsys)
    assert code == 2 and f"{MODEL_STATES}: missing" in err
    write_manifest(path)  # consistent again: DeepSpeed's own complaint must still say something
    code, err = resume(run_copy, capsys)
    assert code == 2 and not err.rstrip().endswith("cannot load checkpoint:"), err


def test_a_run_stopped_before_its_first_checkpoint_gets_advice_that_works(run_copy, capsys):
    shutil.rmtree(RunDir(run_copy).checkpoints)
    code, err = resume(run_copy, capsys)
    assert code == 2 and "--overwrite" in err
    assert main(["run", "--output", str(run_copy), "--quiet", "--overwrite", *SMALL]) == 0


def test_model_init_refuses_a_corrupted_checkpoint(run_copy):
    from framework.initialise import InitError, read_weights

    file = checkpoint_of(run_copy) / MODEL_FILE
    read_weights(file)
    flip_bytes(file, count=4)
    with pytest.raises(InitError, match=f"{MODEL_FILE}: sha256 does not match"):
        read_weights(file)
