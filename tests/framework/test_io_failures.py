"""Every file-system fault and every corrupt checkpoint ends in one ``error:`` line and exit
code 2, never a traceback; an unwritable output is refused before training starts; a resume
leaves one metrics record per step."""

from __future__ import annotations

import json
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from framework.checkpoint import latest_checkpoint, write_manifest
from framework.cli import main
from framework.metrics import read_metrics, truncate_metrics
from framework.rundir import MODEL_FILE, RunDir, RunDirUnwritableError, check_writable
from tests.helpers import RECIPES

TINY = str(RECIPES / "tiny.json")
SMALL = ["--set", "train.steps=2", "--set", "train.micro_batch=8", "--set", "train.global_batch=8",
         "--set", "data.train.samples=64", "--set", "train.log_every=1", "--set", "train.checkpoint_every=1"]


def error_of(code: int, capsys) -> str:
    """The single ``error:`` line of a command that must have failed cleanly."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("io") / "run"
    assert main(["run", TINY, "--output", str(run), "--quiet", *SMALL]) == 0
    return run


@pytest.fixture
def run_copy(trained, tmp_path) -> Path:
    return Path(shutil.copytree(trained, tmp_path / "run"))


# --- writability, checked before anything is written ----------------------------------------

def test_check_writable_names_each_unusable_output(tmp_path, monkeypatch):
    check_writable(tmp_path / "new" / "run")  # parents are created later: fine
    (tmp_path / "file").write_text("x")
    with pytest.raises(RunDirUnwritableError, match="is a file"):
        check_writable(tmp_path / "file" / "run")  # output under a regular file
    with pytest.raises(RunDirUnwritableError, match="is a file"):
        check_writable(tmp_path / "file")  # output is a file
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("x")
    with pytest.raises(RunDirUnwritableError, match="checkpoints: a run writes a directory here"):
        check_writable(run)
    (run / "checkpoints").unlink()
    (run / "metrics.jsonl").mkdir()
    with pytest.raises(RunDirUnwritableError, match="metrics.jsonl: a run writes a file here"):
        check_writable(run)
    with pytest.raises(RunDirUnwritableError, match="File name too long"):
        check_writable(tmp_path / ("x" * 5000))
    denied = str(tmp_path / "ro")
    os.mkdir(denied)
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda p, mode: False if str(p) == denied else real_access(p, mode))
    with pytest.raises(RunDirUnwritableError, match="not writable"):  # root passes chmod 555, so simulated
        check_writable(Path(denied) / "run")


def test_a_checkpoints_file_is_refused_before_training(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoints").write_text("not a directory")
    line = error_of(main(["run", TINY, "--output", str(run), "--quiet", *SMALL]), capsys)
    assert "checkpoints: a run writes a directory here" in line
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints"]  # nothing trained, nothing written


def test_output_under_a_regular_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    line = error_of(main(["run", TINY, "--output", str(tmp_path / "file" / "run"), "--quiet", *SMALL]), capsys)
    assert "is a file" in line


def test_a_full_disk_while_logging_is_one_error_line(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    line = error_of(main(["run", TINY, "--output", str(run), "--quiet", *SMALL]), capsys)
    assert "metrics.jsonl: No space left on device" in line


def test_a_full_disk_while_checkpointing_is_one_error_line(tmp_path, capsys, monkeypatch):
    def full(*_, **__):
        raise RuntimeError("[enforce fail at inline_container.cc:664] . PytorchStreamWriter failed writing file "
                           "data/0: file write failed")

    monkeypatch.setattr(torch, "save", full)
    line = error_of(main(["run", TINY, "--output", str(tmp_path / "run"), "--quiet", *SMALL]), capsys)
    assert "cannot write the checkpoint: [enforce fail" in line and "MiB free" in line


# --- corrupt checkpoints under `framework eval` ---------------------------------------------

def pickled(_: bytes) -> bytes:
    return pickle.dumps({"module": [1, 2, 3]})


CORRUPTIONS = {
    "empty": lambda data: b"",
    "truncated": lambda data: data[: len(data) // 2],
    "random": lambda data: os.urandom(len(data)),
    "pickle": pickled,
    "json_header": lambda data: (8).to_bytes(8, "little") + b'{"a": 1}',
}


@pytest.mark.parametrize("manifest", ["stale", "rewritten"])
@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_eval_on_a_corrupt_model_file_is_one_error_line(run_copy, capsys, kind, manifest):
    checkpoint = latest_checkpoint(RunDir(run_copy).checkpoints)
    target = checkpoint / MODEL_FILE
    target.write_bytes(CORRUPTIONS[kind](target.read_bytes()))
    if manifest == "rewritten":  # the checksum passes: the reader itself must refuse cleanly
        write_manifest(checkpoint)
    line = error_of(main(["eval", str(run_copy), "--task", "retrieval"]), capsys)
    assert MODEL_FILE in line
    if manifest == "stale":
        assert "sha256 does not match" in line


@pytest.mark.parametrize("victim,content", [("checkpoints/latest", b"\x00\xff"), ("recipe.json", b"\xff{"),
                                            ("recipe.json", b"[" * 5000), ("checkpoints/latest", b"")])
def test_eval_on_corrupt_run_files_is_one_error_line(run_copy, capsys, victim, content):
    (run_copy / victim).write_bytes(content)
    error_of(main(["eval", str(run_copy), "--task", "retrieval"]), capsys)


# --- metrics after a resume --------------------------------------------------------------------

def test_truncate_metrics_drops_later_steps_and_a_torn_line(tmp_path):
    lines = [json.dumps({"step": s, "loss": 1.0}) for s in range(1, 6)]
    (tmp_path / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 6, "lo')
    assert truncate_metrics(tmp_path, 3) == 3
    assert [r["step"] for r in read_metrics(tmp_path)] == [1, 2, 3]
    assert truncate_metrics(tmp_path, 3) == 0
    assert truncate_metrics(tmp_path / "absent", 3) == 0


def test_a_resume_logs_each_step_once(run_copy, capsys):
    """Killed after step 2 was logged but before its checkpoint became ``latest``."""
    checkpoints = RunDir(run_copy).checkpoints
    (checkpoints / "latest").write_text("step_00000001\n")
    shutil.rmtree(checkpoints / "step_00000002")
    assert main(["run", "--output", str(run_copy), "--resume", "--quiet"]) == 0
    assert [r["step"] for r in read_metrics(run_copy) if "loss" in r] == [1, 2]
